"""Full CoNLL-2003 (all 14,041 train sentences labeled): teacher, 2-layer student without and with KD over seeds,
every model trained to convergence (early stopping on dev), and epoch times side by side.

    HF_DISTILL_DATA_DIR=../shared/data python benchmarks/foundation.py [-- demo flags]

Writes benchmarks/results/foundation/foundation.json and foundation.md. Epoch times of the no-KD, cached-KD and
online-KD students are measured in the same process (wall and process CPU time).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

from common import load_demo, study_dir

from hf_distill.base import write_json_atomic

RESULTS = study_dir("foundation")  # this study's folder under benchmarks/results/

DEFAULTS = ["--max_train_samples", "0", "--transfer_samples", "0", "--runs", "no_kd", "kd",
            "--student_seeds", "42", "43", "44", "--measure_online_epoch", "true", "--output_dir", "outputs/foundation"]


RUNS_DIR = os.path.join(study_dir("transfer"), "runs")


_demo = load_demo()
DemoArguments, format_table, run_demo = _demo.DemoArguments, _demo.format_table, _demo.run_demo


def from_runs(tag: str = "full") -> dict:
    """``foundation.json`` from the per-run records of ``benchmarks/transfer.py --tag full`` (one resumable job
    per seed and run, two workers; see that script): the early-stopping redo. Seeds not finished yet are
    listed as missing; the earlier fixed-epoch results stay under ``fixed_epochs``."""
    path = os.path.join(RESULTS, "foundation.json")
    old = json.load(open(path)) if os.path.isfile(path) else {}
    fixed = old.get("fixed_epochs") or ({k: v for k, v in old.items() if k != "details"} if old else None)
    with open(os.path.join(RUNS_DIR, f"conll2003_{tag}_teacher.json")) as f:
        teacher = json.load(f)
    runs = {run: {} for run in ("no_kd", "kd")}
    settings = None
    for run in runs:
        for seed in (42, 43, 44):
            p = os.path.join(RUNS_DIR, f"conll2003_{tag}_seed{seed}_{run}.json")
            if os.path.isfile(p):
                with open(p) as f:
                    runs[run][seed] = json.load(f)
                settings = runs[run][seed].get("settings", settings)
    f1 = {run: {s: r["f1"] for s, r in v.items()} for run, v in runs.items()}
    paired = sorted(set(f1["no_kd"]) & set(f1["kd"]))
    out = {
        "command": "HF_DISTILL_DATA_DIR=../shared/data python benchmarks/transfer.py --stage teacher|worker --tag full "
                   "-- --output_dir outputs/full --max_train_samples 0 --transfer_samples 0 --teacher_epochs 5 "
                   "--runs no_kd kd && python benchmarks/foundation.py --from-runs",
        "dataset": "conll2003 (test split, seqeval strict IOB2)",
        "train_sentences": teacher["labeled_sentences"], "test_sentences": teacher["test_sentences"],
        "teacher": "all-MiniLM-L6-v2 fine-tuned on all 14,041 train sentences, early stopping on dev",
        "teacher_f1": teacher["teacher"]["f1"], "teacher_epochs": teacher["teacher"].get("epochs_run"),
        "teacher_best_epoch": teacher["teacher"].get("best_epoch"),
        "student": "the teacher's first 2 layers, early stopping on dev F1 (patience 2), best checkpoint restored",
        "kd": settings and f"{settings['kd_loss']}, T={settings['temperature']}, kd_weight={settings['kd_weight']}",
        "f1": f1, "mean_f1": {r: statistics.mean(v.values()) for r, v in f1.items() if v},
        "sd_f1": {r: statistics.stdev(v.values()) for r, v in f1.items() if len(v) > 1},
        "paired_seeds": paired,
        "kd_minus_no_kd": [f1["kd"][s] - f1["no_kd"][s] for s in paired],
        "missing": [f"{run} seed {s}" for run in runs for s in (42, 43, 44) if s not in runs[run]],
        "epochs": {r: {s: (x["epochs_run"], x["best_epoch"]) for s, x in v.items()} for r, v in runs.items()},
        "epoch_cpu_s": {r: statistics.mean(e for x in v.values() for e in x["epoch_cpu_s"]) for r, v in runs.items()
                        if v},
        "fixed_epochs": fixed,
    }
    write_json_atomic(path, out)
    md = ["# Foundation benchmark: CoNLL-2003, full train labeled, trained to convergence", "",
          f"Command: `{out['command']}`", "",
          f"Teacher: {out['teacher']} ({out['teacher_epochs']} epochs, best {out['teacher_best_epoch']}): test F1 "
          f"{100 * out['teacher_f1']:.2f}. Student: {out['student']}. KD: {out['kd']}. One torch thread per run.", "",
          "| run | " + " | ".join(f"seed {s}" for s in (42, 43, 44)) + " | mean | epochs run (best) | CPU s/epoch |",
          "|---|---|---|---|---|---|---|"]
    for run in ("no_kd", "kd"):
        cells = [f"{100 * f1[run][s]:.2f}" if s in f1[run] else "running" for s in (42, 43, 44)]
        mean = f"{100 * out['mean_f1'][run]:.2f}" if run in out["mean_f1"] else "-"
        eps = ", ".join(f"{a} ({b})" for a, b in out["epochs"][run].values()) or "-"
        cpu = f"{out['epoch_cpu_s'][run]:.0f}" if run in out["epoch_cpu_s"] else "-"
        md.append(f"| {run} | {' | '.join(cells)} | {mean} | {eps} | {cpu} |")
    if paired:
        md += ["", "KD − no KD on the same seed: "
               + ", ".join(f"{s}: {100 * d:+.2f}" for s, d in zip(paired, out["kd_minus_no_kd"]))]
    if out["missing"]:
        md += ["", f"Not finished yet (resumable; next session): {', '.join(out['missing'])}."]
    if fixed:
        md += ["", "Earlier, with 2 fixed epochs and T=2, weight 1 (teacher "
               f"{100 * fixed.get('teacher_f1', 0):.2f}): no KD {100 * fixed.get('student_f1_no_kd', 0):.2f}, "
               f"KD (KL) {100 * fixed.get('student_f1_kd_kl', 0):.2f} (`fixed_epochs` in foundation.json)."]
    with open(os.path.join(RESULTS, "foundation.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))
    return out


def main(argv: list[str]) -> None:
    if argv == ["--from-runs"]:
        from_runs()
        return
    if argv == ["--render-only"]:
        with open(os.path.join(RESULTS, "foundation.json")) as f:
            render(json.load(f))
        return
    args, template = _demo.parse_demo_args(DEFAULTS + argv)
    start = time.perf_counter()
    r = run_demo(args, template)
    seeds = args.student_seeds
    f1 = {run: [r[f"student_{run}_seed{s}"]["f1"] for s in seeds] for run in ("no_kd", "kd")}

    def epoch(run, key="epoch_s"):
        return statistics.mean(x for s in seeds for x in r[f"student_{run}_seed{s}"][key])

    out = {
        "command": "HF_DISTILL_DATA_DIR=../shared/data python benchmarks/foundation.py " + " ".join(argv),
        "dataset": "conll2003 (test split, seqeval strict IOB2)",
        "teacher": "all-MiniLM-L6-v2 fine-tuned (6 layers, hidden 384), early stopping on dev",
        "student": f"teacher layers {args.student_layers} (truncated teacher), early stopping on dev",
        "kd": f"{template.kd_loss}, T={template.temperature}, kd_weight={template.kd_weight}",
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
    write_json_atomic(os.path.join(RESULTS, "foundation.json"), out)
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
