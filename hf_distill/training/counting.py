"""Item counts of an accumulated batch: what each loss term is divided by (pure, no trainer state)."""

from __future__ import annotations

import torch

from ..base import IGNORE_INDEX
from ..data.align import DISTILL_MASK

#: names of the counts, in the order of :func:`count_items`'s tensor
COUNT_NAMES = ("task", "kd", "tokens", "task_rows", "kd_rows")


def count_items(batches: list[dict], device) -> torch.Tensor:
    """``(task labels, KD items, tokens, labeled rows, KD rows)`` summed over ``batches``, as one long tensor.

    KD items are ``distill_mask`` positions (token tasks), else labeled positions, else rows (sequence tasks).
    """
    task = kd = tokens = task_rows = kd_rows = 0
    for b in batches:
        labels = b.get("labels")
        if labels is not None:
            task = task + labels.ne(IGNORE_INDEX).sum()
            if labels.dim() > 1:
                task_rows = task_rows + labels.ne(IGNORE_INDEX).any(1).sum()
        if DISTILL_MASK in b:
            kd_rows = kd_rows + b[DISTILL_MASK].bool().any(1).sum()
            kd = kd + b[DISTILL_MASK].sum()
        elif labels is not None and labels.dim() > 1:
            kd = kd + labels.ne(IGNORE_INDEX).sum()
        else:
            kd = kd + b["input_ids"].shape[0]
        tokens = tokens + (b["attention_mask"].sum() if "attention_mask" in b else b["input_ids"].numel())
    values = (task, kd, tokens, task_rows, kd_rows)
    return torch.stack([torch.as_tensor(x, device=device).reshape(()) for x in values]).long()
