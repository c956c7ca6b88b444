"""``hf-distill cascade``: calibrate a student-teacher cascade on the dev split, measure it on test against the
teacher and the student alone (score, share sent to the teacher, inputs per second at batch 1 and 32 on one
thread), plot score against throughput across thresholds, and write ``cascade.json`` beside the student."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..base import write_figure_atomic, write_json_atomic, write_text_atomic
from ..shipping.cascade import Cascade, Side, calibrate, merge, score_rows, threshold_curve, throughput


@dataclass
class CascadeArguments:
    """hf-distill cascade STUDENT TEACHER: the student answers what it is sure of, the teacher the rest."""

    student: str = field(default="", metadata={"help": "The student's saved folder."})
    teacher: str = field(default="", metadata={"help": "The teacher's saved folder."})
    dataset: str | None = field(default=None, metadata={"help": "Registered dataset name or local folder (default: "
                                                               "the student's distillation.json)."})
    data_dir: str | None = None
    max_f1_drop: float | None = field(default=0.3, metadata={
        "help": "Calibrate for the least teacher use within this many points (F1, or accuracy for classifiers) of "
                "the teacher on dev."})
    latency_budget_ms: float | None = field(default=None, metadata={
        "help": "Calibrate instead for the best dev score within this expected latency per input."})
    calibrate_against: str = field(default="teacher", metadata={
        "help": "Score the dev split against the teacher's answers ('teacher': unbiased by the student's early "
                "stopping on dev) or the gold labels ('gold')."})
    student_backend: str = field(default="auto", metadata={"help": "pytorch, onnx, onnx_int8 or auto (the fastest "
                                                                   "within 0.5 of PyTorch in efficiency.json)."})
    teacher_backend: str = "auto"
    max_eval_samples: int | None = None
    max_dev_samples: int | None = None
    dev_fraction: float | None = field(default=None, metadata={
        "help": "For a data set without a validation split: the share of train the student held out as dev (with "
                "--dev_seed). Default: the dev_split that distillation.json records (the zoo writes it)."})
    dev_seed: int = 0
    speed_rows: int = field(default=256, metadata={"help": "Test inputs timed for throughput."})

    positional = ("student", "teacher")


def _backend(choice: str, folder: str, measured: dict | None) -> str:
    from ..shipping.export import ONNX_FILE, QUANTIZED_FILE
    from ..zoo.selection import fastest_backend

    if choice != "auto":
        return choice
    if not measured:
        return "pytorch"
    best = fastest_backend(measured)["backend"]
    onnx = os.path.join(folder, "onnx", QUANTIZED_FILE if best == "onnx_int8" else ONNX_FILE)
    return best if best == "pytorch" or os.path.isfile(onnx) else "pytorch"


def _gold(split, side: Side) -> list:
    if side.token:
        names = split.features["ner_tags"].feature.names
        return [[names[t] for t in tags] for tags in split["ner_tags"]]
    names = split.features["label"].names
    return [names[i] for i in split["label"]]


def _fit(pred: list, gold: list, token: bool) -> list:
    """Tag lists cut or padded with ``O`` to the gold length (a sub-word model truncates long sentences)."""
    if not token:
        return pred
    return [(p + ["O"] * len(g))[: len(g)] for p, g in zip(pred, gold)]


def run_cascade(a: CascadeArguments) -> dict:
    """Calibrate, measure, plot and save; returns the results (the schema of benchmarks/results/cascade/)."""
    from ..data import load_dataset
    from ..shipping.bench import read_info

    info = read_info(a.student)
    eff = read_info(a.student, "efficiency.json")
    dataset = a.dataset or info.get("dataset")
    if not dataset:
        raise ValueError(f"{a.student}: no distillation.json names the dataset; pass --dataset")
    raw = load_dataset(dataset, data_dir=a.data_dir)
    carved = None
    if "validation" not in raw:
        record = info.get("dev_split") if a.dev_fraction is None else {"fraction": a.dev_fraction, "seed": a.dev_seed}
        if not record:
            raise ValueError(f"dataset {dataset!r} has no validation split to calibrate the cascade on (splits: "
                             f"{sorted(raw)}), and {a.student}/distillation.json records no dev split carved from "
                             "train: pass --dev_fraction and --dev_seed as the student was trained with (the zoo's "
                             "defaults: 0.1 and 0), so that no training row is calibrated on")
        from ..zoo.splits import carve_dev

        carved = carve_dev(raw, record["fraction"], record["seed"])
    for split, n in (("test", a.max_eval_samples), ("validation", a.max_dev_samples)):
        if n:
            raw[split] = raw[split].select(range(min(n, len(raw[split]))))
    cascade = Cascade(a.student, a.teacher, 1.0,
                      _backend(a.student_backend, a.student, eff.get("student")),
                      _backend(a.teacher_backend, a.teacher, eff.get("teacher")))
    s, t = cascade._student, cascade._teacher
    token = cascade.token
    parts = {}
    for split in ("validation", "test"):
        s_rows, t_rows = s.encode(raw[split]), t.encode(raw[split])
        gold = _gold(raw[split], s)
        sp, conf = s.predict(s_rows)
        tp, _ = t.predict(t_rows, confidences=False)
        parts[split] = {"gold": gold, "student": _fit(sp, gold, token), "teacher": _fit(tp, gold, token),
                        "conf": conf, "s_rows": s_rows, "t_rows": t_rows}
    dev = parts["validation"]
    teacher_dev = score_rows(dev["gold"], dev["teacher"], token)
    student_dev = score_rows(dev["gold"], dev["student"], token)
    test = parts["test"]
    n = min(a.speed_rows, len(test["s_rows"]))

    def timed(rows: list[dict], b: int) -> list[dict]:
        """Batches of similar lengths when batching (as a server would group them): less padding."""
        return sorted(rows, key=lambda r: len(r["input_ids"])) if b > 1 else rows

    speed = {"student": {}, "teacher": {}}
    for b in (1, 32):
        s_rows, t_rows = timed(test["s_rows"][:n], b), timed(test["t_rows"][:n], b)
        speed["student"][str(b)] = throughput(lambda b=b, r=s_rows: s.predict(r, b, confidences=False), n)
        speed["teacher"][str(b)] = throughput(lambda b=b, r=t_rows: t.predict(r, b, confidences=False), n)
    # the student's cost as the cascade runs it: with its confidences (served alone it skips them)
    with_conf = throughput(lambda r=test["s_rows"][:n]: s.predict(r, 1), n)
    calibration = calibrate(dev["conf"], dev["student"], dev["teacher"], dev["gold"], token,
                            None if a.latency_budget_ms else a.max_f1_drop / 100, a.latency_budget_ms,
                            1000 / with_conf, 1000 / speed["teacher"]["1"], reference=a.calibrate_against,
                            lengths=[len(r["input_ids"]) for r in dev["t_rows"]])
    point = calibration["point"]
    cascade.threshold = point["threshold"]
    merged, who = merge(test["student"], test["teacher"], test["conf"], cascade.threshold)
    sent = [i for i in range(n) if test["conf"][i] < cascade.threshold]
    speed["cascade"] = {}
    for b in (1, 32):
        s_rows, t_rows = timed(test["s_rows"][:n], b), timed([test["t_rows"][i] for i in sent], b)

        def work(b=b, s_rows=s_rows, t_rows=t_rows):
            s.predict(s_rows, b)  # with confidences: the cascade needs them
            if t_rows:
                t.predict(t_rows, b, confidences=False)
        speed["cascade"][str(b)] = throughput(work, n)
    test_curve = threshold_curve(test["conf"], test["student"], test["teacher"], test["gold"], token,
                                 lengths=[len(r["input_ids"]) for r in test["t_rows"]])
    for p in test_curve:  # expected throughput at batch 1 from the two measured costs (the teacher's by length)
        p["sent_per_s_1"] = 1 / (1 / with_conf + p["teacher_load"] / speed["teacher"]["1"])
    out = {"teacher": {"f1": score_rows(test["gold"], test["teacher"], token), "backend": t.backend,
                       "sent_per_s": speed["teacher"]},
           "student": {"name": os.path.basename(os.path.dirname(os.path.abspath(a.student))),
                       "f1": score_rows(test["gold"], test["student"], token), "backend": s.backend,
                       "sent_per_s": speed["student"]},
           "cascade": {"threshold": cascade.threshold, "f1": score_rows(test["gold"], merged, token),
                       "to_teacher": who.count("teacher") / len(who), "sent_per_s": speed["cascade"],
                       "calibration": {"split": "validation", "carved": carved, "teacher_dev": teacher_dev,
                                       "student_dev": student_dev, **point,
                                       "against": a.calibrate_against,
                                       "max_f1_drop": None if a.latency_budget_ms else a.max_f1_drop,
                                       "latency_budget_ms": a.latency_budget_ms}},
           "metric": "f1" if token else "accuracy", "dataset": dataset, "test_rows": len(test["gold"]),
           "speed_rows": n, "threads": 1, "curve": test_curve}
    cascade.record = {k: out[k] for k in ("teacher", "student", "cascade", "metric", "dataset")}
    cascade.save_pretrained()
    write_json_atomic(os.path.join(a.student, "cascade_results.json"), out)
    write_text_atomic(os.path.join(a.student, "cascade.md"), render(out))
    plot(out, os.path.join(a.student, "cascade.png"))
    print(render(out))
    return out


def render(out: dict) -> str:
    """The cascade's Markdown table."""
    m = out["metric"]
    rows = [f"| model | backend | test {m} | to teacher | inputs/s (batch 1) | inputs/s (batch 32) |",
            "|---|---|---|---|---|---|"]
    for name in ("teacher", "student", "cascade"):
        r = out[name]
        rows.append(f"| {name} | {r.get('backend', out['student']['backend'] + ' + ' + out['teacher']['backend'])} | "
                    f"{100 * r['f1']:.2f} | {100 * r.get('to_teacher', 1.0 if name == 'teacher' else 0.0):.1f}% | "
                    f"{r['sent_per_s']['1']:.1f} | {r['sent_per_s']['32']:.1f} |")
    c = out["cascade"]
    gain = c["sent_per_s"]["1"] / out["teacher"]["sent_per_s"]["1"]
    text = ("\n".join(rows) + f"\n\nThreshold {c['threshold']:.4f}, calibrated on the dev split; the cascade is "
            f"{100 * (c['f1'] - out['teacher']['f1']):+.2f} against the teacher at {gain:.1f}x its throughput "
            f"(batch 1, one thread).\n")
    cal = c.get("calibration", {})
    return text + serve_student_note(cal.get("student_dev"), cal.get("teacher_dev"), out["student"]["f1"],
                                     out["teacher"]["f1"])


def serve_student_note(student_dev: float | None, teacher_dev: float | None, student_test: float | None = None,
                       teacher_test: float | None = None) -> str:
    """A paragraph saying to serve the student alone when it scores at least the teacher's dev score, or, when test
    disagrees, that dev favours the student ("" when the teacher leads on dev).

    Args:
        student_dev, teacher_dev: dev scores against gold (the student was early-stopped on that split).
        student_test, teacher_test: test scores, when measured.
    """
    if student_dev is None or teacher_dev is None or student_dev < teacher_dev:
        return ""
    dev = (f"The student alone scores {100 * student_dev:.2f} on dev against gold, the teacher "
           f"{100 * teacher_dev:.2f}")
    if student_test is not None and teacher_test is not None and student_test < teacher_test:
        return (f"\n{dev}; but the student was early-stopped on that split, which favours it, and on test the teacher "
                f"leads ({100 * teacher_test:.2f} against {100 * student_test:.2f}): the cascade's gain over the "
                "student is real here.\n")
    return (f"\n{dev}: a cascade cannot be expected to gain over the student here; serve the student "
            "alone (calibrating against the teacher's answers makes the cascade copy the teacher, its errors "
            "included).\n")


def plot(out: dict, path: str) -> None:
    """Score against expected throughput across thresholds, the chosen point marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    curve = out["curve"]
    ax.plot([p["sent_per_s_1"] for p in curve], [100 * p["score"] for p in curve], marker=".", label="thresholds")
    c = out["cascade"]
    ax.scatter([c["sent_per_s"]["1"]], [100 * c["f1"]], color="tab:red", zorder=3, label="calibrated (measured)")
    ax.axhline(100 * out["teacher"]["f1"], color="tab:gray", linestyle="--", label="teacher")
    ax.set_xscale("log")
    ax.set_xlabel("inputs per second (batch 1, one thread)")
    ax.set_ylabel(f"test {out['metric']}")
    ax.legend(fontsize=8)
    write_figure_atomic(fig, path)
