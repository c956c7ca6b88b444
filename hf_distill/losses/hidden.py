"""Hidden-state matching losses (pure functions): MSE and cosine distance over masked positions."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .token import reduce_positions


def _check(student: torch.Tensor, teacher: torch.Tensor) -> None:
    if student.shape != teacher.shape:
        raise ValueError(
            f"hidden states differ in shape: student {tuple(student.shape)} vs teacher {tuple(teacher.shape)} "
            "(a projection maps student to teacher size; sequence lengths must match)"
        )


def hidden_mse(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor | None = None, normalizer=None):
    """Mean over the hidden axis of the squared difference, summed over masked positions / ``normalizer``."""
    _check(student, teacher)
    return reduce_positions((student.float() - teacher.float()).pow(2).mean(-1), mask, normalizer)


def hidden_cosine(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor | None = None, normalizer=None):
    """``1 - cos(student, teacher)`` per position, summed over masked positions / ``normalizer``."""
    _check(student, teacher)
    return reduce_positions(1.0 - F.cosine_similarity(student.float(), teacher.float(), dim=-1), mask, normalizer)
