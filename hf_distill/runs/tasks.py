"""What a run distills and how it is scored: the task of a data set (tagging or classification), test-set
scoring, and training one model to convergence on a dev split."""

from __future__ import annotations

import time
from dataclasses import dataclass

from transformers import EarlyStoppingCallback, PrinterCallback

from ..metrics import TokenClassificationMetrics
from ..training.args import DistillationTrainingArguments
from ..training.trainer import DistillationTrainer
from .callbacks import Progress


def train_to_convergence(model, targs, train, tokenizer, teacher=None, dev=None, label_names=None, patience: int = 2,
                         phase: str = "train", quiet: bool = False, compute_metrics=None,
                         save_to: str | None = None, record: dict | None = None) -> dict:
    """Train (with early stopping on ``dev`` when given) and return wall/CPU times and epochs to the best.
    ``compute_metrics`` defaults to seqeval over ``label_names`` (tagging). ``save_to``: save the model there
    ready to ship (``save_student``: weights, tokenizer, code, ``distillation.json`` with ``record``)."""
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
    if save_to is not None:
        trainer.save_student(save_to, **(record or {}))
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
        trainer.remove_callback(PrinterCallback)  # no raw {'test_loss': ...} dicts between progress lines
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
        from ..data import tokenize_and_align, tokenize_text

        if self.kind == "token":
            return tokenize_and_align(split, tokenizer, self.label_column, max_length=max_length)
        return tokenize_text(split, tokenizer, self.text_column, self.label_column, max_length=max_length)

    def compute_metrics(self):
        from ..metrics import TokenClassificationMetrics, classification_metrics

        return TokenClassificationMetrics(self.labels) if self.kind == "token" else classification_metrics
