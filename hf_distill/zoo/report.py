"""The zoo's report: results finished so far, the command that reproduces a run, ``zoo.json`` (with a summary in
the benchmark schema), ``zoo.md`` and the F1-against-latency plot."""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import TYPE_CHECKING

from ..base import portable_path, write_figure_atomic, write_json_atomic, write_text_atomic
from ..files import read_json
from .args import ZooArguments
from .selection import pareto_front, recommend

if TYPE_CHECKING:
    from ..runs import TaskSpec


def finished_students(output_dir: str) -> tuple[dict | None, list[dict]]:
    """The teacher record and the result rows of the students a zoo run in ``output_dir`` has finished so far
    (nothing is loaded or trained): what a recipe spread over sessions tabulates as partial results."""
    import glob

    rows = []
    for path in sorted(glob.glob(os.path.join(output_dir, "students", "*", "zoo_result.json"))):
        rows.append(read_json(path))
    teacher_file = os.path.join(output_dir, "teacher.json")
    if not os.path.isfile(teacher_file):
        return None, rows
    return read_json(teacher_file), rows


def command_of(args: ZooArguments, template=None) -> str:
    """The ``hf-distill zoo`` command line that reproduces ``args`` and the template's KD settings (options that
    differ from the defaults)."""
    import shlex
    from dataclasses import fields

    from ..training.args import kd_settings

    words = ["hf-distill", "zoo"]
    if template is not None:
        from .student import TEMPLATE_DEFAULTS

        defaults = kd_settings(type(template)(output_dir=args.output_dir, **TEMPLATE_DEFAULTS))
        for name, value in kd_settings(template).items():
            if value != defaults.get(name):
                words += [f"--{name}", *([str(v) for v in value] if isinstance(value, list) else [str(value)])]
    for f in fields(ZooArguments):
        value = getattr(args, f.name)
        default = f.default_factory() if callable(f.default_factory) else f.default
        if value == default:
            continue
        words.append(f"--{f.name}")
        words += [str(v) for v in value] if isinstance(value, list) else [str(value)]
    return shlex.join(words)


def seed_summary(rows: list[dict], spec: str, kd: bool) -> list[float]:
    """Test scores of every seed of one student (``spec``), with or without KD, in seed order."""
    return [r["f1"] for r in sorted(rows, key=lambda r: r.get("seed") or 0)
            if r.get("spec", r["name"].removesuffix("-no-kd")) == spec and r["kd"] == kd]


def summary(args: ZooArguments, rows: list[dict], teacher: dict, advice: dict, seeded: str | None,
            phases: dict | None, total: dict | None, template=None) -> dict:
    """The results in the schema of ``benchmarks/results/zoo/<dataset>.json`` (F1 as fractions)."""
    fast = teacher.get("fastest", {"backend": "pytorch", "latency_ms": teacher["latency_ms"]})
    main = [r for r in rows if r.get("seed", args.seed) == args.seed]
    students = []
    for r in main:
        spec = r.get("spec", r["name"])
        f1s = seed_summary(rows, spec, r["kd"])
        students.append({"name": r["name"], "family": r["family"], "kd": r["kd"], "f1_seeds": f1s,
                         "f1_mean": sum(f1s) / len(f1s), "backend": r["backend"], "latency_ms": r["latency_ms"],
                         "speedup_vs_teacher_fastest": fast["latency_ms"] / r["latency_ms"],
                         "train_wall_s": r.get("train_wall_s", r.get("train_s")), "train_cpu_s": r.get("train_cpu_s"),
                         "params": r.get("params")})
    pick = advice.get("within_f1_drop", {}).get("name") or seeded
    recommended = None
    chosen = next((r for r in main if r["name"] == pick), None)
    if chosen is not None:
        spec = chosen.get("spec", chosen["name"])
        f1s, no_kd = seed_summary(rows, spec, True), seed_summary(rows, spec, False)
        recommended = {"name": pick, "f1_seeds": f1s, "f1_mean": sum(f1s) / len(f1s), "no_kd_f1_seeds": no_kd,
                       "no_kd_f1_mean": sum(no_kd) / len(no_kd) if no_kd else None,
                       "kd_gain": (sum(f1s) / len(f1s) - sum(no_kd) / len(no_kd)) if no_kd else None,
                       "backend": chosen["backend"], "latency_ms": chosen["latency_ms"],
                       "speedup_vs_teacher_fastest": fast["latency_ms"] / chosen["latency_ms"]}
    return {"teacher": {"f1": teacher.get("f1_by_backend", {"pytorch": teacher["f1"]}),
                        "latency_ms": teacher.get("latency_ms_by_backend", {"pytorch": teacher["latency_ms"]}),
                        "fastest_backend": fast["backend"], "fastest_latency_ms": fast["latency_ms"]},
            "recommended": recommended, "students": students, "phases": phases or {},
            "wall_s": (total or {}).get("wall_s"), "cpu_s": (total or {}).get("cpu_s"),
            "command": command_of(args, template)}


def write_results(args: ZooArguments, rows: list[dict], teacher: dict, task: TaskSpec | None = None, *,
                  phases: dict | None = None, total: dict | None = None, seeded: str | None = None,
                  transfer: dict | None = None, template=None, cascade: dict | None = None) -> dict:
    """Write ``zoo.json`` (every row, the teacher, the advice, and ``summary`` in the benchmark schema),
    ``zoo.md`` and ``zoo.png`` under ``args.output_dir``; print the Markdown. Rows of extra seeds enter the
    means, not the table's points."""
    main = [r for r in rows if r.get("seed", args.seed) == args.seed]
    front = pareto_front(main)
    advice = recommend(main, teacher["f1"], args.max_f1_drop, args.latency_budget_ms)
    out = {"teacher": teacher, "students": rows, "pareto_front": front, "recommendation": advice,
           "settings": {k: v for k, v in asdict(args).items()}, "command": command_of(args, template),
           "task": task.kind if task else "token", "metric": task.metric if task else "f1",
           "transfer": transfer or {},
           "summary": summary(args, rows, teacher, advice, seeded, phases, total, template)}
    if cascade:
        out["cascade"] = cascade
    os.makedirs(args.output_dir, exist_ok=True)
    write_json_atomic(os.path.join(args.output_dir, "zoo.json"), out)
    md = markdown(args, main, rows, teacher, front, advice, out["summary"], task, transfer)
    if cascade:
        md += cascade_markdown(cascade, out["summary"]["teacher"]["fastest_latency_ms"])
    write_text_atomic(os.path.join(args.output_dir, "zoo.md"), md)
    plot(main, front, teacher, os.path.join(args.output_dir, "zoo.png"), cascade)
    print(md, flush=True)
    return out


def markdown(args: ZooArguments, main: list[dict], rows: list[dict], teacher: dict, front: list[str], advice: dict,
             summ: dict, task: TaskSpec | None, transfer: dict | None) -> str:
    """The zoo's report: teacher per backend, one row per student (its own KD settings), the recommendation,
    seed means and the time of each phase."""
    metric = "F1" if task is None or task.kind == "token" else "macro-F1"

    def pct(x):
        return "-" if x is None else f"{100 * x:.2f}"

    t = summ["teacher"]
    backends = " / ".join(f"{k} {pct(v)} F1 at {t['latency_ms'].get(k, float('nan')):.2f} ms"
                          for k, v in t["f1"].items())
    md = ["# Which student is best?", "", f"Command: `{summ['command']}`", "",
          f"Teacher `{args.teacher}`: test {metric} {backends} ({args.threads} thread). Speed-ups are against its "
          f"fastest backend within 0.5 F1: **{t['fastest_backend']}** ({t['fastest_latency_ms']:.2f} ms per input). "
          f"Dataset {args.dataset}; every student trained to convergence on the dev split."]
    if transfer:
        md += ["", "Transfer set (KD only): " + ", ".join(f"{k} {v}" for k, v in transfer.items() if k != "report")
               + " rows."]
    md += ["", f"| student | KD (loss, T, weight) | {metric} (best backend) | backend | latency ms | speed-up | "
           f"{metric} PyTorch / ONNX / int8 | params | epochs | train wall s | Pareto |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    extra = bool(args.extra_test)
    if extra:
        md[-2] = md[-2].replace("| Pareto |", "| Pareto | F1 extra test |")
        md[-1] += "---|"
    for r in sorted(main, key=lambda r: r["latency_ms"]):
        kd = f"yes ({r.get('kd_loss', 'kl')}, T={r.get('temperature')}, {r.get('kd_weight')})" if r["kd"] else "no"
        speed = t["fastest_latency_ms"] / r["latency_ms"]
        wall = r.get("train_wall_s", r.get("train_s"))
        md.append(f"| {r['name']} | {kd} | {pct(r['f1'])} | {r['backend']} | {r['latency_ms']:.2f} | {speed:.1f}x | "
                  f"{pct(r['f1_pytorch'])} / {pct(r['f1_onnx'])} / {pct(r['f1_onnx_int8'])} | "
                  f"{(r['params'] or 0) / 1e6:.2f}M | {r['epochs_run']} | {'-' if wall is None else f'{wall:.0f}'} | "
                  f"{'yes' if r['name'] in front else ''} |"
                  + (f" {pct(r.get('f1_extra_test'))} |" if extra else ""))
    md += ["", "**Recommendation**", ""] + [f"- {v['text']}" for v in advice.values()]
    rec = summ.get("recommended")
    if rec and len(rec["f1_seeds"]) > 1:
        md += ["", f"**{rec['name']} over seeds** {[args.seed, *args.seeds]}: KD {pct(rec['f1_mean'])} "
               f"({', '.join(pct(f) for f in rec['f1_seeds'])}), no KD {pct(rec['no_kd_f1_mean'])} "
               f"({', '.join(pct(f) for f in rec['no_kd_f1_seeds'])}); KD gain {100 * (rec['kd_gain'] or 0):+.2f}; "
               f"{100 * (rec['f1_mean'] - teacher['f1']):+.2f} against the teacher; "
               f"{rec['speedup_vs_teacher_fastest']:.1f}x faster than its fastest backend."]
    if summ.get("phases"):
        md += ["", "| phase | wall s | CPU s |", "|---|---|---|"]
        md += [f"| {k} | {v['wall_s']:.0f} | {v['cpu_s']:.0f} |" for k, v in summ["phases"].items()]
        if summ.get("wall_s") is not None:
            md.append(f"| **total** | {summ['wall_s']:.0f} | {summ['cpu_s']:.0f} |")
    return "\n".join(md) + "\n"


def cascade_markdown(c: dict, teacher_ms: float) -> str:
    """The zoo report's cascade section: the calibrated point, measured."""
    from ..runs.cascade import serve_student_note

    return ("\n## Cascade\n\n"
            f"{c['student']} answers the inputs it is sure of (confidence at least {c['threshold']:.4f}, calibrated on "
            "dev against the teacher's answers) and the teacher the rest; measured on test at batch 1 on one thread "
            f"(`hf-distill cascade`, details in `{portable_path(c['results'])}`).\n\n"
            "| model | test score | sent to the teacher | latency ms | speed-up |\n|---|---|---|---|---|\n"
            f"| cascade ({c['student']} + teacher) | {100 * c['f1']:.2f} | {100 * c['to_teacher']:.1f}% | "
            f"{c['latency_ms']:.2f} | {teacher_ms / c['latency_ms']:.1f}x |\n"
            + serve_student_note(c.get("student_dev"), c.get("teacher_dev"), c.get("student_f1"), c.get("teacher_f1")))


def plot(rows: list[dict], front: list[str], teacher: dict, path: str, cascade: dict | None = None) -> None:
    """F1 against latency (log scale), every point labeled, the Pareto front joined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in rows:
        on = r["name"] in front
        ax.scatter(r["latency_ms"], 100 * r["f1"], color="tab:blue" if on else "tab:gray", zorder=3)
        ax.annotate(r["name"], (r["latency_ms"], 100 * r["f1"]), textcoords="offset points", xytext=(4, 4),
                    fontsize=8)
    pts = sorted((r["latency_ms"], 100 * r["f1"]) for r in rows if r["name"] in front)
    if pts:
        ax.plot(*zip(*pts), color="tab:blue", linewidth=1, label="Pareto front")
    if cascade:
        ax.scatter(cascade["latency_ms"], 100 * cascade["f1"], color="tab:red", marker="*", s=120, zorder=4,
                   label=f"cascade ({100 * cascade['to_teacher']:.0f}% to the teacher)")
    fast = teacher.get("fastest", {"backend": "pytorch", "latency_ms": teacher["latency_ms"]})
    ax.axhline(100 * teacher["f1"], color="tab:red", linestyle="--", linewidth=1,
               label=f"teacher {100 * teacher['f1']:.2f} F1 ({fast['latency_ms']:.1f} ms, {fast['backend']})")
    ax.set_xscale("log")
    ax.set_xlabel("latency per sentence, ms (log scale; fastest backend)")
    ax.set_ylabel("test F1")
    ax.legend(fontsize=8)
    write_figure_atomic(fig, path)
