"""Helpers for scripts that train and compare several students (the demo, the zoo, recipes, benchmarks): a
progress line per epoch, training to convergence on a dev split, and test-set scoring."""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass

from transformers import EarlyStoppingCallback, PrinterCallback, TrainerCallback

from .args import DistillationTrainingArguments
from .base import IGNORE_INDEX
from .metrics import TokenClassificationMetrics
from .trainer import DistillationTrainer


class Progress(TrainerCallback):
    """One line per epoch (phase, epoch, the epoch's mean training loss, dev F1, wall and CPU time, estimate of the
    time left), printed with a flush so it shows in logs and pipes too; also records each epoch's wall and CPU
    seconds."""

    def __init__(self, phase: str, quiet: bool = False, stream=None):
        self.phase, self.quiet, self.stream = phase, quiet, stream or sys.stdout
        self.epochs: list[float] = []
        self.cpu_epochs: list[float] = []
        self._t0 = self._c0 = self._start = 0.0
        self._first_epoch = 0
        self._loss_sum = self._loss_steps = self._logged_step = 0
        self.dev_f1: list[float] = []

    def say(self, text: str) -> None:
        if not self.quiet:
            print(f"[{self.phase}] {text}", file=self.stream, flush=True)

    @staticmethod
    def _metric(args) -> str:
        return (args.metric_for_best_model or "f1").removeprefix("eval_")

    def on_train_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()
        self._first_epoch = round(state.epoch or 0)  # after a resume: the epochs done before it
        key = f"eval_{self._metric(args)}"
        self.dev_f1 = [e[key] for e in state.log_history if key in e]
        self.say(f"training: up to {args.num_train_epochs:g} epochs, {state.max_steps} steps"
                 + (f", resuming after epoch {self._first_epoch}" if self._first_epoch else ""))

    def on_epoch_begin(self, args, state, control, **kwargs):
        self._t0, self._c0 = time.perf_counter(), time.process_time()
        self._loss_sum = self._loss_steps = 0
        self._logged_step = state.global_step

    def on_epoch_end(self, args, state, control, **kwargs):
        self.epochs.append(time.perf_counter() - self._t0)
        self.cpu_epochs.append(time.process_time() - self._c0)
        control.should_log = True  # the epoch's last steps enter its mean loss before the epoch line
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        # Trainer logs the mean loss of the steps since its last log: weighted by those steps, the epoch's mean
        if logs and "loss" in logs:
            steps = max(state.global_step - self._logged_step, 1)
            self._loss_sum += logs["loss"] * steps
            self._loss_steps += steps
            self._logged_step = state.global_step

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        metrics = metrics or {}
        done = round(state.epoch or 0)
        total = math.ceil(args.num_train_epochs)
        elapsed = time.perf_counter() - self._start
        eta = elapsed / max(done - self._first_epoch, 1) * (total - done)
        key = self._metric(args)
        f1 = metrics.get(f"eval_{key}")
        if f1 is not None:
            self.dev_f1.append(f1)
        best = max(self.dev_f1) if self.dev_f1 else None
        name = {"f1": "F1", "macro_f1": "macro-F1"}.get(key, key)
        loss = self._loss_sum / self._loss_steps if self._loss_steps else float("nan")
        self.say(f"epoch {done}/{total}  loss {loss:.4f}  "
                 f"dev {name} {100 * f1 if f1 is not None else float('nan'):.2f}  "
                 f"(best {100 * best if best is not None else float('nan'):.2f})  "
                 f"wall {elapsed:.0f}s  CPU {sum(self.cpu_epochs):.0f}s  at most {eta:.0f}s left")


class EarlyStoppingAboveFloor(EarlyStoppingCallback):
    """Early stopping whose patience starts once the dev metric beats ``floor`` (the score of a trivial
    predictor, :func:`constant_prediction_score`): epochs at the floor before any epoch above it are a slow start
    (a tagger predicting ``O`` everywhere during warmup), not a plateau, so they do not use up the patience."""

    def __init__(self, patience: int, floor: float):
        super().__init__(early_stopping_patience=patience)
        self.floor = floor

    def _at_floor(self, args, value) -> bool:
        return value <= self.floor + 1e-9 if args.greater_is_better else value >= self.floor - 1e-9

    def check_metric_value(self, args, state, control, metric_value):
        started = state.best_metric is not None and not self._at_floor(args, state.best_metric)
        if not started and self._at_floor(args, metric_value):
            self.early_stopping_patience_counter = 0
            return
        super().check_metric_value(args, state, control, metric_value)

    def state(self) -> dict:  # what Trainer saves in a checkpoint and rebuilds the callback from on resume
        return {"args": {"patience": self.early_stopping_patience, "floor": self.floor},
                "attributes": {"early_stopping_patience_counter": self.early_stopping_patience_counter}}


def train_to_convergence(model, targs, train, tokenizer, teacher=None, dev=None, label_names=None, patience: int = 2,
                         phase: str = "train", quiet: bool = False, compute_metrics=None) -> dict:
    """Train (with early stopping on ``dev`` when given) and return wall/CPU times and epochs to the best.
    ``compute_metrics`` defaults to seqeval over ``label_names`` (tagging)."""
    progress = Progress(phase, quiet)
    callbacks = [progress]
    if dev is not None:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=patience))
    trainer = DistillationTrainer(model=model, args=targs, train_dataset=train, eval_dataset=dev,
                                  processing_class=tokenizer, teacher_model=teacher, callbacks=callbacks,
                                  compute_metrics=compute_metrics or (TokenClassificationMetrics(label_names)
                                                                      if dev is not None else None))
    trainer.remove_callback(PrinterCallback)  # the progress line replaces the raw log dicts
    start, cpu = time.perf_counter(), time.process_time()
    trainer.train()
    out = {"train_s": time.perf_counter() - start, "train_cpu_s": time.process_time() - cpu,
           "epoch_s": progress.epochs, "epoch_cpu_s": progress.cpu_epochs, "epochs_run": len(progress.epochs)}
    if dev is not None:
        out["dev_f1"] = trainer.state.best_metric
        best = trainer.state.best_model_checkpoint
        out["best_epoch"] = epoch_of(trainer.state, best, targs.metric_for_best_model or "f1")
    return out


def epoch_of(state, checkpoint: str | None, metric: str = "f1") -> int | None:
    """The epoch at which ``checkpoint`` (``.../checkpoint-STEP``) was saved."""
    if not checkpoint:
        return None
    step = int(checkpoint.rstrip("/").rsplit("-", 1)[-1])
    for entry in state.log_history:
        if entry.get("step") == step and f"eval_{metric.removeprefix('eval_')}" in entry:
            return round(entry["epoch"])
    return None


def evaluate(model, dataset, tokenizer, label_names=None, batch_size: int = 64,
             compute_metrics=None) -> dict[str, float]:
    """seqeval scores of ``model`` on a tokenized dataset (first-sub-word positions)."""
    # batches of similar lengths pad less (2.6x fewer positions on CoNLL-2003 dev at 64 rows); scores are per row
    import tempfile

    with tempfile.TemporaryDirectory(prefix="hf_distill_eval_") as scratch:  # nothing is saved; never shared
        targs = DistillationTrainingArguments(output_dir=scratch, per_device_eval_batch_size=batch_size,
                                              report_to="none", kd_loss="none", disable_tqdm=True,
                                              dataloader_pin_memory=False, group_by_length=True)
        trainer = DistillationTrainer(model=model, args=targs, processing_class=tokenizer,
                                      compute_metrics=compute_metrics or TokenClassificationMetrics(label_names))
        metrics = trainer.evaluate(dataset, metric_key_prefix="test")
    return {k.removeprefix("test_"): v for k, v in metrics.items()}


@dataclass
class TaskSpec:
    """What is distilled: tagging (``token``, seqeval F1) or text classification (``sequence``, macro-F1);
    the label column and names, and how rows are encoded for a sub-word model."""

    kind: str
    label_column: str
    labels: list[str]
    text_column: str = "text"

    @classmethod
    def of(cls, split, label_column: str | None = None, text_column: str = "text") -> TaskSpec:
        """The task of a split, from its features: a sequence of class labels is tagging, one class label is
        classification. Raises naming the columns when the label column cannot be found."""
        import datasets

        features = split.features
        tags = sorted((c for c in features if c.endswith("_tags")), key=lambda c: c != "ner_tags")
        column = label_column or ("label" if "label" in features else tags[0] if tags else None)
        if column is None or column not in features:
            raise ValueError(f"label column {column!r} not found: the data set has columns {list(features)}; "
                             "pass --label_column")
        feature = features[column]
        if isinstance(feature, datasets.ClassLabel):
            if text_column not in features:
                raise ValueError(f"text column {text_column!r} not found (columns {list(features)}); pass "
                                 "--text_column")
            return cls("sequence", column, list(feature.names), text_column)
        inner = getattr(feature, "feature", None)
        if isinstance(inner, datasets.ClassLabel):
            return cls("token", column, list(inner.names), text_column)
        raise ValueError(f"label column {column!r} holds {feature}, not class labels (ClassLabel or a sequence "
                         "of them)")

    @property
    def metric(self) -> str:
        """The dev metric models are selected on (also the zoo's "f1" column)."""
        return "f1" if self.kind == "token" else "macro_f1"

    def encode(self, split, tokenizer, max_length: int = 128):
        from .data import tokenize_and_align, tokenize_text

        if self.kind == "token":
            return tokenize_and_align(split, tokenizer, self.label_column, max_length=max_length)
        return tokenize_text(split, tokenizer, self.text_column, self.label_column, max_length=max_length)

    def compute_metrics(self):
        from .metrics import TokenClassificationMetrics, classification_metrics

        return TokenClassificationMetrics(self.labels) if self.kind == "token" else classification_metrics


class TeacherDidNotLearnError(RuntimeError):
    """A fine-tuned teacher scores no better on dev than predicting the most frequent label everywhere."""


def constant_prediction_score(task: TaskSpec, train, dev) -> float:
    """The dev score (``task.metric``) of predicting the most frequent training label at every position or row:
    the floor a fine-tuned teacher must clear (entity F1 0 when that label is ``O``). ``train`` and ``dev`` are
    encoded (a ``labels`` column, -100 where unscored)."""
    import numpy as np
    from transformers import EvalPrediction

    def padded(rows):
        rows = [np.asarray(r).reshape(-1) for r in rows]
        out = np.full((len(rows), max(len(r) for r in rows)), IGNORE_INDEX)
        for i, r in enumerate(rows):
            out[i, :len(r)] = r
        return out

    gold_train = padded(train["labels"])
    counts = np.bincount(gold_train[gold_train != IGNORE_INDEX], minlength=len(task.labels))
    gold = padded(dev["labels"])
    if task.kind == "sequence":
        gold = gold[:, 0]
    predicted = np.full(gold.shape, int(counts.argmax()))
    return float(task.compute_metrics()(EvalPrediction(predictions=predicted, label_ids=gold))[task.metric])


def fine_tune_teacher(base: str, raw, task: TaskSpec, folder: str, *, epochs: float, learning_rate: float,
                      patience: int, settings: dict, batch_size: int = 32, smoke: bool = False,
                      bf16: bool = False, require_progress: bool | None = None) -> str:
    """The teacher for ``task``: ``base`` (a pretrained encoder) fine-tuned once with early stopping on
    ``raw["validation"]`` and saved to ``folder/model`` with ``settings``; a later call with the same settings
    reuses it, one with other settings raises (never overwriting a teacher). A fine-tuning killed midway
    resumes from its last epoch checkpoint (``folder/run``) when the settings match. ``smoke``: a tiny random
    BERT with ``base``'s tokenizer (tests). ``bf16``: fine-tune under bfloat16 autocast (callers put it in
    ``settings``). Early stopping's patience starts once the dev score beats the constant-prediction floor.
    ``require_progress`` (default: unless ``smoke``): raise :class:`TeacherDidNotLearnError`, saving
    nothing, when the best dev score does not beat :func:`constant_prediction_score`."""
    import json
    import os

    from transformers import (
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
        AutoTokenizer,
        BertConfig,
        BertForSequenceClassification,
        BertForTokenClassification,
    )

    from .base import write_json_atomic

    model_dir = os.path.join(folder, "model")
    record_path = os.path.join(model_dir, "recipe_teacher.json")
    if os.path.isfile(record_path):
        with open(record_path) as f:
            if json.load(f)["settings"] == settings:
                return model_dir
        raise FileExistsError(f"{model_dir} holds a teacher trained with other settings: pass another output folder")
    tokenizer = AutoTokenizer.from_pretrained(base)
    labels = {"num_labels": len(task.labels), "id2label": dict(enumerate(task.labels)),
              "label2id": {n: i for i, n in enumerate(task.labels)}}
    token = task.kind == "token"
    if smoke:
        config = BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=32, **labels)
        teacher = BertForTokenClassification(config) if token else BertForSequenceClassification(config)
    else:
        auto = AutoModelForTokenClassification if token else AutoModelForSequenceClassification
        teacher = auto.from_pretrained(base, **labels)
    targs = DistillationTrainingArguments(
        output_dir=os.path.join(folder, "run"), kd_loss="none", num_train_epochs=epochs, learning_rate=learning_rate,
        per_device_train_batch_size=batch_size, per_device_eval_batch_size=64, warmup_ratio=0.1, weight_decay=0.01,
        eval_strategy="epoch", save_strategy="epoch", save_total_limit=1, load_best_model_at_end=True,
        metric_for_best_model=task.metric, save_only_model=False, report_to="none", disable_tqdm=True,
        group_by_length=True, seed=0, logging_steps=50, bf16=bf16, restore_callback_states_from_checkpoint=True)
    train, dev = task.encode(raw["train"], tokenizer), task.encode(raw["validation"], tokenizer)
    floor = constant_prediction_score(task, train, dev)
    trainer = DistillationTrainer(model=teacher, args=targs, processing_class=tokenizer, train_dataset=train,
                                  eval_dataset=dev, compute_metrics=task.compute_metrics(),
                                  callbacks=[Progress("teacher"), EarlyStoppingAboveFloor(patience, floor)])
    trainer.remove_callback(PrinterCallback)
    run_record = os.path.join(folder, "run", "teacher_settings.json")
    resume = None
    if os.path.isfile(run_record):
        from transformers.trainer_utils import get_last_checkpoint

        with open(run_record) as f:
            same = json.load(f) == settings
        resume = get_last_checkpoint(os.path.join(folder, "run")) if same else None
        if not same:
            raise FileExistsError(f"{folder}/run holds a teacher run with other settings: pass another output folder")
    os.makedirs(os.path.join(folder, "run"), exist_ok=True)
    write_json_atomic(run_record, settings)
    trainer.train(resume_from_checkpoint=resume)
    if require_progress if require_progress is not None else not smoke:
        best = trainer.state.best_metric
        if best is None or best <= floor + 1e-9:
            raise TeacherDidNotLearnError(
                f"the teacher fine-tuned in {folder} reached dev {task.metric} {best} after {trainer.state.global_step}"
                f" steps ({epochs:g} epochs, learning rate {learning_rate:g}): no better than predicting the most "
                f"frequent label everywhere ({floor:.4f}). Nothing was saved to {model_dir}; fine-tune longer or "
                f"with a higher learning rate (e.g. more teacher epochs), after deleting {folder}/run")
    trainer.save_student(model_dir, role="teacher")
    import torch

    # the dev score of every epoch and the thread count: fine-tuning on CPU is deterministic for a given thread
    # count, so a later machine can tell after one epoch whether a lost teacher is being rebuilt bit for bit
    history = [round(h[f"eval_{task.metric}"], 6) for h in trainer.state.log_history if f"eval_{task.metric}" in h]
    write_json_atomic(record_path, {"settings": settings, "best_dev": trainer.state.best_metric,
                                    "metric": task.metric, "dev_history": history,
                                    "threads": torch.get_num_threads()})
    return model_dir


def parse_recipe_args(cls, argv: list[str]):
    """A recipe's settings dataclass from its command line: one ``.json``/``.yaml`` file (also after
    ``--config``), options, or a file followed by options that override its values
    (``config.json --seeds 43``). A setting the dataclass lacks is refused, naming the file."""
    import dataclasses
    import json

    from transformers import HfArgumentParser

    parser = HfArgumentParser(cls)
    if argv[:1] == ["--config"]:
        argv = argv[1:]
    if argv and argv[0].endswith((".json", ".yaml", ".yml")):
        path, argv = argv[0], argv[1:]
        with open(path, encoding="utf-8") as f:
            if path.endswith(".json"):
                values = json.load(f)
            else:
                import yaml

                values = yaml.safe_load(f)
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected a mapping of settings, got {type(values).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"{path}: unknown settings {unknown}; {cls.__name__} has {sorted(names)}")
        parser.set_defaults(**values)
        for action in parser._actions:  # a value from the file satisfies a required option
            if action.dest in values:
                action.required = False
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    return args


def without_option(argv: list[str], option: str) -> list[str]:
    """``argv`` without ``option`` and the value that follows it (to record a command without, e.g.,
    ``--partial true``)."""
    out, skip = [], False
    for x in argv:
        if skip:
            skip = False
        elif x == option:
            skip = True
        else:
            out.append(x)
    return out


def write_results(path: str, out: dict, markdown: str) -> None:
    """``out`` as JSON at ``path`` and ``markdown`` beside it (``.md``), both written atomically."""
    import os

    from .base import write_json_atomic, write_text_atomic

    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    write_json_atomic(path, out)
    write_text_atomic(os.path.splitext(path)[0] + ".md", markdown)


class PhaseTimer(TrainerCallback):
    """Seconds per training epoch split into teacher (the online teacher's forward plus a structured KD loss's
    teacher-side inference), student forward (the student model's forward pass) and the rest of each step
    (losses, backward, optimizer). No Trainer subclass: :meth:`attach` wraps the trainer's teacher signal and
    hooks the student's forward; evaluation passes are not counted. ``epochs[i]`` holds epoch i's phases."""

    def __init__(self):
        self.epochs: list[dict[str, float]] = []
        self._in_step = False
        self._now: dict[str, float] = {}
        self._loss = None
        self._forward_start = 0.0

    def attach(self, trainer) -> PhaseTimer:
        from .losses import KD_LOSSES

        signal = trainer.signal.online
        loss = KD_LOSSES.get(trainer.args.kd_loss)
        if signal is not None:
            def timed(model_inputs, cached, _signal=signal):
                start = time.perf_counter()
                try:
                    return _signal(model_inputs, cached)
                finally:
                    self._add("teacher_s", time.perf_counter() - start)

            trainer.signal.online = timed
        self._loss = loss if hasattr(loss, "teacher_s") else None

        def started(*_):
            self._forward_start = time.perf_counter()

        def finished(*_):
            self._add("student_forward_s", time.perf_counter() - self._forward_start)

        trainer.model.register_forward_pre_hook(started)
        trainer.model.register_forward_hook(finished)
        return self

    def _add(self, key: str, seconds: float) -> None:
        if self._in_step:
            self._now[key] = self._now.get(key, 0.0) + seconds

    def on_epoch_begin(self, args, state, control, **kwargs):
        self._now = {"teacher_s": 0.0, "student_forward_s": 0.0, "step_s": 0.0}
        self._epoch_start = time.perf_counter()
        self._side0 = self._loss.teacher_s if self._loss is not None else 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._in_step, self._step_start = True, time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self._in_step = False
        self._now["step_s"] += time.perf_counter() - self._step_start

    def on_epoch_end(self, args, state, control, **kwargs):
        now = dict(self._now)
        if self._loss is not None:
            now["teacher_s"] += self._loss.teacher_s - self._side0
        now["epoch_s"] = time.perf_counter() - self._epoch_start
        now["rest_s"] = now["step_s"] - now["teacher_s"] - now["student_forward_s"]
        self.epochs.append(now)


def publish_results(out: dict, markdown: str, name: str, *, results_file: str | None, output_dir: str,
                    smoke: bool, results_dir: str) -> str:
    """Write a recipe's results as ``name``.json + .md: to ``results_file`` when given, else inside
    ``output_dir`` for smoke runs (tests never touch the committed results), else in ``results_dir``;
    print the Markdown and return the JSON path."""
    import os

    path = results_file or os.path.join(output_dir if smoke else results_dir, f"{name}.json")
    write_results(path, out, markdown)
    print(markdown, flush=True)
    return path


def recipe_teacher_base(teacher_base: str, extra_test: str | None = None) -> str:
    """The recipes' input checks: ``teacher_base`` given (``~`` expanded) and ``extra_test`` an existing file;
    exits with a one-line message otherwise."""
    import os

    teacher_base = os.path.expanduser(teacher_base or "")
    if not teacher_base:
        raise SystemExit("--teacher_base: the pretrained encoder to fine-tune (see ../shared/tools/README.md)")
    if extra_test and not os.path.isfile(extra_test):
        raise SystemExit(f"--extra_test {extra_test}: no such file")
    return teacher_base
