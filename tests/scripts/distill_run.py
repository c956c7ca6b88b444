"""Train a tiny student with online KD on a real CoNLL-2003 slice; write final metrics as JSON.

    python distill_run.py TOKENIZER_DIR DATA_DIR OUT_JSON PER_DEVICE_BATCH
(run under `accelerate launch` for several processes; the global batch is PER_DEVICE_BATCH x processes)
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import torch  # noqa: E402
from conftest import tiny_bert  # noqa: E402
from transformers import BertTokenizerFast  # noqa: E402

from hf_distill import (  # noqa: E402
    DistillationTrainer,
    DistillationTrainingArguments,
    TokenClassificationMetrics,
    load_dataset,
    tokenize_and_align,
)


def main(tok_dir, data_dir, out_json, batch):
    torch.set_num_threads(1)
    tokenizer = BertTokenizerFast.from_pretrained(tok_dir)
    raw = load_dataset("conll2003", data_dir=data_dir)
    names = raw["train"].features["ner_tags"].feature.names
    train = tokenize_and_align(raw["train"].select(range(96)), tokenizer)
    test = tokenize_and_align(raw["test"].select(range(40)), tokenizer)
    teacher = tiny_bert(len(tokenizer), layers=2, hidden=32, seed=1)
    student = tiny_bert(len(tokenizer), layers=1, hidden=32, seed=2)
    args = DistillationTrainingArguments(
        output_dir=os.path.join(os.path.dirname(out_json), "run"), per_device_train_batch_size=int(batch),
        per_device_eval_batch_size=8, num_train_epochs=2, learning_rate=5e-3, kd_loss="kl", temperature=2.0,
        report_to="none", save_strategy="no", disable_tqdm=True, seed=0, dataloader_pin_memory=False,
        use_cpu=True, lr_scheduler_type="constant")
    trainer = DistillationTrainer(model=student, args=args, train_dataset=train, eval_dataset=test,
                                  teacher_model=teacher, processing_class=tokenizer,
                                  compute_metrics=TokenClassificationMetrics(names))
    trainer.train()
    metrics = trainer.evaluate()
    if trainer.is_world_process_zero():
        checksum = sum(p.detach().double().sum().item() for p in student.parameters())
        with open(out_json, "w") as f:
            json.dump({**metrics, "param_checksum": checksum, "world_size": args.world_size,
                       "steps": trainer.state.global_step}, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
