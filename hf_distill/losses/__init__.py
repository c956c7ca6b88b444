"""Distillation losses: pure functions, and the registry of KD loss objects the trainer picks from by name."""

from .hidden import hidden_cosine, hidden_mse
from .registry import (
    HIDDEN_LOSSES,
    KD_LOSSES,
    KDBatch,
    KDLoss,
    StructuredKDLoss,
    finite_values,
    hidden_terms,
    register_kd_loss,
)
from .token import cross_entropy, hard_loss, kl_loss, mse_loss, reduce_positions

__all__ = [
    "HIDDEN_LOSSES", "KD_LOSSES", "KDBatch", "KDLoss", "StructuredKDLoss", "cross_entropy", "finite_values",
    "hard_loss", "hidden_cosine", "hidden_terms", "hidden_mse", "kl_loss", "mse_loss", "reduce_positions",
    "register_kd_loss",
]
