"""Weights of the loss terms over training (pure functions of the arguments and the trainer state)."""

from __future__ import annotations

import math


def in_last_epoch(args, state) -> bool:
    last = math.ceil(state.num_train_epochs or args.num_train_epochs) - 1
    return (state.epoch or 0.0) >= last


def kd_weight_at(args, state, auto_weight: float | None) -> float:
    """The KD weight now: the base weight (a number, or the resolved ``auto`` one) times the schedule."""
    base = auto_weight if args.kd_weight == "auto" else float(args.kd_weight)
    schedule = args.kd_weight_schedule
    if schedule == "linear_decay" and state.max_steps:
        return base * max(0.0, 1.0 - state.global_step / state.max_steps)
    if schedule in ("zero_last_epoch", "kd_only_until_last_epoch"):
        return 0.0 if in_last_epoch(args, state) else base
    return base


def task_weight_at(args, state) -> float:
    """``task_weight``, but 0 before the last epoch under ``kd_only_until_last_epoch``."""
    if args.kd_weight_schedule == "kd_only_until_last_epoch" and not in_last_epoch(args, state):
        return 0.0
    return args.task_weight


def auto_kd_weight(task: float, kd: float) -> float:
    """``kd_weight="auto"``: the weight that makes the first step's weighted KD term equal the task term."""
    return task / kd if kd > 0 and task > 0 else 1.0
