"""What a run saves beyond ``Trainer``'s own files: the state a checkpoint needs to resume (and the checks
before resuming), the record of how a student was distilled, and pickled arguments without the Hub token."""

from __future__ import annotations

import copy
import os
from contextlib import contextmanager

from ..base import write_json_atomic
from ..files import read_json

#: what the trainer resolved during a run, saved in every checkpoint beside Trainer's own state
STATE_FILE = "hf_distill_state.json"


def save_trainer_state(folder: str, auto_kd_weight: float | None) -> None:
    write_json_atomic(os.path.join(folder, STATE_FILE), {"auto_kd_weight": auto_kd_weight})


def resume_state(checkpoint: str, kd_weight: str) -> float | None:
    """The resolved ``auto`` KD weight saved in ``checkpoint``; raises when the checkpoint lacks the optimizer
    or scheduler state (resuming would silently restart them) or the ``auto`` weight it needs."""
    missing = [f for f in ("optimizer.pt", "scheduler.pt") if not os.path.isfile(os.path.join(checkpoint, f))]
    if missing:
        raise ValueError(f"{checkpoint} lacks {', '.join(missing)} (saved with save_only_model=True?): "
                         "resuming would restart the optimizer; start a new run from its weights instead")
    state = os.path.join(checkpoint, STATE_FILE)
    if os.path.isfile(state):
        return read_json(state).get("auto_kd_weight")
    if kd_weight == "auto":
        raise ValueError(f"{checkpoint} has no {STATE_FILE}: the resolved kd_weight='auto' is unknown")
    return None


@contextmanager
def without_hub_token(trainer):
    """``trainer.args`` with the Hub token removed while the block runs (``training_args.bin`` is pickled)."""
    real = trainer.args
    if not (real.hub_token or getattr(real, "push_to_hub_token", None)):
        yield
        return
    trainer.args = copy.copy(real)
    trainer.args.hub_token = None
    if hasattr(trainer.args, "push_to_hub_token"):
        trainer.args.push_to_hub_token = None
    try:
        yield
    finally:
        trainer.args = real


def distillation_record(args, state, *, teacher, teacher_id: int | None, signal: str | None,
                        auto_kd_weight: float | None, train_examples: int | None, row_counts: dict) -> dict:
    """What a model card needs to say about how a student was distilled (no metrics): ``distillation.json``."""
    info = {
        "teacher": getattr(getattr(teacher, "config", None), "_name_or_path", None) if teacher else None,
        "teacher_fingerprint": teacher_id, "teacher_signal": signal,
        "kd_loss": args.kd_loss, "temperature": args.temperature, "kd_weight": args.kd_weight,
        "resolved_kd_weight": auto_kd_weight, "task_weight": args.task_weight,
        "kd_weight_schedule": args.kd_weight_schedule, "hidden_matches": args.hidden_matches or None,
        "num_train_epochs": args.num_train_epochs, "learning_rate": args.learning_rate,
        "per_device_train_batch_size": args.per_device_train_batch_size,
        "gradient_accumulation_steps": args.gradient_accumulation_steps, "world_size": args.world_size,
        "seed": args.seed, "global_step": state.global_step, "train_examples": train_examples, **row_counts,
    }
    if args.kd_loss == "kbest":
        info["kbest_k"] = args.kbest_k
    return info
