"""Logit-level losses for token and sequence classification: pure functions, tensors in, scalar out.

Every function takes logits shaped ``(..., labels)`` and an optional boolean ``mask`` shaped ``(...)``
(``True`` where the position counts). The masked sum is divided by ``normalizer`` when given (the
trainer passes the number of items in the whole accumulated batch, so gradient accumulation is exact),
else by the number of masked positions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..base import IGNORE_INDEX


def reduce_positions(per_position: torch.Tensor, mask: torch.Tensor | None, normalizer) -> torch.Tensor:
    """Sum of per-position values over the positions ``mask`` keeps, divided by ``normalizer`` (the item count
    the trainer passes, so gradient accumulation is exact) or, without one, by the kept positions.

    Args:
        per_position: the values, e.g. (batch, length).
        mask: 1 where a position counts; ``None`` counts all.
        normalizer: a number or scalar tensor, or ``None``.
    """
    if mask is not None:
        per_position = per_position.masked_fill(~mask.bool(), 0.0)
        count = mask.sum()
    else:
        count = per_position.numel()
    denom = normalizer if normalizer is not None else count
    if torch.is_tensor(denom):
        denom = denom.to(per_position.dtype).clamp_min(1)
    else:
        denom = max(float(denom), 1.0)
    return per_position.sum() / denom


def kl_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    mask: torch.Tensor | None = None,
    temperature: float = 1.0,
    normalizer=None,
) -> torch.Tensor:
    """T² · KL(softmax(teacher / T) ‖ softmax(student / T)) over the label axis (the last one).

    Teacher logits of ``-inf`` (labels outside a cached top-k) have probability 0 and contribute nothing.
    """
    t = temperature
    s_logp = F.log_softmax(student_logits.float() / t, dim=-1)
    t_logp = F.log_softmax(teacher_logits.float() / t, dim=-1)
    t_p = t_logp.exp()
    per_label = torch.where(t_p > 0, t_p * (t_logp - s_logp), torch.zeros_like(t_p))
    return reduce_positions(per_label.sum(-1), mask, normalizer) * (t * t)


def mse_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    mask: torch.Tensor | None = None,
    normalizer=None,
) -> torch.Tensor:
    """Mean squared error between logits, averaged over labels, summed over positions / ``normalizer``."""
    if not torch.isfinite(teacher_logits).all():
        raise ValueError("mse_loss needs full teacher logits; top-k cached logits hold -inf outside the top k")
    per_position = (student_logits.float() - teacher_logits.float()).pow(2).mean(-1)
    return reduce_positions(per_position, mask, normalizer)


def hard_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    mask: torch.Tensor | None = None,
    normalizer=None,
) -> torch.Tensor:
    """Cross-entropy against the teacher's argmax labels (hard distillation)."""
    return cross_entropy(student_logits, teacher_logits.argmax(-1), mask, normalizer)


def cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None = None, normalizer=None
) -> torch.Tensor:
    """Cross-entropy summed over positions whose label is not -100 (and inside ``mask``), / ``normalizer``."""
    valid = labels != IGNORE_INDEX
    if mask is not None:
        valid = valid & mask.bool()
    per_position = F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1).clamp_min(0), reduction="none"
    ).view(labels.shape)
    return reduce_positions(per_position, valid, normalizer)

