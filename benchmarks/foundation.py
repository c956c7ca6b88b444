"""Full CoNLL-2003 run of the foundation pipeline: teacher, student without KD, with KD (KL, MSE), timings.

    HF_DISTILL_DATA_DIR=../shared/data python benchmarks/foundation.py [--teacher_epochs 2 ...]

Writes benchmarks/results/foundation.json and foundation.md. Epoch times of the no-KD, cached-KD and
online-KD students are measured in the same process, one after the other (wall and process CPU time).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

from transformers import HfArgumentParser

from hf_distill.demo import DemoArguments, format_table, run_demo

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")


def main(argv: list[str]) -> None:
    defaults = ["--max_train_samples", "0", "--teacher_epochs", "2", "--student_epochs", "2",
                "--kd_losses", "kl", "mse", "--measure_online_epoch", "true",
                "--output_dir", "outputs/foundation"]
    (args,) = HfArgumentParser(DemoArguments).parse_args_into_dataclasses(args=defaults + argv)
    args.max_train_samples = args.max_train_samples or None
    start = time.perf_counter()
    r = run_demo(args)

    def epoch(name, key="epoch_s"):
        return statistics.mean(r[name][key])

    out = {
        "command": "HF_DISTILL_DATA_DIR=../shared/data python benchmarks/foundation.py " + " ".join(argv),
        "dataset": "conll2003 (test split, seqeval strict IOB2)",
        "teacher": "all-MiniLM-L6-v2 fine-tuned (6 layers, hidden 384)",
        "student": f"teacher layers {args.student_layers} (truncated teacher)",
        "train_sentences": r["train_sentences"], "test_sentences": r["test_sentences"], "threads": r["threads"],
        "teacher_f1": r["teacher"]["f1"],
        "student_f1_no_kd": r["student_no_kd"]["f1"],
        "student_f1_kd_kl": r["student_kd_kl"]["f1"],
        "student_f1_kd_mse": r["student_kd_mse"]["f1"],
        "epoch_s_no_kd": epoch("student_no_kd"),
        "epoch_s_kd_cached": epoch("student_kd_kl"),
        "epoch_s_kd_online": epoch("student_kd_kl_online"),
        "epoch_cpu_s_no_kd": epoch("student_no_kd", "epoch_cpu_s"),
        "epoch_cpu_s_kd_cached": epoch("student_kd_kl", "epoch_cpu_s"),
        "epoch_cpu_s_kd_online": epoch("student_kd_kl_online", "epoch_cpu_s"),
        "teacher_epoch_s": epoch("teacher"),
        "cache_s": r["cache_s"],
        "params_teacher": r["teacher"]["params"], "params_student": r["student_no_kd"]["params"],
        "total_s": time.perf_counter() - start,
        "details": r,
    }
    out["ratio_kd_cached_over_no_kd"] = out["epoch_s_kd_cached"] / out["epoch_s_no_kd"]
    out["ratio_kd_online_over_no_kd"] = out["epoch_s_kd_online"] / out["epoch_s_no_kd"]
    out["cpu_ratio_kd_cached_over_no_kd"] = out["epoch_cpu_s_kd_cached"] / out["epoch_cpu_s_no_kd"]
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "foundation.json.tmp"), "w") as f:
        json.dump(out, f, indent=2)
    os.replace(os.path.join(RESULTS, "foundation.json.tmp"), os.path.join(RESULTS, "foundation.json"))
    md = [
        "# Foundation benchmark: CoNLL-2003 (full train, test split)", "",
        f"Command: `{out['command']}`  ", f"Machine: CPU, {out['threads']} torch threads. "
        f"Train sentences: {out['train_sentences']}, test sentences: {out['test_sentences']}.", "",
        format_table(r), "",
        "| epoch time (student) | wall s | CPU s | wall ratio to no-KD |", "|---|---|---|---|",
        f"| no KD | {out['epoch_s_no_kd']:.1f} | {out['epoch_cpu_s_no_kd']:.1f} | 1.00 |",
        f"| KD (KL), cached teacher | {out['epoch_s_kd_cached']:.1f} | {out['epoch_cpu_s_kd_cached']:.1f} "
        f"| {out['ratio_kd_cached_over_no_kd']:.2f} |",
        f"| KD (KL), online teacher | {out['epoch_s_kd_online']:.1f} | {out['epoch_cpu_s_kd_online']:.1f} "
        f"| {out['ratio_kd_online_over_no_kd']:.2f} |",
        "", f"Teacher epoch: {out['teacher_epoch_s']:.1f} s; caching the teacher once: {out['cache_s']:.1f} s.",
    ]
    with open(os.path.join(RESULTS, "foundation.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main(sys.argv[1:])
