"""Full CoNLL-2003 (all 14,041 train sentences labeled): teacher, 2-layer student without and with KD over seeds,
every model trained to convergence (early stopping on dev), and epoch times side by side.

    HF_DISTILL_DATA_DIR=../shared/data python benchmarks/foundation.py [-- demo flags]

Writes benchmarks/results/foundation.json and foundation.md. Epoch times of the no-KD, cached-KD and
online-KD students are measured in the same process (wall and process CPU time).
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
DEFAULTS = ["--max_train_samples", "0", "--transfer_samples", "0", "--runs", "no_kd", "kd",
            "--student_seeds", "42", "43", "44", "--measure_online_epoch", "true", "--output_dir", "outputs/foundation"]


def main(argv: list[str]) -> None:
    if argv == ["--render-only"]:
        with open(os.path.join(RESULTS, "foundation.json")) as f:
            render(json.load(f))
        return
    (args,) = HfArgumentParser(DemoArguments).parse_args_into_dataclasses(args=DEFAULTS + argv)
    start = time.perf_counter()
    r = run_demo(args)
    seeds = args.student_seeds
    f1 = {run: [r[f"student_{run}_seed{s}"]["f1"] for s in seeds] for run in ("no_kd", "kd")}

    def epoch(run, key="epoch_s"):
        return statistics.mean(x for s in seeds for x in r[f"student_{run}_seed{s}"][key])

    out = {
        "command": "HF_DISTILL_DATA_DIR=../shared/data python benchmarks/foundation.py " + " ".join(argv),
        "dataset": "conll2003 (test split, seqeval strict IOB2)",
        "teacher": "all-MiniLM-L6-v2 fine-tuned (6 layers, hidden 384), early stopping on dev",
        "student": f"teacher layers {args.student_layers} (truncated teacher), early stopping on dev",
        "kd": f"{args.kd_loss}, T={args.temperature}, kd_weight={args.kd_weight}",
        "train_sentences": r["labeled_sentences"], "test_sentences": r["test_sentences"], "threads": r["threads"],
        "teacher_f1": r["teacher"]["f1"], "seeds": seeds, "f1": f1,
        "mean_f1": {k: statistics.mean(v) for k, v in f1.items()},
        "sd_f1": {k: statistics.stdev(v) if len(v) > 1 else 0.0 for k, v in f1.items()},
        "epoch_s_no_kd": epoch("no_kd"), "epoch_s_kd_cached": epoch("kd"),
        "epoch_cpu_s_no_kd": epoch("no_kd", "epoch_cpu_s"), "epoch_cpu_s_kd_cached": epoch("kd", "epoch_cpu_s"),
        "epoch_s_kd_online": statistics.mean(r["student_kd_online"]["epoch_s"]),
        "epoch_cpu_s_kd_online": statistics.mean(r["student_kd_online"]["epoch_cpu_s"]),
        "cache_s": r["cache_s"], "total_s": time.perf_counter() - start, "details": r,
    }
    out["cpu_ratio_kd_cached_over_no_kd"] = out["epoch_cpu_s_kd_cached"] / out["epoch_cpu_s_no_kd"]
    out["cpu_ratio_kd_online_over_no_kd"] = out["epoch_cpu_s_kd_online"] / out["epoch_cpu_s_no_kd"]
    os.makedirs(RESULTS, exist_ok=True)
    tmp = os.path.join(RESULTS, "foundation.json.tmp")
    with open(tmp, "w") as f:
        json.dump(out, f, indent=2)
    os.replace(tmp, os.path.join(RESULTS, "foundation.json"))
    render(out)


def render(out: dict) -> None:
    """Write foundation.md from the results (``--render-only`` re-renders an existing foundation.json)."""
    m, sd = out["mean_f1"], out["sd_f1"]
    md = [
        "# Foundation benchmark: CoNLL-2003 (full train labeled, test split)", "",
        f"Command: `{out['command']}`  ", f"Machine: CPU, {out['threads']} torch threads. "
        f"Train sentences: {out['train_sentences']}, test sentences: {out['test_sentences']}. "
        f"Student: {out['student']}; KD: {out['kd']}.", "",
        format_table(out["details"]), "",
        "| student | F1 mean ± s.d. over seeds " + ", ".join(map(str, out["seeds"])) + " |", "|---|---|",
        f"| no KD | {100 * m['no_kd']:.2f} ± {100 * sd['no_kd']:.2f} |",
        f"| KD | {100 * m['kd']:.2f} ± {100 * sd['kd']:.2f} |", "",
        "| student epoch | wall s | CPU s | CPU ratio to no-KD |", "|---|---|---|---|",
        f"| no KD | {out['epoch_s_no_kd']:.0f} | {out['epoch_cpu_s_no_kd']:.0f} | 1.00 |",
        f"| KD, cached teacher | {out['epoch_s_kd_cached']:.0f} | {out['epoch_cpu_s_kd_cached']:.0f} "
        f"| {out['cpu_ratio_kd_cached_over_no_kd']:.2f} |",
        f"| KD, online teacher | {out['epoch_s_kd_online']:.0f} | {out['epoch_cpu_s_kd_online']:.0f} "
        f"| {out['cpu_ratio_kd_online_over_no_kd']:.2f} |", "",
        f"Caching the teacher once: {out['cache_s']:.0f} s.",
    ]
    with open(os.path.join(RESULTS, "foundation.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main(sys.argv[1:])
