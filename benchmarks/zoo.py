"""Publish zoo runs as ``benchmarks/results/zoo/<name>.{json,md,png}`` (the schema of issue 34), with an ablation
table gathered from other zoo runs of the same teacher.

    # the main run: the zoo on its defaults, two extra seeds for the recommended student and its no-KD twin
    HF_DISTILL_DATA_DIR=../shared/data hf-distill zoo --teacher outputs/zoo_teacher/model --dataset conll2003 \
        --output_dir outputs/zoo/conll2003 --seeds 43 44
    # ablations: one zoo run each (see benchmarks/results/zoo/README.md for their commands)
    python benchmarks/zoo.py --zoo outputs/zoo/conll2003 --name conll2003 \
        --ablation "KD only=outputs/zoo/abl_none:charcnn-wordlstm-random" ...

Each ablation row is ``LABEL=ZOO_FOLDER:STUDENT``: that zoo run's student (its seeds, if it has several).
Paths in the output are relative to the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

from hf_distill.base import write_json_atomic, write_text_atomic

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "zoo")


def _load(folder: str) -> dict:
    path = os.path.join(folder, "zoo.json")
    if not os.path.isfile(path):
        raise SystemExit(f"{path}: no zoo.json (run hf-distill zoo --output_dir {folder} first)")
    with open(path) as f:
        return json.load(f)


def ablation_row(label: str, folder: str, student: str) -> dict:
    """One ablation row: the mean test F1 over the seeds of ``student`` (with KD) in the zoo run ``folder``."""
    run = _load(folder)
    rows = [r for r in run["students"] if r.get("spec", r["name"]) == student and r["kd"]]
    if not rows:
        names = sorted({r.get("spec", r["name"]) for r in run["students"]})
        raise SystemExit(f"{folder}: no KD student {student!r} (has {names})")
    f1s = [r["f1"] for r in sorted(rows, key=lambda r: r.get("seed") or 0)]
    main = min(rows, key=lambda r: r.get("seed") or 0)
    return {"setting": label, "student": student, "f1_seeds": f1s, "f1_mean": sum(f1s) / len(f1s),
            "latency_ms": main["latency_ms"], "backend": main["backend"], "train_rows": main.get("train_rows"),
            "train_wall_s": main.get("train_wall_s"), "command": run["command"]}


def check_target(out: dict, target: str, baseline: str = "") -> dict:
    """``GAP@SPEEDUP``: the best KD student (mean F1 over its seeds) at least SPEEDUP times faster than the teacher's
    fastest backend, and whether it is at most GAP F1 points under the teacher (its best backend's F1)."""
    gap, _, speedup = target.partition("@")
    gap, speedup = float(gap), float(speedup or 0)
    fast = [r for r in out["students"] if r.get("kd", True) and (r.get("speedup_vs_teacher_fastest") or 0) >= speedup]
    best = max(fast, key=lambda r: r["f1_mean"], default=None)
    teacher_f1 = max(out["teacher"]["f1"].values())  # the teacher's best backend: the strictest gap
    measured = None if best is None else 100 * (teacher_f1 - best["f1_mean"])
    return {"gap": gap, "speedup": speedup, "baseline": baseline, "teacher_f1": teacher_f1,
            "best": best, "measured_gap": measured, "met": measured is not None and measured <= gap}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--zoo", required=True, help="the main zoo run's output folder")
    p.add_argument("--name", required=True, help="file name under benchmarks/results/zoo/ (e.g. conll2003)")
    p.add_argument("--ablation", nargs="*", default=[], help="LABEL=ZOO_FOLDER:STUDENT rows")
    p.add_argument("--phase", nargs="*", default=[], metavar="NAME=WALL_S[:CPU_S]",
                   help="phases of the run that zoo.json does not hold (a run killed and resumed: its first "
                        "process's teacher cache and bench, read off its log)")
    p.add_argument("--elapsed_default_s", type=float, default=None,
                   help="wall time from the start of the run until its last default student (seed --seed) was "
                        "benched, read off the log of the run's first process (zoo processes side by side on the "
                        "cores overlap, so this is less than the sum of the phases)")
    p.add_argument("--ablation_note", default="", help="a sentence printed under the ablation table")
    p.add_argument("--target", default=None, metavar="GAP@SPEEDUP",
                   help="check a target: the best KD student at least SPEEDUP times faster than the teacher's fastest "
                        "backend is at most GAP F1 points under the teacher (mean over its seeds), e.g. 4.7@10")
    p.add_argument("--baseline", default="", help="a sentence on what the target is measured against")
    p.add_argument("--target_note", default="", help="a sentence printed under the target (e.g. why one seed)")
    p.add_argument("--note", default="", help="a paragraph printed after the tables (how the run was made)")
    a = p.parse_args(argv)
    run = _load(a.zoo)
    out = dict(run["summary"])
    # the default run: every default student once (seed --seed), with the shared phases; the extra seeds apart
    phases = dict(out.get("phases") or {})
    for item in a.phase:
        name, _, value = item.partition("=")
        wall, _, cpu = value.partition(":")
        phases[name] = {"wall_s": float(wall), "cpu_s": float(cpu) if cpu else None}
    seed = run["settings"]["seed"]
    shared = {k: v for k, v in phases.items() if not k.startswith("student:") and k != "cascade"}
    students = {}
    for r in run["students"]:
        wall = (r.get("train_wall_s") or 0) + (r.get("bench_wall_s") or 0)
        students[f"student:{r['name']}"] = {"wall_s": wall, "cpu_s": r.get("train_cpu_s"),
                                            "extra_seed": r.get("seed", seed) != seed or not r["kd"]}
    default = [v for v in students.values() if not v["extra_seed"]]
    out["phases"] = {**shared, **students}
    if "cascade" in phases:  # --cascade: after the students, not part of the default run
        out["phases"]["cascade"] = {**phases["cascade"], "extra_seed": True}
    out["default_run"] = {
        "wall_s": sum(v["wall_s"] for v in shared.values()) + sum(v["wall_s"] for v in default),
        "students": sum(1 for _ in default),
        "note": "teacher cache, word data and teacher bench, plus every default student trained and benched once; "
                "the extra seeds and no-KD twins are listed apart (extra_seed)",
        "elapsed_s": a.elapsed_default_s}
    out["ablation"] = []
    for item in a.ablation:
        label, _, rest = item.partition("=")
        folder, _, student = rest.rpartition(":")
        out["ablation"].append(ablation_row(label, folder, student))
    out["ablation_note"] = a.ablation_note or None
    out["transfer"] = run.get("transfer", {})
    if a.target:
        out["target"] = {**check_target(out, a.target, a.baseline), "note": a.target_note or None}
    if a.note:
        out["note"] = a.note
    os.makedirs(RESULTS, exist_ok=True)
    write_json_atomic(os.path.join(RESULTS, f"{a.name}.json"), out)
    with open(os.path.join(a.zoo, "zoo.md")) as f:
        md = f.read()
    if a.phase:  # the folder's last command did not train the students: its phase table would mislead
        import re

        md = re.sub(r"\| phase \| wall s \| CPU s \|\n(\|.*\|\n)*?\| \*\*total\*\* \|.*\|\n",
                    "(The last command on this folder found every student finished; the default run's times are "
                    "below.)\n", md, count=1)
    d = out["default_run"]
    md += (f"\n## Time of the default run\n\n{d['wall_s'] / 60:.1f} minutes of wall time for the teacher cache, "
           f"the word data, the teacher's bench and {d['students']} students trained and benched once ({d['note']}), "
           "one after the other"
           + (f"; {d['elapsed_s'] / 60:.1f} minutes elapsed with two zoo processes side by side on the two cores"
              if d["elapsed_s"] else "")
           + ". Per phase:\n\n| phase | wall s | train CPU s | extra seed |\n|---|---|---|---|\n")
    for name, v in out["phases"].items():
        cpu = "-" if v.get("cpu_s") is None else f"{v['cpu_s']:.0f}"
        md += f"| {name} | {v['wall_s']:.0f} | {cpu} | {'yes' if v.get('extra_seed') else ''} |\n"
    if out.get("target"):
        t = out["target"]
        best = t["best"]
        md += (f"\n## Target\n\nThe best KD student at least {t['speedup']:g}x faster than the teacher's fastest "
               f"backend ({out['teacher']['fastest_backend']}) is at most {t['gap']:g} F1 under the teacher"
               + (f" ({t['baseline']})" if t["baseline"] else "") + ": "
               + ("no student is that fast." if best is None else
                  f"**{best['name']}**, {100 * best['f1_mean']:.2f} F1 (mean of {len(best['f1_seeds'])} seed(s): "
                  f"{', '.join(f'{100 * f:.2f}' for f in best['f1_seeds'])}) against the teacher's "
                  f"{100 * t['teacher_f1']:.2f} (its best backend), a gap of {t['measured_gap']:.2f} at "
                  f"{best['speedup_vs_teacher_fastest']:.1f}x: **{'met' if t['met'] else 'missed'}**.") + "\n"
               + (f"\n{t['note']}\n" if t.get("note") else ""))
    if out["ablation"]:
        md += "\n## Ablation\n\n| setting | student | test F1 (mean) | seeds | latency ms | train rows | command |\n"
        md += "|---|---|---|---|---|---|---|\n"
        for r in out["ablation"]:
            md += (f"| {r['setting']} | {r['student']} | {100 * r['f1_mean']:.2f} | "
                   f"{', '.join(f'{100 * f:.2f}' for f in r['f1_seeds'])} | {r['latency_ms']:.2f} | "
                   f"{r['train_rows']} | `{r['command']}` |\n")
        if a.ablation_note:
            md += f"\n{a.ablation_note}\n"
    if a.note:
        md += f"\n## Note\n\n{a.note}\n"
    write_text_atomic(os.path.join(RESULTS, f"{a.name}.md"), md)
    png = os.path.join(a.zoo, "zoo.png")
    if os.path.isfile(png):
        shutil.copyfile(png, os.path.join(RESULTS, f"{a.name}.png"))
    print(md)
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
