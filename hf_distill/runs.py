"""Helpers for scripts that train and compare several students (the demo, the zoo, recipes, benchmarks): a
progress line per epoch, training to convergence on a dev split, and test-set scoring."""

from __future__ import annotations

import math
import sys
import time

from transformers import EarlyStoppingCallback, PrinterCallback, TrainerCallback

from .args import DistillationTrainingArguments
from .metrics import TokenClassificationMetrics
from .trainer import DistillationTrainer


class Progress(TrainerCallback):
    """One line per epoch (phase, epoch, loss, dev F1, wall and CPU time, estimate of the time left), printed
    with a flush so it shows in logs and pipes too; also records each epoch's wall and CPU seconds."""

    def __init__(self, phase: str, quiet: bool = False, stream=None):
        self.phase, self.quiet, self.stream = phase, quiet, stream or sys.stdout
        self.epochs: list[float] = []
        self.cpu_epochs: list[float] = []
        self._t0 = self._c0 = self._start = 0.0
        self._loss: float | None = None
        self.dev_f1: list[float] = []

    def say(self, text: str) -> None:
        if not self.quiet:
            print(f"[{self.phase}] {text}", file=self.stream, flush=True)

    def on_train_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()
        self.say(f"training: up to {args.num_train_epochs:g} epochs, {state.max_steps} steps")

    def on_epoch_begin(self, args, state, control, **kwargs):
        self._t0, self._c0 = time.perf_counter(), time.process_time()

    def on_epoch_end(self, args, state, control, **kwargs):
        self.epochs.append(time.perf_counter() - self._t0)
        self.cpu_epochs.append(time.process_time() - self._c0)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self._loss = logs["loss"]

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        metrics = metrics or {}
        done = round(state.epoch or 0)
        total = math.ceil(args.num_train_epochs)
        elapsed = time.perf_counter() - self._start
        eta = elapsed / max(done, 1) * (total - done)
        key = (args.metric_for_best_model or "f1").removeprefix("eval_")
        f1 = metrics.get(f"eval_{key}")
        if f1 is not None:
            self.dev_f1.append(f1)
        best = max(self.dev_f1) if self.dev_f1 else None
        name = {"f1": "F1", "macro_f1": "macro-F1"}.get(key, key)
        self.say(f"epoch {done}/{total}  loss {self._loss if self._loss is not None else float('nan'):.4f}  "
                 f"dev {name} {100 * f1 if f1 is not None else float('nan'):.2f}  "
                 f"(best {100 * best if best is not None else float('nan'):.2f})  "
                 f"wall {elapsed:.0f}s  CPU {sum(self.cpu_epochs):.0f}s  at most {eta:.0f}s left")


def train_to_convergence(model, targs, train, tokenizer, teacher=None, dev=None, label_names=None, patience: int = 2,
           phase: str = "train", quiet: bool = False) -> dict:
    """Train (with early stopping on ``dev`` when given) and return wall/CPU times and epochs to the best."""
    progress = Progress(phase, quiet)
    callbacks = [progress]
    if dev is not None:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=patience))
    trainer = DistillationTrainer(model=model, args=targs, train_dataset=train, eval_dataset=dev,
                                  processing_class=tokenizer, teacher_model=teacher, callbacks=callbacks,
                                  compute_metrics=TokenClassificationMetrics(label_names) if dev is not None
                                  else None)
    trainer.remove_callback(PrinterCallback)  # the progress line replaces the raw log dicts
    start, cpu = time.perf_counter(), time.process_time()
    trainer.train()
    out = {"train_s": time.perf_counter() - start, "train_cpu_s": time.process_time() - cpu,
           "epoch_s": progress.epochs, "epoch_cpu_s": progress.cpu_epochs, "epochs_run": len(progress.epochs)}
    if dev is not None:
        out["dev_f1"] = trainer.state.best_metric
        best = trainer.state.best_model_checkpoint
        out["best_epoch"] = epoch_of(trainer.state, best)
    return out


def epoch_of(state, checkpoint: str | None) -> int | None:
    """The epoch at which ``checkpoint`` (``.../checkpoint-STEP``) was saved."""
    if not checkpoint:
        return None
    step = int(checkpoint.rstrip("/").rsplit("-", 1)[-1])
    for entry in state.log_history:
        if entry.get("step") == step and "eval_f1" in entry:
            return round(entry["epoch"])
    return None


def evaluate(model, dataset, tokenizer, label_names, batch_size: int = 64) -> dict[str, float]:
    """seqeval scores of ``model`` on a tokenized dataset (first-sub-word positions)."""
    targs = DistillationTrainingArguments(output_dir="/tmp/hf_distill_eval", per_device_eval_batch_size=batch_size,
                                          report_to="none", kd_loss="none", disable_tqdm=True,
                                          dataloader_pin_memory=False)
    trainer = DistillationTrainer(model=model, args=targs, processing_class=tokenizer,
                                  compute_metrics=TokenClassificationMetrics(label_names))
    metrics = trainer.evaluate(dataset, metric_key_prefix="test")
    return {k.removeprefix("test_"): v for k, v in metrics.items()}
