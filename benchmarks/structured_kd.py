"""Structured KD for CRF students on CoNLL-2003 (Lin et al. 2022, Tables 1-2), measured in one run.

    HF_DISTILL_DATA_DIR=../shared/data python benchmarks/structured_kd.py \
        [--max_train_samples N] [--teacher_epochs 2] [--student_epochs 2]

Teacher: all-MiniLM-L6-v2 + CRF fine-tuned on CoNLL-2003 train. Student: its first 3 layers + CRF.
Methods: vanilla (CRF NLL), kbest, structural, posterior, substructure (teacher online) and
substructure_cached (teacher emissions + CRF cached once). KD methods follow the paper's schedule:
KD only in every epoch but the last, NLL only in the last. Per KD epoch (the first) the time is split
into teacher forward (teacher encoder + teacher CRF inference), student forward (incl. losses) and
student backward. Writes benchmarks/results/<results_name>.json and .md (default structured_kd).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections import defaultdict

import torch
from transformers import AutoTokenizer, TrainerCallback, set_seed

from hf_distill import (
    DistillationTrainer,
    DistillationTrainingArguments,
    TokenClassificationMetrics,
    cache_teacher_outputs,
    load_dataset,
    student_from_teacher,
    tokenize_and_align,
)
from hf_distill.base import write_json_atomic
from hf_distill.demo import default_teacher_path
from hf_distill.losses import KD_LOSSES
from hf_distill.students import BertCRFForTokenClassification

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
PAPER = {  # Lin et al. 2022 (BERT-CRF teacher, 3-layer BERT-CRF student, CoNLL-2003, one V100)
    "vanilla": {"f1": 88.86, "epoch_s": 54}, "kbest": {"f1": 89.22, "epoch_s": 83},
    "structural": {"f1": 89.33, "epoch_s": 99}, "substructure": {"f1": 89.70, "epoch_s": 41},
}
METHODS = ("vanilla", "kbest", "structural", "posterior", "substructure", "substructure_cached",
           "substructure_emissions_cached")


class TimedTrainer(DistillationTrainer):
    """Accumulates teacher, student-forward and student-backward seconds of the first epoch."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.timing = defaultdict(float)
        if self.signal.online is not None:
            signal = self.signal.online

            def timed(model_inputs, cached):
                t0 = time.perf_counter()
                out = signal(model_inputs, cached)
                self.timing["teacher_forward_s"] += time.perf_counter() - t0
                return out

            self.signal.online = timed

    def _first_epoch(self):
        return (self.state.epoch or 0.0) < 1.0

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not model.training:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        teacher_before = self.timing["teacher_forward_s"]
        loss_obj = KD_LOSSES.get(self.args.kd_loss)
        side_before = getattr(loss_obj, "teacher_s", 0.0)  # teacher-side CRF inference inside the KD loss
        t0 = time.perf_counter()
        out = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        self.timing["teacher_forward_s"] += getattr(loss_obj, "teacher_s", 0.0) - side_before
        if self._first_epoch():
            teacher = self.timing["teacher_forward_s"] - teacher_before
            self.timing["student_forward_s"] += time.perf_counter() - t0 - teacher
            self.timing["_loss_s"] += time.perf_counter() - t0
        else:  # keep only first-epoch (KD epoch) teacher time
            self.timing["teacher_forward_s"] = teacher_before
        return out

    def training_step(self, model, inputs, num_items_in_batch=None):
        first = self._first_epoch()
        loss_before = self.timing["_loss_s"]
        t0 = time.perf_counter()
        loss = super().training_step(model, inputs, num_items_in_batch)
        if first:
            self.timing["student_backward_s"] += time.perf_counter() - t0 - (self.timing["_loss_s"] - loss_before)
        return loss


class EpochClock(TrainerCallback):
    def __init__(self):
        self.epochs = []

    def on_epoch_begin(self, args, state, control, **kw):
        self._t = time.perf_counter()

    def on_epoch_end(self, args, state, control, **kw):
        self.epochs.append(time.perf_counter() - self._t)


def targs(out, name, epochs, lr, kd_loss, schedule="constant", kd_weight="1.0", seed=42, group_by_length=False):
    return DistillationTrainingArguments(
        output_dir=os.path.join(out, name), num_train_epochs=epochs, learning_rate=lr, kd_loss=kd_loss,
        kd_weight_schedule=schedule, kd_weight=kd_weight, per_device_train_batch_size=32, per_device_eval_batch_size=64,
        warmup_ratio=0.1, logging_steps=100, save_strategy="no", report_to="none", disable_tqdm=True,
        dataloader_pin_memory=False, seed=seed, group_by_length=group_by_length)


TEACHER_RECORD = "structured_kd_teacher.json"


def crf_teacher(args, path, labels, train, tokenizer, metrics):
    """Train the CRF teacher, or load it from ``--crf_teacher`` when it was trained with these settings.

    The folder is written atomically with a record of its settings; a folder whose record differs raises.
    """
    record = {"init": path, "epochs": args.teacher_epochs, "lr": args.teacher_lr, "seed": 42,
              "train_sentences": len(train), "group_by_length": args.group_by_length}
    saved = args.crf_teacher and os.path.join(args.crf_teacher, TEACHER_RECORD)
    if saved and os.path.isfile(saved):
        with open(saved) as f:
            found = json.load(f)
        if {k: v for k, v in found.items() if k in record} != record:
            raise ValueError(f"{args.crf_teacher} holds a teacher trained with {found}, not {record}; "
                             "pass another --crf_teacher folder")
        return BertCRFForTokenClassification.from_pretrained(args.crf_teacher).eval(), found
    teacher = BertCRFForTokenClassification.from_pretrained(
        path, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)},
        crf_constraints=True)
    teacher_args = targs(args.output_dir, "teacher", args.teacher_epochs, args.teacher_lr, "none",
                         group_by_length=args.group_by_length)
    tt = DistillationTrainer(model=teacher, args=teacher_args, train_dataset=train, processing_class=tokenizer,
                             compute_metrics=metrics)
    t0 = time.perf_counter()
    tt.train()
    record["train_s"] = time.perf_counter() - t0
    teacher.eval()
    if args.crf_teacher:
        tmp = args.crf_teacher.rstrip("/") + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        teacher.save_pretrained(tmp)
        with open(os.path.join(tmp, TEACHER_RECORD), "w") as f:
            json.dump(record, f, indent=2)
        os.replace(tmp, args.crf_teacher)
    return teacher, record


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", default=None,
                   help="encoder or token-classification checkpoint to start the CRF teacher from "
                        "(default: all-MiniLM-L6-v2)")
    p.add_argument("--teacher_lr", type=float, default=1e-4)
    p.add_argument("--results_name", default="structured_kd")
    p.add_argument("--data_dir", default=None)
    p.add_argument("--output_dir", default="outputs/structured_kd")
    p.add_argument("--max_train_samples", type=int, default=None)
    p.add_argument("--max_eval_samples", type=int, default=None)
    p.add_argument("--teacher_epochs", type=float, default=2.0)
    p.add_argument("--student_epochs", type=float, default=2.0)
    p.add_argument("--methods", nargs="*", default=list(METHODS))
    p.add_argument("--kd_schedule", default="kd_only_until_last_epoch",
                   help="kd_weight_schedule of the KD methods (the paper's by default; 'constant' mixes NLL and KD)")
    p.add_argument("--kd_weight", default="1.0")
    p.add_argument("--seed", type=int, default=42, help="seed of the student runs (the teacher always uses 42)")
    p.add_argument("--group_by_length", action="store_true",
                   help="batch sentences of similar length (Trainer's LengthGroupedSampler), teacher and students")
    p.add_argument("--crf_teacher", default=None,
                   help="folder for the trained CRF teacher: loaded if it was trained with these settings, "
                        "else trained and saved there")
    p.add_argument("--aggregate", nargs="+", default=None, metavar="NAME",
                   help="no training: combine results/NAME.json of runs that differ only in --seed into "
                        "results/<results_name>.json and .md (mean and spread per method, paired differences)")
    args = p.parse_args(argv)
    if args.aggregate:
        aggregate(args.aggregate, args.results_name, argv)
        return
    set_seed(42)
    raw = load_dataset("conll2003", data_dir=args.data_dir)
    labels = raw["train"].features["ner_tags"].feature.names
    if args.max_train_samples:
        raw["train"] = raw["train"].select(range(args.max_train_samples))
    if args.max_eval_samples:
        raw["test"] = raw["test"].select(range(args.max_eval_samples))
    path = str(args.teacher or default_teacher_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    train, test = tokenize_and_align(raw["train"], tokenizer), tokenize_and_align(raw["test"], tokenizer)
    metrics = TokenClassificationMetrics(labels)

    teacher, record = crf_teacher(args, path, labels, train, tokenizer, metrics)
    ev = DistillationTrainer(model=teacher, args=targs(args.output_dir, "teacher", 1, 1e-4, "none"),
                             processing_class=tokenizer, compute_metrics=metrics).evaluate(test)
    result = {"teacher": {"precision": ev["eval_precision"], "recall": ev["eval_recall"], "f1": ev["eval_f1"],
                          "train_s": record.get("train_s"), "init": path, "epochs": args.teacher_epochs},
              "methods": {}}
    t0 = time.perf_counter()
    cached = cache_teacher_outputs(teacher, train, dtype="float32")
    result["cache_s"] = time.perf_counter() - t0

    for method in args.methods:
        set_seed(args.seed)
        student = student_from_teacher(teacher, [0, 1, 2])
        kd = "none" if method == "vanilla" else method.removesuffix("_cached")
        from_cache = method.endswith("_cached")
        clock = EpochClock()
        tr = TimedTrainer(
            model=student, args=targs(args.output_dir, method, args.student_epochs, 1e-4, kd,
                                      "constant" if kd == "none" else args.kd_schedule, args.kd_weight,
                                      args.seed, args.group_by_length),
            train_dataset=cached if from_cache else train,
            teacher_model=None if method == "vanilla" or from_cache else teacher,
            processing_class=tokenizer, compute_metrics=metrics, callbacks=[clock])
        tr.train()
        ev = tr.evaluate(test)
        timing = {k: v for k, v in tr.timing.items() if not k.startswith("_")}
        result["methods"][method] = {"epoch_s": clock.epochs[0], "epoch_s_all": clock.epochs,
                                     "teacher_forward_s": timing.get("teacher_forward_s", 0.0),
                                     "student_forward_s": timing.get("student_forward_s", 0.0),
                                     "student_backward_s": timing.get("student_backward_s", 0.0),
                                     "precision": ev["eval_precision"], "recall": ev["eval_recall"],
                                     "f1": ev["eval_f1"]}
        print(method, result["methods"][method], flush=True)
        write(result, args, argv)


def targets(methods: dict) -> list[tuple[str, str, bool]]:
    """The issue's targets, checked on whatever methods were measured: (target, measured, met)."""
    rows = []
    eff = methods.get("substructure_cached")
    for other, bound in (("structural", 0.45), ("kbest", 0.55), ("vanilla", 1.0)):
        if eff and other in methods:
            ratio = eff["epoch_s"] / methods[other]["epoch_s"]
            rows.append((f"efficient (cached) epoch <= {bound}x {other}", f"{ratio:.2f}x", ratio <= bound))
    order = [m for m in ("substructure_cached", "structural", "kbest", "vanilla") if m in methods]
    if len(order) > 1:
        f1 = [methods[m]["f1"] for m in order]
        rows.append(("F1 " + " >= ".join(order), " / ".join(f"{100 * v:.2f}" for v in f1),
                     all(a >= b for a, b in zip(f1, f1[1:]))))
    return rows


def write(result, args, argv):
    result["command"] = "HF_DISTILL_DATA_DIR=../shared/data python benchmarks/structured_kd.py " + " ".join(argv)
    result["train_sentences"] = args.max_train_samples or 14041
    result["kd_schedule"], result["kd_weight"] = args.kd_schedule, args.kd_weight
    result["seed"], result["group_by_length"] = args.seed, args.group_by_length
    result["threads"] = torch.get_num_threads()
    result["paper"] = PAPER
    result["targets"] = [{"target": t, "measured": m, "met": ok} for t, m, ok in targets(result["methods"])]
    os.makedirs(RESULTS, exist_ok=True)
    name = os.path.join(RESULTS, args.results_name)
    write_json_atomic(name + ".json", result)
    t = result["teacher"]
    md = ["# Structured KD on CoNLL-2003 (CRF teacher and student)", "",
          f"Command: `{result['command']}`  ",
          f"Train sentences: {result['train_sentences']}; test split; CPU, {result['threads']} thread(s). "
          f"Epoch times are for the first epoch. KD methods: `kd_weight_schedule={result.get('kd_schedule')}`, "
          f"`kd_weight={result.get('kd_weight')}`. Student seed {result.get('seed', 42)}; batches "
          f"{'grouped by length' if result.get('group_by_length') else 'drawn at random'}.", "",
          f"Teacher (all-MiniLM-L6-v2 + CRF, started from `{t.get('init', 'all-MiniLM-L6-v2')}`): "
          f"P {100 * t['precision']:.2f} / R {100 * t['recall']:.2f} / F1 {100 * t['f1']:.2f}", "",
          "| method | P | R | F1 | epoch s | teacher fwd s | student fwd s | student bwd s "
          "| paper F1 | paper epoch s |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for name_, r in result["methods"].items():
        paper = PAPER.get(name_.replace("_cached", ""), {})
        md.append(f"| {name_} | {100 * r['precision']:.2f} | {100 * r['recall']:.2f} | {100 * r['f1']:.2f} "
                  f"| {r['epoch_s']:.1f} | {r['teacher_forward_s']:.1f} | {r['student_forward_s']:.1f} "
                  f"| {r['student_backward_s']:.1f} | {paper.get('f1', '')} | {paper.get('epoch_s', '')} |")
    md += ["", "The paper's efficient sub-structured KD reads cached teacher scores, so `substructure_cached` is "
           "compared with its numbers.", "", "| target | measured | met |", "|---|---|---|"]
    md += [f"| {t_} | {m} | {'yes' if ok else 'no'} |" for t_, m, ok in targets(result["methods"])]
    with open(name + ".md", "w") as f:
        f.write("\n".join(md) + "\n")


def _mean_sd(values: list[float]) -> tuple[float, float]:
    m = sum(values) / len(values)
    sd = (sum((v - m) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else 0.0
    return m, sd


def _without_seed(command: str) -> str:
    words = command.split()
    drop = {i + 1 for i, w in enumerate(words) if w in ("--seed", "--results_name")}
    return " ".join(w for i, w in enumerate(words) if w not in ("--seed", "--results_name") and i not in drop)


def aggregate(names: list[str], results_name: str, argv: list[str]) -> dict:
    """Mean and sample standard deviation over seeds, and the targets checked on the means and per seed."""
    runs = []
    for name in names:
        with open(os.path.join(RESULTS, name + ".json")) as f:
            runs.append(json.load(f))
    base = runs[0]
    for name, r in zip(names, runs):
        if _without_seed(r["command"]) != _without_seed(base["command"]) or r["teacher"] != base["teacher"]:
            raise ValueError(f"{name}.json was not run like {names[0]}.json apart from --seed "
                             "(its command or teacher differ)")
    if len({r.get("seed", 42) for r in runs}) != len(runs):
        raise ValueError(f"two of {names} have the same seed")
    methods = [m for m in base["methods"] if all(m in r["methods"] for r in runs)]
    out = {"command": "python benchmarks/structured_kd.py " + " ".join(argv), "runs": names,
           "run_command": _without_seed(base["command"]), "seeds": [r.get("seed", 42) for r in runs],
           "teacher": base["teacher"], "methods": {}, "paper": PAPER}
    for m in methods:
        row = {}
        for key in ("f1", "precision", "recall", "epoch_s", "teacher_forward_s", "student_forward_s",
                    "student_backward_s"):
            row[key], row[key + "_sd"] = _mean_sd([r["methods"][m][key] for r in runs])
        row["f1_per_seed"] = [r["methods"][m]["f1"] for r in runs]
        if m != "vanilla" and "vanilla" in methods:
            diff = [r["methods"][m]["f1"] - r["methods"]["vanilla"]["f1"] for r in runs]
            row["f1_minus_vanilla"], row["f1_minus_vanilla_sd"] = _mean_sd(diff)
        out["methods"][m] = row
    out["targets_on_means"] = [{"target": t, "measured": v, "met": ok} for t, v, ok in targets(out["methods"])]
    per_seed = [targets(r["methods"]) for r in runs]
    out["targets_met_per_seed"] = {t: sum(rows[i][2] for rows in per_seed) for i, (t, _, _) in enumerate(per_seed[0])}
    path = os.path.join(RESULTS, results_name)
    write_json_atomic(path + ".json", out)
    t = out["teacher"]
    md = ["# Structured KD on CoNLL-2003 over seeds", "",
          f"Runs: {', '.join(f'`{n}.json`' for n in names)} (student seeds {', '.join(map(str, out['seeds']))}), "
          f"each `{out['run_command']} --seed S`; one CRF teacher for all (F1 {100 * t['f1']:.2f}). "
          "Mean ± sample standard deviation over seeds; epoch times are each run's first (KD) epoch.", "",
          "| method | F1 | F1 per seed | F1 − vanilla (paired) | epoch s | teacher fwd s | paper F1 | paper epoch s |",
          "|---|---|---|---|---|---|---|---|"]
    for m, r in out["methods"].items():
        paper = PAPER.get(m.replace("_cached", ""), {})
        diff = (f"{100 * r['f1_minus_vanilla']:+.2f} ± {100 * r['f1_minus_vanilla_sd']:.2f}"
                if "f1_minus_vanilla" in r else "")
        md.append(f"| {m} | {100 * r['f1']:.2f} ± {100 * r['f1_sd']:.2f} "
                  f"| {' / '.join(f'{100 * v:.2f}' for v in r['f1_per_seed'])} | {diff} "
                  f"| {r['epoch_s']:.1f} ± {r['epoch_s_sd']:.1f} | {r['teacher_forward_s']:.1f} "
                  f"| {paper.get('f1', '')} | {paper.get('epoch_s', '')} |")
    md += ["", f"| target | on the means | met on the means | seeds where met (of {len(runs)}) |", "|---|---|---|---|"]
    md += [f"| {row['target']} | {row['measured']} | {'yes' if row['met'] else 'no'} "
           f"| {out['targets_met_per_seed'].get(row['target'], '')} |" for row in out["targets_on_means"]]
    with open(path + ".md", "w") as f:
        f.write("\n".join(md) + "\n")
    return out


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(sys.argv[1:])
