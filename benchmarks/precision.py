"""float32 against bfloat16 autocast on CPU, side by side in one process: training steps and teacher forwards;
and bf16 training with the student's word embeddings frozen (the demo's default).

The demo's student (all-MiniLM-L6-v2's first 2 layers, token classification) trains on CoNLL-2003 train
sentences through ``DistillationTrainer`` (length-grouped batches of 32, the demo's optimizer), once per
precision, the two alternating for ``--repeats`` rounds so that load on the machine falls on both; the full
teacher runs forward over the same sentences (batches of 64, as the teacher cache does). Reported: the median
seconds of each and the ratio fp32 / bf16. Writes ``benchmarks/results/precision/precision.json`` + ``.md``.

    HF_DISTILL_DATA_DIR=../shared/data OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/precision.py
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import time

import torch
from common import default_teacher_path, load_demo, speed_cpu_flags, study_dir
from transformers import AutoModelForTokenClassification, AutoTokenizer

from hf_distill import DistillationCollator, DistillationTrainer, load_dataset
from hf_distill.base import write_json_atomic
from hf_distill.data import tokenize_and_align
from hf_distill.students import freeze_word_embeddings, student_from_teacher

RESULTS = study_dir("precision")  # this study's folder under benchmarks/results/


def time_training(teacher, rows, tokenizer, bf16: bool, seed: int, freeze: bool = False) -> float:
    """Seconds of one epoch of the demo student over ``rows`` (no evaluation, no saving); ``freeze``: its word
    embeddings fixed, as the demo's default."""
    student = student_from_teacher(teacher, [0, 1])
    freeze_word_embeddings(student, freeze)
    demo = load_demo()  # the demo student's own arguments, from the demo's template
    settings = demo.DemoArguments(output_dir="outputs", bf16=bf16, seed=seed)
    args = demo._training_args(settings, demo.demo_template(settings), "precision_bench", 1.0,
                               settings.student_learning_rate, early_stopping=False, kd_loss="none",
                               logging_steps=10_000)
    trainer = DistillationTrainer(model=student, args=args, train_dataset=rows, processing_class=tokenizer)
    start = time.perf_counter()
    trainer.train()
    return time.perf_counter() - start


def time_forward(teacher, rows, tokenizer, bf16: bool) -> float:
    """Seconds of the teacher's forward over ``rows`` in batches of 64 sorted by length (as the cache does)."""
    collate = DistillationCollator(tokenizer)
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))
    batches = [collate([{k: rows[i][k] for k in ("input_ids", "attention_mask")} for i in order[b:b + 64]])
               for b in range(0, len(order), 64)]
    teacher.eval()
    start = time.perf_counter()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for batch in batches:
            teacher(**batch)
    return time.perf_counter() - start


def render(out: dict, output: str) -> None:
    """``output``.md from the results dict."""
    med = out["median_s"]
    rows = [("one training epoch of the demo student (2 layers, batches of 32)", "fp32", "bf16", "train_fp32",
             "train_bf16"),
            ("teacher forward (6 layers, batches of 64)", "fp32", "bf16", "forward_fp32", "forward_bf16"),
            ("the student's epoch, its word embeddings frozen", "bf16", "bf16 + frozen", "train_bf16",
             "train_bf16_frozen"),
            ("the student's epoch: the demo's defaults against float32 with trained embeddings", "fp32",
             "bf16 + frozen", "train_fp32", "train_bf16_frozen")]
    md = ["# float32 against bfloat16 autocast on CPU, and frozen student embeddings", "",
          f"Command: `{out['command']}`", "",
          f"{out['sentences']} CoNLL-2003 train sentences, {out['threads']} thread(s), {out['repeats']} alternating "
          f"rounds per setting (median shown); CPU flags: {', '.join(out['cpu_flags']) or 'none found'}; torch "
          f"{out['torch']}." + (f" {out['note']}" if out.get("note") else ""), "",
          "| measurement | before | s | after | s | speed-up |", "|---|---|---|---|---|---|"]
    for label, before, after, k0, k1 in rows:
        if k0 in med and k1 in med:
            md.append(f"| {label} | {before} | {med[k0]:.2f} | {after} | {med[k1]:.2f} | {med[k0] / med[k1]:.2f}x |")
    md += ["", "Speed only: what bf16 and frozen embeddings do to F1 is measured by training runs "
               "(`benchmarks/results/transfer/transfer.md`), not here."]
    with open(output + ".md", "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))


def main(argv: list[str]) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", default=None, help="Encoder folder (default: all-MiniLM-L6-v2).")
    p.add_argument("--sentences", type=int, default=1280, help="CoNLL-2003 train sentences per measurement.")
    p.add_argument("--repeats", type=int, default=3, help="Alternating rounds per precision.")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--output", default=os.path.join(RESULTS, "precision"))
    p.add_argument("--note", default="", help="A line on the conditions (e.g. another job sharing the core).")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    path = a.teacher or default_teacher_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    raw = load_dataset("conll2003")
    labels = raw["train"].features["ner_tags"].feature.names
    rows = tokenize_and_align(raw["train"].select(range(a.sentences)), tokenizer)
    teacher = AutoModelForTokenClassification.from_pretrained(
        path, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)})
    times: dict[str, list[float]] = {k: [] for k in ("train_fp32", "train_bf16", "train_bf16_frozen",
                                                     "forward_fp32", "forward_bf16")}
    time_training(teacher, rows.select(range(64)), tokenizer, False, 0)  # warm-up: first-call costs aside
    modes = [("fp32", False, False), ("bf16", True, False), ("bf16_frozen", True, True)]
    for r in range(a.repeats):
        for name, bf16, freeze in (modes if r % 2 == 0 else modes[::-1]):
            times[f"train_{name}"].append(time_training(teacher, rows, tokenizer, bf16, seed=r, freeze=freeze))
            line = f"[precision] round {r + 1}: {name} train {times[f'train_{name}'][-1]:.2f}s"
            if not freeze:
                times[f"forward_{name}"].append(time_forward(teacher, rows, tokenizer, bf16))
                line += f", teacher forward {times[f'forward_{name}'][-1]:.2f}s"
            print(line, flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    out = {"sentences": a.sentences, "repeats": a.repeats, "threads": a.threads, "cpu_flags": speed_cpu_flags(),
           "processor": platform.processor() or platform.machine(), "torch": torch.__version__,
           "seconds": times, "median_s": med,
           "train_speedup": med["train_fp32"] / med["train_bf16"],
           "frozen_embeddings_speedup": med["train_bf16"] / med["train_bf16_frozen"],
           "demo_default_speedup": med["train_fp32"] / med["train_bf16_frozen"],
           "forward_speedup": med["forward_fp32"] / med["forward_bf16"],
           "note": a.note, "command": "python benchmarks/precision.py " + shlex.join(argv)}
    write_json_atomic(a.output + ".json", out)
    render(out, a.output)
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
