"""Trainer callbacks of runs: a progress line per epoch, early stopping that waits for a real score, and
per-phase timing of training steps."""

from __future__ import annotations

import math
import sys
import time

from transformers import EarlyStoppingCallback, TrainerCallback


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
        from ..losses import KD_LOSSES

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
