"""KD settings for the truncated student on full CoNLL-2003, reusing the teacher of benchmarks/foundation.py.

    HF_DISTILL_DATA_DIR=../shared/data python benchmarks/foundation_kd_sweep.py \
        [--teacher outputs/foundation/teacher/model] [--settings kl:1:auto none:1:0 ...] [--seed 43]

Each setting is ``loss:temperature:kd_weight`` (``none:1:0`` = no KD); every run starts from the same
initialization (the teacher's first two layers), with the foundation benchmark's epochs and, by default,
its seed (``--seed`` changes the data order and dropout, to measure seed noise).
Writes benchmarks/results/foundation/foundation_kd_sweep.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch
from common import load_demo, study_dir
from transformers import AutoModelForTokenClassification, AutoTokenizer, set_seed

from hf_distill import cache_teacher_outputs, load_dataset, student_from_teacher, tokenize_and_align
from hf_distill.runs import evaluate, train_to_convergence

RESULTS = study_dir("foundation")  # this study's folder under benchmarks/results/

_demo = load_demo()
DemoArguments, _training_args = _demo.DemoArguments, _demo._training_args


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", default="outputs/foundation/teacher/model")
    p.add_argument("--settings", nargs="+", default=["kl:1:auto", "kl:2:auto"])
    p.add_argument("--epochs", type=float, default=2.0)
    p.add_argument("--output_dir", default="outputs/foundation_sweep")
    p.add_argument("--seed", type=int, default=42, help="seed of the data order and dropout")
    p.add_argument("--results_name", default="foundation_kd_sweep")
    args = p.parse_args(argv)
    raw = load_dataset("conll2003")
    labels = raw["train"].features["ner_tags"].feature.names
    tokenizer = AutoTokenizer.from_pretrained(args.teacher)
    teacher = AutoModelForTokenClassification.from_pretrained(args.teacher).eval()
    train, test = tokenize_and_align(raw["train"], tokenizer), tokenize_and_align(raw["test"], tokenizer)
    cached = cache_teacher_outputs(teacher, train, cache_dir=os.path.join(args.output_dir, "cache"))
    demo = DemoArguments(output_dir=args.output_dir, student_epochs=args.epochs, seed=args.seed)
    rows = []
    for setting in args.settings:
        loss, temperature, weight = setting.split(":")
        set_seed(demo.seed)
        student = student_from_teacher(teacher, demo.student_layers)
        targs = _training_args(demo, _demo.demo_template(demo), setting.replace(":", "_"), args.epochs,
                               demo.student_learning_rate,
                               early_stopping=False, kd_loss=loss, temperature=float(temperature), kd_weight=weight)
        start = time.perf_counter()
        timing = train_to_convergence(student, targs, cached, tokenizer)
        scores = evaluate(student, test, tokenizer, labels)
        rows.append({"setting": setting, "seed": args.seed, "kd_loss": loss, "temperature": float(temperature),
                     "kd_weight": weight,
                     "precision": scores["precision"], "recall": scores["recall"], "f1": scores["f1"],
                     "epoch_s": timing["epoch_s"], "wall_s": time.perf_counter() - start})
        print(rows[-1], flush=True)
        command = "HF_DISTILL_DATA_DIR=../shared/data python benchmarks/foundation_kd_sweep.py " + " ".join(argv)
        out = {"command": command,
               "epochs": args.epochs, "threads": torch.get_num_threads(), "runs": rows}
        os.makedirs(RESULTS, exist_ok=True)
        with open(os.path.join(RESULTS, f"{args.results_name}.json.tmp"), "w") as f:
            json.dump(out, f, indent=2)
        os.replace(os.path.join(RESULTS, f"{args.results_name}.json.tmp"),
                   os.path.join(RESULTS, f"{args.results_name}.json"))
        md = ["# KD settings for the 2-layer truncated student (full CoNLL-2003, test split)", "",
              f"Command: `{out['command']}`", "",
              "| setting (loss:T:weight) | P | R | F1 | epoch s |", "|---|---|---|---|---|"]
        md += [f"| {r['setting']} | {100 * r['precision']:.2f} | {100 * r['recall']:.2f} | {100 * r['f1']:.2f} "
               f"| {sum(r['epoch_s']) / len(r['epoch_s']):.0f} |" for r in rows]
        with open(os.path.join(RESULTS, f"{args.results_name}.md"), "w") as f:
            f.write("\n".join(md) + "\n")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(sys.argv[1:])
