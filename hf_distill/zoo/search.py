"""Hyper-parameter search of one zoo student (Optuna on the dev split)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..base import write_json_atomic
from .specs import build
from .student import training_args

if TYPE_CHECKING:
    from ..runs import TaskSpec

def search_student(args, template, spec, teacher, tokenizer, task: TaskSpec, train, dev, folder, kd: bool, keep=None,
            words=None) -> dict:
    """Optuna over learning rate (log-uniform 5e-5..1e-2), temperature and KD weight on the dev split: each
    trial trains with early stopping (``args.patience``) and scores its best dev epoch; every trial is recorded
    in ``search/trials.json``."""
    from transformers import EarlyStoppingCallback, PrinterCallback

    from ..training.trainer import DistillationTrainer

    trials: list[dict] = []
    current: dict = {}
    metric = f"eval_{task.metric}"

    def space(trial):
        hp = {"learning_rate": trial.suggest_float("learning_rate", 5e-5, 1e-2, log=True)}
        if kd:
            hp["temperature"] = trial.suggest_categorical("temperature", [1.0, 2.0, 4.0])
            hp["kd_weight"] = trial.suggest_categorical("kd_weight", ["auto", "0.5", "1.0", "2.0"])
        current.clear()
        current.update(hp)
        return hp

    class TrialEarlyStopping(EarlyStoppingCallback):
        """Early stopping whose patience count and dev history start afresh with each trial."""

        def on_train_begin(self, args, state, control, **kwargs):
            self.early_stopping_patience_counter = 0
            self.history: list[float] = []
            return super().on_train_begin(args, state, control, **kwargs)

        def on_evaluate(self, args, state, control, metrics, **kwargs):
            self.history.append(metrics[metric])  # before the objective is read (Trainer reports after this)
            return super().on_evaluate(args, state, control, metrics, **kwargs)

        def on_train_end(self, args, state, control, **kwargs):
            trials.append({**current, "dev_history": self.history,
                           "objective": max(self.history) if self.history else None})

    stopper = TrialEarlyStopping(early_stopping_patience=args.patience)
    targs = training_args(args, template, os.path.join(folder, "search"), task, kd, spec.learning_rate,
                           save_strategy="no", load_best_model_at_end=False)
    trainer = DistillationTrainer(model_init=lambda trial=None: build(spec, teacher, tokenizer, task, keep, words),
                                  args=targs, train_dataset=train, eval_dataset=dev, processing_class=tokenizer,
                                  compute_metrics=task.compute_metrics(), callbacks=[stopper])
    trainer.remove_callback(PrinterCallback)
    best = trainer.hyperparameter_search(hp_space=space, backend="optuna", n_trials=args.search, direction="maximize",
                                         compute_objective=lambda metrics: max(stopper.history))
    write_json_atomic(os.path.join(folder, "search", "trials.json"), trials)
    return {"objective": best.objective, **best.hyperparameters}
