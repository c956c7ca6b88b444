"""Efficient sub-structured KD for CRF students (Lin et al. 2022, Tables 1-2) on CoNLL-2003, measured in one run.

    HF_DISTILL_DATA_DIR=../shared/data accelerate launch recipes/efficient_kd/distill_efficient_kd.py \
        recipes/efficient_kd/config.json
    python recipes/efficient_kd/distill_efficient_kd.py --teacher_base ~/.cache/hf-distill/multilingual-e5-small \
        --crf_teacher outputs/recipes/efficient_kd/crf_teacher --seeds 42 43 44

Teacher: ``--teacher_base`` + CRF (the paper: BERT-base-CRF; here by default multilingual-e5-small, 12 layers,
cased), fine-tuned on CoNLL-2003 train once and saved with a record of its settings (``--crf_teacher``).
Student: its first ``--student_layers`` + CRF. Methods: vanilla (CRF NLL), kbest, structural, posterior,
substructure (teacher online), substructure_cached and substructure_emissions_cached (teacher outputs cached
once). KD methods follow ``--kd_weight_schedule``: the paper's (KD in every epoch but the last, NLL in the last) or
``constant`` (NLL + KD mixed in every epoch). The time of each KD epoch is split by a callback
(:class:`hf_distill.runs.PhaseTimer`) into teacher (encoder + CRF inference), student forward and the rest.
Per seed: ``<results_name>_seed<S>.json``; over seeds: ``<results_name>.json`` + ``.md`` (mean ± s.d.).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field

import torch
from transformers import AutoTokenizer, set_seed

from hf_distill import (
    DistillationTrainer,
    DistillationTrainingArguments,
    TokenClassificationMetrics,
    cache_teacher_outputs,
    load_dataset,
    student_from_teacher,
    tokenize_and_align,
)
from hf_distill.base import write_json_atomic, write_text_atomic
from hf_distill.runs import PhaseTimer, parse_recipe_args
from hf_distill.students import BertCRFConfig, BertCRFForTokenClassification, freeze_word_embeddings
from hf_distill.training.args import derive

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(os.path.dirname(os.path.dirname(HERE)), "benchmarks", "results", "efficient_kd")
DEFAULT_TEACHER = "~/.cache/hf-distill/multilingual-e5-small"
PAPER = {  # Lin et al. 2022 (BERT-CRF teacher, 3-layer BERT-CRF student, CoNLL-2003, one V100)
    "vanilla": {"f1": 88.86, "epoch_s": 54}, "kbest": {"f1": 89.22, "epoch_s": 83},
    "structural": {"f1": 89.33, "epoch_s": 99}, "substructure": {"f1": 89.70, "epoch_s": 41},
}
METHODS = ("vanilla", "kbest", "structural", "posterior", "substructure", "substructure_cached",
           "substructure_emissions_cached")


#: the recipe's defaults for the template's KD settings (DistillationTrainingArguments fields): the paper's
#: schedule (KD in every epoch but the last, NLL in the last) and weight 1
TEMPLATE_DEFAULTS = {"kd_weight": "1.0", "kd_weight_schedule": "kd_only_until_last_epoch"}


def targs(out, name, epochs, lr, kd_loss, seed=42, group_by_length=False, bf16=False, crf_lr=None, template=None):
    """One run's arguments from the ``template`` (its KD weight and schedule; the runs without KD train on the
    task loss in every epoch)."""
    template = template or DistillationTrainingArguments(output_dir=out, **TEMPLATE_DEFAULTS)
    return derive(
        template, output_dir=os.path.join(out, name), num_train_epochs=epochs, learning_rate=lr, kd_loss=kd_loss,
        kd_weight_schedule="constant" if kd_loss == "none" else template.kd_weight_schedule,
        per_device_train_batch_size=32, per_device_eval_batch_size=64, warmup_ratio=0.1, logging_steps=100,
        save_strategy="no", report_to="none", disable_tqdm=True, dataloader_pin_memory=False, seed=seed,
        group_by_length=group_by_length, bf16=bf16, crf_learning_rate=crf_lr)


TEACHER_RECORD = "structured_kd_teacher.json"
#: teacher settings recorded only when they differ from these values, so teachers saved before the options
#: existed stay valid
RECORDED_WHEN_SET = {"freeze_embeddings": False, "bf16": False, "crf_learning_rate": None}


@dataclass
class EfficientKDArguments:
    """Settings of the efficient sub-structured KD recipe (a JSON or YAML file of these works too)."""

    teacher_base: str = field(default=DEFAULT_TEACHER, metadata={
        "help": "Encoder (or token-classification checkpoint) the CRF teacher starts from."})
    crf_teacher: str | None = field(default="outputs/recipes/efficient_kd/crf_teacher", metadata={
        "help": "Folder of the fine-tuned CRF teacher: loaded when trained with these settings, else trained "
                "and saved there."})
    teacher_epochs: float = 2.0
    teacher_lr: float = 5e-5
    student_layers: list[int] = field(default_factory=lambda: [0, 1, 2], metadata={
        "help": "Teacher layers the student keeps (the paper: 3 of 12)."})
    student_epochs: float = 2.0
    student_lr: float = 1e-4
    methods: list[str] = field(default_factory=lambda: list(METHODS), metadata={"help": f"Of {list(METHODS)}."})
    freeze_embeddings: bool = field(default=False, metadata={
        "help": "Keep the word-embedding table of teacher and students frozen (a CPU-budget choice: the cased "
                "250k-token table is most of the parameters the optimizer updates; the paper trains it)."})
    seeds: list[int] = field(default_factory=lambda: [42], metadata={"help": "Student seeds (teacher: 42)."})
    crf_learning_rate: float | None = field(default=None, metadata={
        "help": "Learning rate of the CRF transitions of teacher and students (default: their learning rate; "
                "the transitions start at zero and barely move at 5e-5)."})
    bf16: bool = field(default=False, metadata={
        "help": "Train teacher and students under bfloat16 autocast (a CPU-budget option: about 1.5x faster where the "
                "CPU has native bf16). The CRF's dynamic programs and the KD losses stay in float32."})
    group_by_length: bool = True
    data_dir: str | None = field(default=None, metadata={"help": "Data root (default: $HF_DISTILL_DATA_DIR)."})
    output_dir: str = "outputs/recipes/efficient_kd"
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    results_name: str = "efficient_kd"
    results_dir: str | None = field(default=None, metadata={
        "help": "Default: benchmarks/results/efficient_kd (smoke runs: output_dir); each seed's file goes under its "
                "runs/ folder."})
    smoke: bool = field(default=False, metadata={"help": "A tiny random CRF teacher, a few rows (the test suite)."})
    partial: bool = field(default=False, metadata={
        "help": "Train nothing: aggregate the seed files of --seeds found on disk (a run spread over sessions)."})

    def __post_init__(self):
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ValueError(f"--methods {unknown}: choose from {list(METHODS)}")
        self.teacher_base = os.path.expanduser(self.teacher_base)


def crf_teacher(args, path, labels, train, tokenizer, metrics):
    """Train the CRF teacher, or load it from ``--crf_teacher`` when it was trained with these settings.

    The folder is written atomically with a record of its settings; a folder whose record differs raises.
    """
    record = {"init": path, "epochs": args.teacher_epochs, "lr": args.teacher_lr, "seed": 42,
              "train_sentences": len(train), "group_by_length": args.group_by_length, "smoke": args.smoke,
              **{k: getattr(args, k) for k, off in RECORDED_WHEN_SET.items() if getattr(args, k) != off}}
    saved = args.crf_teacher and os.path.join(args.crf_teacher, TEACHER_RECORD)
    if saved and os.path.isfile(saved):
        with open(saved) as f:
            found = json.load(f)
        want, have = {**RECORDED_WHEN_SET, **record}, {**RECORDED_WHEN_SET, **found}
        if {k: have.get(k) for k in want} != want:
            raise ValueError(f"{args.crf_teacher} holds a teacher trained with {found}, not {record}; "
                             "pass another --crf_teacher folder")
        return BertCRFForTokenClassification.from_pretrained(args.crf_teacher).eval(), found
    names = {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
             "label2id": {n: i for i, n in enumerate(labels)}, "crf_constraints": True}
    if args.smoke:
        torch.manual_seed(42)
        teacher = BertCRFForTokenClassification(BertCRFConfig(
            vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
            intermediate_size=32, **names))
    else:
        teacher = BertCRFForTokenClassification.from_pretrained(path, **names)
    record["trainable_params"] = freeze_word_embeddings(teacher, args.freeze_embeddings)
    teacher_args = targs(args.output_dir, "teacher", args.teacher_epochs, args.teacher_lr, "none",
                         group_by_length=args.group_by_length, bf16=args.bf16, crf_lr=args.crf_learning_rate)
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
        write_json_atomic(os.path.join(tmp, TEACHER_RECORD), record)
        os.replace(tmp, args.crf_teacher)
    return teacher, record


def seed_file(results_dir: str, name: str) -> str:
    """Where one seed's results go (without the extension): ``runs/`` of the results folder."""
    return os.path.join(results_dir, "runs", name)


def run_seed(a: EfficientKDArguments, seed: int, teacher, data: dict, tokenizer, metrics, command: str) -> dict:
    """Every method for one student seed; the result file is written after each method and reused when a
    run with the same settings finished it before."""
    name = f"{a.results_name}_seed{seed}"
    path = seed_file(a.results_dir, name) + ".json"
    settings = {k: v for k, v in asdict(a).items() if k not in ("seeds", "methods", "results_name", "results_dir")}
    result = {"teacher": data["teacher_record"], "methods": {}, "cache_s": data["cache_s"], "settings": settings}
    if os.path.isfile(path):
        with open(path) as f:
            done = json.load(f)
        if done.get("settings") == settings and done.get("teacher") == result["teacher"]:
            result["methods"] = dict(done["methods"])  # a run of fewer methods keeps the others' results
    for method in a.methods:
        if method in result["methods"]:
            print(f"[efficient_kd] seed {seed} {method}: finished before, skipped", flush=True)
            continue
        set_seed(seed)
        student = student_from_teacher(teacher, a.student_layers)
        trainable = freeze_word_embeddings(student, a.freeze_embeddings)
        kd = "none" if method == "vanilla" else method.removesuffix("_cached")
        from_cache = method.endswith("_cached")
        timer = PhaseTimer()
        tr = DistillationTrainer(
            model=student, args=targs(a.output_dir, f"{method}-seed{seed}", a.student_epochs, a.student_lr, kd, seed,
                                      a.group_by_length, a.bf16, a.crf_learning_rate, template=data["template"]),
            train_dataset=data["cached"] if from_cache else data["train"],
            teacher_model=None if method == "vanilla" or from_cache else teacher,
            processing_class=tokenizer, compute_metrics=metrics, callbacks=[timer])
        timer.attach(tr)
        tr.train()
        ev = tr.evaluate(data["test"])
        first = timer.epochs[0]  # the first epoch is a KD epoch under both schedules
        result["methods"][method] = {"epoch_s": first["epoch_s"], "epoch_s_all": [e["epoch_s"] for e in timer.epochs],
                                     "teacher_forward_s": first["teacher_s"],
                                     "student_forward_s": first["student_forward_s"],
                                     "student_backward_s": first["rest_s"],
                                     "precision": ev["eval_precision"], "recall": ev["eval_recall"],
                                     "f1": ev["eval_f1"], "trainable_params": trainable}
        print(f"[efficient_kd] seed {seed} {method}: F1 {100 * ev['eval_f1']:.2f}, first epoch "
              f"{first['epoch_s']:.1f}s (teacher {first['teacher_s']:.1f}s)", flush=True)
        write(result, a, command, seed, data["template"])
    return result


def main(argv: list[str]) -> dict:
    # KD settings (--kd_weight, --kd_weight_schedule...) are DistillationTrainingArguments' own: the template
    a, template = parse_recipe_args(EfficientKDArguments, argv, training=TEMPLATE_DEFAULTS)
    a.results_dir = a.results_dir or (a.output_dir if a.smoke else RESULTS)
    command = "accelerate launch recipes/efficient_kd/distill_efficient_kd.py " + shlex.join(argv)
    names = [f"{a.results_name}_seed{s}" for s in a.seeds]
    if a.partial:
        found = [n for n in names if os.path.isfile(seed_file(a.results_dir, n) + ".json")]
        if not found:
            raise FileNotFoundError(f"--partial: none of {[n + '.json' for n in names]} is in "
                                    f"{os.path.join(a.results_dir, 'runs')}")
        return aggregate(found, a.results_name, argv, a.results_dir)
    set_seed(42)
    raw = load_dataset("conll2003", data_dir=a.data_dir)
    labels = raw["train"].features["ner_tags"].feature.names
    if a.max_train_samples:
        raw["train"] = raw["train"].select(range(a.max_train_samples))
    if a.max_eval_samples:
        raw["test"] = raw["test"].select(range(a.max_eval_samples))
    tokenizer = AutoTokenizer.from_pretrained(a.teacher_base)
    train, test = tokenize_and_align(raw["train"], tokenizer), tokenize_and_align(raw["test"], tokenizer)
    metrics = TokenClassificationMetrics(labels)
    teacher, record = crf_teacher(a, a.teacher_base, labels, train, tokenizer, metrics)
    ev = DistillationTrainer(model=teacher, args=targs(a.output_dir, "teacher", 1, 1e-4, "none"),
                             processing_class=tokenizer, compute_metrics=metrics).evaluate(test)
    t0 = time.perf_counter()
    cached = cache_teacher_outputs(teacher, train, dtype="float32", tokenizer=tokenizer,
                                   cache_dir=os.path.join(a.output_dir, "teacher_cache"))
    data = {"train": train, "test": test, "cached": cached, "template": template, "cache_s": time.perf_counter() - t0,
            "teacher_record": {"precision": ev["eval_precision"], "recall": ev["eval_recall"], "f1": ev["eval_f1"],
                               "train_s": record.get("train_s"), "init": a.teacher_base, "epochs": a.teacher_epochs,
                               "layers": teacher.config.num_hidden_layers,
                               **{k: record.get(k, off) for k, off in RECORDED_WHEN_SET.items()}}}
    for seed in a.seeds:
        run_seed(a, seed, teacher, data, tokenizer, metrics, command)
    return aggregate(names, a.results_name, argv, a.results_dir)


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


def write(result, args, command, seed, template):
    result["command"] = command
    result["train_sentences"] = args.max_train_samples or 14041
    result["kd_schedule"], result["kd_weight"] = template.kd_weight_schedule, template.kd_weight
    result["seed"], result["group_by_length"] = seed, args.group_by_length
    result["student_layers"] = args.student_layers
    result["threads"] = torch.get_num_threads()
    result["paper"] = PAPER
    result["targets"] = [{"target": t, "measured": m, "met": ok} for t, m, ok in targets(result["methods"])]
    name = seed_file(args.results_dir, f"{args.results_name}_seed{seed}")
    os.makedirs(os.path.dirname(name), exist_ok=True)
    write_json_atomic(name + ".json", result)
    t = result["teacher"]
    md = ["# Structured KD on CoNLL-2003 (CRF teacher and student)", "",
          f"Command: `{result['command']}`  ",
          f"Train sentences: {result['train_sentences']}; test split; CPU, {result['threads']} thread(s). "
          f"Epoch times are for the first epoch. KD methods: `kd_weight_schedule={result.get('kd_schedule')}`, "
          f"`kd_weight={result.get('kd_weight')}`. Student seed {result.get('seed', 42)}; batches "
          f"{'grouped by length' if result.get('group_by_length') else 'drawn at random'}.", "",
          f"Teacher ({t.get('layers', '?')} layers + CRF, started from `{t.get('init', 'all-MiniLM-L6-v2')}`): "
          f"P {100 * t['precision']:.2f} / R {100 * t['recall']:.2f} / F1 {100 * t['f1']:.2f}", "",
          "| method | P | R | F1 | epoch s | teacher fwd s | student fwd s | loss, backward, update s "
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
    write_text_atomic(name + ".md", "\n".join(md) + "\n")


def _mean_sd(values: list[float]) -> tuple[float, float]:
    m = sum(values) / len(values)
    sd = (sum((v - m) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else 0.0
    return m, sd


def _without_seed(command: str) -> str:
    words = command.split()
    drop = {i + 1 for i, w in enumerate(words) if w in ("--seed", "--results_name")}
    return " ".join(w for i, w in enumerate(words) if w not in ("--seed", "--results_name") and i not in drop)


def _fewer(row: dict, seeds: list[int]) -> str:
    return "" if len(row["seeds"]) == len(seeds) else f" (seed{'s' * (len(row['seeds']) > 1)} " + \
        ", ".join(map(str, row["seeds"])) + ")"


def _run_settings(run: dict):
    """What must agree across the seeds of one table: the recorded settings (seeds, methods, names and folders
    apart), so seeds run by separate invocations combine; older runs without them: the command sans seed."""
    return run["settings"] if "settings" in run else _without_seed(run["command"])


def aggregate(names: list[str], results_name: str, argv: list[str], results_dir: str = RESULTS) -> dict:
    """Mean and sample standard deviation over seeds, and the targets checked on the means and per seed."""
    runs = []
    for name in names:
        with open(seed_file(results_dir, name) + ".json") as f:
            runs.append(json.load(f))
    base = runs[0]
    for name, r in zip(names, runs):
        if _run_settings(r) != _run_settings(base) or r["teacher"] != base["teacher"]:
            raise ValueError(f"{name}.json was not run like {names[0]}.json apart from its seed "
                             "(its settings or teacher differ)")
    if len({r.get("seed", 42) for r in runs}) != len(runs):
        raise ValueError(f"two of {names} have the same seed")
    methods = list(dict.fromkeys(m for r in runs for m in r["methods"]))
    out = {"command": "accelerate launch recipes/efficient_kd/distill_efficient_kd.py " + " ".join(argv), "runs": names,
           "run_command": _without_seed(base["command"]), "seeds": [r.get("seed", 42) for r in runs],
           "teacher": base["teacher"], "methods": {}, "paper": PAPER}
    for m in methods:  # a method some seeds lack is averaged over the seeds that have it, and says which
        have = [r for r in runs if m in r["methods"]]
        row = {"seeds": [r.get("seed", 42) for r in have]}
        for key in ("f1", "precision", "recall", "epoch_s", "teacher_forward_s", "student_forward_s",
                    "student_backward_s"):
            row[key], row[key + "_sd"] = _mean_sd([r["methods"][m][key] for r in have])
        row["f1_per_seed"] = [r["methods"][m]["f1"] for r in have]
        paired = [r for r in have if "vanilla" in r["methods"]]
        if m != "vanilla" and paired:
            diff = [r["methods"][m]["f1"] - r["methods"]["vanilla"]["f1"] for r in paired]
            row["f1_minus_vanilla"], row["f1_minus_vanilla_sd"] = _mean_sd(diff)
        out["methods"][m] = row
    everywhere = {m: row for m, row in out["methods"].items() if len(row["seeds"]) == len(runs)}
    out["targets_on_means"] = [{"target": t, "measured": v, "met": ok} for t, v, ok in targets(everywhere)]
    per_seed = [targets({m: r["methods"][m] for m in everywhere}) for r in runs]  # the methods every seed has
    out["targets_met_per_seed"] = {t: sum(rows[i][2] for rows in per_seed) for i, (t, _, _) in enumerate(per_seed[0])}
    path = os.path.join(results_dir, results_name)
    if "vanilla" in out["methods"]:
        out["teacher_minus_vanilla"] = out["teacher"]["f1"] - out["methods"]["vanilla"]["f1"]
    write_json_atomic(path + ".json", out)
    t = out["teacher"]
    md = ["# Structured KD on CoNLL-2003 over seeds", "",
          f"Runs: {', '.join(f'`{n}.json`' for n in names)} (student seeds {', '.join(map(str, out['seeds']))}), "
          f"each `{out['run_command']} --seed S`; one CRF teacher for all (F1 {100 * t['f1']:.2f}). "
          "Mean ± sample standard deviation over seeds (a method not run on every seed: over those it ran on, "
          "named in its row; the targets use the methods run on every seed); epoch times are each run's first "
          "(KD) epoch.", "",
          "| method | F1 | F1 per seed | F1 − vanilla (paired) | epoch s | teacher fwd s | paper F1 | paper epoch s |",
          "|---|---|---|---|---|---|---|---|"]
    for m, r in out["methods"].items():
        paper = PAPER.get(m.replace("_cached", ""), {})
        diff = (f"{100 * r['f1_minus_vanilla']:+.2f} ± {100 * r['f1_minus_vanilla_sd']:.2f}"
                if "f1_minus_vanilla" in r else "")
        md.append(f"| {m} | {100 * r['f1']:.2f} ± {100 * r['f1_sd']:.2f} "
                  f"| {' / '.join(f'{100 * v:.2f}' for v in r['f1_per_seed'])}{_fewer(r, out['seeds'])} | {diff} "
                  f"| {r['epoch_s']:.1f} ± {r['epoch_s_sd']:.1f} | {r['teacher_forward_s']:.1f} "
                  f"| {paper.get('f1', '')} | {paper.get('epoch_s', '')} |")
    if "teacher_minus_vanilla" in out:
        gap = 100 * out["teacher_minus_vanilla"]
        md += ["", f"Teacher minus the student without KD: {gap:.2f} F1 (the paper's gap: about 2-3 F1; a gap "
               "far from it calls for another student depth, `--student_layers`)."]
    md += ["", f"| target | on the means | met on the means | seeds where met (of {len(runs)}) |", "|---|---|---|---|"]
    md += [f"| {row['target']} | {row['measured']} | {'yes' if row['met'] else 'no'} "
           f"| {out['targets_met_per_seed'].get(row['target'], '')} |" for row in out["targets_on_means"]]
    write_text_atomic(path + ".md", "\n".join(md) + "\n")
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
