"""Distillation losses: pure functions and the registries the trainer picks from by name."""

from .hidden import hidden_cosine, hidden_mse
from .token import cross_entropy, hard_loss, kl_loss, mse_loss

#: ``DistillationTrainingArguments.kd_loss`` -> logit-level loss (``none`` has no entry).
LOGIT_LOSSES = {"kl": kl_loss, "mse": mse_loss, "hard": hard_loss}
#: hidden-state match kinds.
HIDDEN_LOSSES = {"mse": hidden_mse, "cosine": hidden_cosine}

__all__ = [
    "HIDDEN_LOSSES", "LOGIT_LOSSES", "cross_entropy", "hard_loss", "hidden_cosine", "hidden_mse", "kl_loss",
    "mse_loss",
]
