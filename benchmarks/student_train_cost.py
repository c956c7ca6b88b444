"""What one training epoch of each small BERT student costs on one CPU core, measured side by side.

    HF_DISTILL_DATA_DIR=../shared/data OMP_NUM_THREADS=1 python benchmarks/student_train_cost.py \
        [--tokenizer ~/.cache/hf-distill/multilingual-e5-small] [--dataset indonlu-posp] [--steps 40] \
        [--extra_rows 25004] [--bf16]

For each of BERT-Tiny, -Mini and -Small (the IndoNLU recipe's students, vocabulary trimmed to the sub-words of
the training rows as the zoo does): the mean time of ``--steps`` optimizer steps (forward, backward, AdamW;
batches of 32 real training sentences drawn from length-sorted batches, as ``group_by_length`` forms them),
after 3 warm-up steps; an epoch is that mean times the number of batches, without and with ``--extra_rows``
unlabeled rows (the recipe's transfer set; KD on them adds no forward pass, the teacher is cached).
Writes benchmarks/results/student_train_cost/student_train_cost.json and .md.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time

import torch
from common import study_dir

from hf_distill import load_dataset
from hf_distill.base import write_json_atomic, write_text_atomic
from hf_distill.students import SMALL_BERTS, small_bert, trim_vocabulary

RESULTS = study_dir("student_train_cost")  # this study's folder under benchmarks/results/


def _batches(ids: list[list[int]], size: int) -> list[list[list[int]]]:
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    return [[ids[i] for i in order[k:k + size]] for k in range(0, len(order), size)]


def _pad(batch: list[list[int]], num_labels: int, token: bool) -> dict:
    width = max(map(len, batch))
    input_ids = torch.zeros(len(batch), width, dtype=torch.long)
    mask = torch.zeros(len(batch), width, dtype=torch.long)
    for row, ids in enumerate(batch):
        input_ids[row, :len(ids)] = torch.tensor(ids)
        mask[row, :len(ids)] = 1
    labels = torch.randint(num_labels, (len(batch), width) if token else (len(batch),))
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def time_student(name: str, batches: list, vocab: int, keep: set, num_labels: int, token: bool, steps: int,
                 bf16: bool, seed: int = 0) -> float:
    """Mean seconds per optimizer step of student ``name`` over ``steps`` batches (after 3 warm-up steps)."""
    torch.manual_seed(seed)
    model = small_bert(name, vocab, task="token" if token else "sequence", num_labels=num_labels, trimmable=True)
    trim_vocabulary(model, keep)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    rng = random.Random(seed)
    chosen = [rng.choice(batches) for _ in range(steps + 3)]
    times = []
    for i, batch in enumerate(chosen):
        inputs = _pad(batch, num_labels, token)
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(**inputs).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i >= 3:
            times.append(time.perf_counter() - start)
    return statistics.mean(times)


def main(argv: list[str]) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokenizer", default=os.path.expanduser("~/.cache/hf-distill/multilingual-e5-small"))
    p.add_argument("--dataset", default="indonlu-posp")
    p.add_argument("--data_dir", default=None)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--extra_rows", type=int, default=25004, help="unlabeled rows added to an epoch")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast (the recipe's --bf16 true)")
    p.add_argument("--students", nargs="+", default=list(SMALL_BERTS))
    p.add_argument("--out", default=os.path.join(RESULTS, "student_train_cost"))
    a = p.parse_args(argv)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(a.tokenizer)
    train = load_dataset(a.dataset, data_dir=a.data_dir)["train"]
    token = "tokens" in train.column_names
    if token:
        ids = [tok(t, is_split_into_words=True, truncation=True, max_length=128)["input_ids"] for t in train["tokens"]]
        tags = next(c for c in train.column_names if c.endswith("_tags"))
        num_labels = train.features[tags].feature.num_classes
    else:
        ids = [tok(t, truncation=True, max_length=128)["input_ids"] for t in train["text"]]
        num_labels = train.features["label"].num_classes
    keep = {i for row in ids for i in row}
    batches = _batches(ids, a.batch_size)
    per_epoch = len(batches)
    with_extra = per_epoch * (len(ids) + a.extra_rows) / len(ids)
    rows = []
    for name in a.students:
        step = time_student(name, batches, len(tok), keep, num_labels, token, a.steps, a.bf16)
        rows.append({"student": name, "step_s": step, "epoch_s": step * per_epoch,
                     "epoch_with_unlabeled_s": step * with_extra})
        print(f"{name}: {step * 1000:.0f} ms per step, {step * per_epoch / 60:.1f} min per epoch, "
              f"{step * with_extra / 60:.1f} min with {a.extra_rows} unlabeled rows", flush=True)
    out = {"dataset": a.dataset, "train_rows": len(ids), "extra_rows": a.extra_rows, "batch_size": a.batch_size,
           "steps_timed": a.steps, "threads": torch.get_num_threads(), "bf16": a.bf16, "kept_subwords": len(keep),
           "students": rows, "command": "python benchmarks/student_train_cost.py " + " ".join(argv)}
    base = next((r for r in rows if r["student"] == "bert-mini"), rows[0])
    lines = [f"# One training epoch per student on {a.dataset} ({len(ids)} rows; {out['threads']} thread(s); "
             f"{'bf16 autocast' if a.bf16 else 'float32'})", "",
             f"Mean of {a.steps} optimizer steps of {a.batch_size} length-grouped real sentences, measured side by "
             f"side in one run. `{out['command']}`", "",
             f"| student | ms per step | min per epoch | min per epoch with {a.extra_rows} unlabeled rows | "
             f"x {base['student']} |", "|---|---|---|---|---|"]
    lines += [f"| {r['student']} | {r['step_s'] * 1000:.0f} | {r['epoch_s'] / 60:.1f} | "
              f"{r['epoch_with_unlabeled_s'] / 60:.1f} | {r['step_s'] / base['step_s']:.2f} |" for r in rows]
    write_json_atomic(a.out + ".json", out)
    write_text_atomic(a.out + ".md", "\n".join(lines) + "\n")
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
