"""How long the README's main job takes: ``hf-distill demo`` on its defaults, wall and CPU time per phase.

Runs the demo (all torch threads, as a user would) and writes ``benchmarks/results/demo_time/demo_time.json`` + ``.md``:
total wall and CPU minutes, the time of each phase (teacher, cache, each student), test F1 of every model, the
precision and thread count, the CPU's bf16 flags. ``--from_results FILE`` tabulates the results file of a demo
run made before (``hf-distill demo --results_file FILE``) instead of running it again.

    HF_DISTILL_DATA_DIR=../shared/data python benchmarks/demo_time.py --output_dir outputs/demo_time
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys

from common import load_demo, speed_cpu_flags, study_dir

from hf_distill.base import write_json_atomic

RESULTS = study_dir("demo_time")  # this study's folder under benchmarks/results/

PHASES = ("teacher", "student_no_kd", "student_kd", "student_kd_transfer")


def summarize(results: dict) -> dict:
    """The timing and scores of one demo results dict."""
    phases = {}
    for name in PHASES:
        r = results.get(name)
        if name == "student_no_kd":  # the cache is built between the teacher and the students
            phases["cache"] = {"wall_s": results.get("cache_s")}
        if isinstance(r, dict):
            phases[name] = {"wall_s": r.get("train_s"), "cpu_s": r.get("train_cpu_s"), "f1": r.get("f1"),
                            "epochs_run": r.get("epochs_run"), "best_epoch": r.get("best_epoch")}
    config = results.get("config", {})
    return {"wall_min": results["wall_s"] / 60, "cpu_min": results["cpu_s"] / 60, "threads": results.get("threads"),
            "bf16": config.get("bf16"), "freeze_student_embeddings": config.get("freeze_student_embeddings"),
            "labeled_sentences": results.get("labeled_sentences"),
            "transfer_sentences": results.get("transfer_sentences"), "phases": phases, "config": config}


def render(out: dict) -> str:
    md = ["# The demo's wall time (README main job, on its defaults)", "", f"Command: `{out['command']}`", "",
          f"{out['wall_min']:.1f} min wall, {out['cpu_min']:.1f} min CPU, {out['threads']} torch threads; "
          f"bf16 autocast: {out['bf16']}; student word embeddings frozen: {out['freeze_student_embeddings']}; "
          f"CPU flags: {', '.join(out['cpu_flags']) or 'none found'}. {out['labeled_sentences']} labeled and "
          f"{out['transfer_sentences']} transfer sentences." + (f" {out['note']}" if out.get("note") else ""), "",
          "| phase | wall s | CPU s | epochs (best) | test F1 |", "|---|---|---|---|---|"]
    for name, p in out["phases"].items():
        wall = f"{p['wall_s']:.0f}" if p.get("wall_s") is not None else "-"
        cpu = f"{p['cpu_s']:.0f}" if p.get("cpu_s") is not None else "-"
        epochs = f"{p['epochs_run']} ({p['best_epoch']})" if p.get("epochs_run") else "-"
        f1 = f"{100 * p['f1']:.2f}" if p.get("f1") is not None else "-"
        md.append(f"| {name} | {wall} | {cpu} | {epochs} | {f1} |")
    md += ["", "The rest of the wall time is data preparation, test evaluation and latency timing."]
    return "\n".join(md) + "\n"


def main(argv: list[str]) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output_dir", default="outputs/demo_time", help="The demo's output folder.")
    p.add_argument("--from_results", default=None, help="A demo results file to tabulate instead of running.")
    p.add_argument("--output", default=os.path.join(RESULTS, "demo_time"))
    p.add_argument("--note", default="", help="A line on the run (e.g. the demo command that made --from_results).")
    a = p.parse_args(argv)
    if a.from_results:
        with open(a.from_results) as f:
            results = json.load(f)
    else:
        demo = load_demo()
        args = demo.DemoArguments(output_dir=a.output_dir, results_file=os.path.join(a.output_dir, "results.json"))
        results = demo.run_demo(args)
    out = {**summarize(results), "cpu_flags": speed_cpu_flags(), "note": a.note,
           "command": "python benchmarks/demo_time.py " + shlex.join(argv)}
    write_json_atomic(a.output + ".json", out)
    with open(a.output + ".md", "w") as f:
        f.write(render(out))
    print(render(out))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
