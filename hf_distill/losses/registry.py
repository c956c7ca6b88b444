"""KD loss objects and the one registry the trainer and the arguments read.

A KD loss is a small class: what it needs from the teacher (``needs``: logits, a CRF), the arguments it
reads by name (``hparams``), and ``__call__(batch, **hparams)`` returning the term, already divided by its
own item count. Adding a loss is one class and one registry line::

    from hf_distill.losses import KDLoss, register_kd_loss, reduce_positions

    @register_kd_loss("cosine_logits")
    class CosineLogits(KDLoss):
        def __call__(self, batch, **hp):
            per = 1 - torch.cosine_similarity(batch.student_logits, batch.teacher_logits, dim=-1)
            return reduce_positions(per, batch.mask, batch.counts.get("kd"))

``DistillationTrainingArguments(kd_loss="cosine_logits")`` then accepts it and the trainer uses it.
The math lives in the pure functions of :mod:`.token` and :mod:`.structured`; these classes only pick
their inputs and normalizers.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch

from ..students.crf import kbest, marginals, select_positions
from .hidden import hidden_cosine, hidden_mse
from .structured import kbest_loss, posterior_kd_loss, structural_kd_loss, substructure_l2
from .token import hard_loss, kl_loss, mse_loss


@dataclass
class KDBatch:
    """What a KD loss sees of one batch.

    ``mask``: KD positions (batch, time) for token tasks, None for sequence tasks. ``counts``: item counts
    over the whole accumulated (and gathered) batch: ``kd`` positions, ``kd_rows``, ``tokens``...; empty
    when the loss should count the batch itself. ``student_crf`` / ``teacher_crf``: (transitions, start,
    end) potentials of CRF models.
    """

    student_logits: torch.Tensor
    teacher_logits: torch.Tensor
    mask: torch.Tensor | None = None
    counts: dict = field(default_factory=dict)
    student_crf: tuple | None = None
    teacher_crf: tuple | None = None


class KDLoss:
    """Base of the KD losses: declare ``needs`` and ``hparams``, implement ``__call__``."""

    name: str = ""
    needs: frozenset[str] = frozenset({"logits"})  # "logits", "crf"
    hparams: tuple[str, ...] = ()  # DistillationTrainingArguments fields passed by name
    #: False when the loss needs every label's logit: a top-k cache (-inf outside its k labels) is refused
    top_k_ok: bool = True

    def __call__(self, batch: KDBatch, **hparams) -> torch.Tensor:
        raise NotImplementedError

    @property
    def structured(self) -> bool:
        return "crf" in self.needs


#: ``kd_loss`` name -> loss object
KD_LOSSES: dict[str, KDLoss] = {}


def register_kd_loss(name: str):
    """Class decorator: register a :class:`KDLoss` subclass under ``name`` (the ``kd_loss`` value)."""
    def wrap(cls):
        if not (isinstance(cls, type) and issubclass(cls, KDLoss)):
            raise TypeError(f"{cls!r} is not a KDLoss subclass")
        obj = cls()
        obj.name = name
        KD_LOSSES[name] = obj
        return cls
    return wrap


def _check_shapes(batch: KDBatch, what: str = "logits") -> None:
    if batch.teacher_logits.shape != batch.student_logits.shape:
        raise ValueError(f"teacher {what} {tuple(batch.teacher_logits.shape)} and student {what} "
                         f"{tuple(batch.student_logits.shape)} differ in shape (same tokenizer and label set needed)")


# ----------------------------------------------------------------------------------- logit losses
@register_kd_loss("kl")
class KLLoss(KDLoss):
    """T² · KL(teacher ‖ student) of temperature-softened distributions, per KD item."""

    hparams = ("temperature",)

    def __call__(self, batch, temperature=1.0):
        _check_shapes(batch)
        return kl_loss(batch.student_logits, batch.teacher_logits, batch.mask, temperature=temperature,
                       normalizer=batch.counts.get("kd"))


@register_kd_loss("mse")
class MSELoss(KDLoss):
    """Mean squared error between logits, per KD item."""

    top_k_ok = False

    def __call__(self, batch):
        _check_shapes(batch)
        return mse_loss(batch.student_logits, batch.teacher_logits, batch.mask, normalizer=batch.counts.get("kd"))


@register_kd_loss("hard")
class HardLoss(KDLoss):
    """Cross-entropy against the teacher's argmax, per KD item."""

    def __call__(self, batch):
        _check_shapes(batch)
        return hard_loss(batch.student_logits, batch.teacher_logits, batch.mask, normalizer=batch.counts.get("kd"))


# ------------------------------------------------------------------------------ structured losses
class StructuredKDLoss(KDLoss):
    """Structured KD between a student CRF and a teacher CRF over word (KD) positions.

    Teacher-side inference (K-best paths, marginals) runs in :meth:`teacher_side`, without gradients;
    its seconds add up in ``teacher_s`` (benchmarks read it to split the time of an epoch).
    """

    needs = frozenset({"logits", "crf"})
    top_k_ok = False
    teacher_s = 0.0

    def teacher_side(self, t_em, teacher, mask, **hparams):
        """Structures the student is trained towards, computed from the teacher's potentials (or None)."""
        return None

    def __call__(self, batch, **hparams):
        if batch.teacher_crf is None:
            raise ValueError(f"kd_loss={self.name!r} needs a CRF teacher (a model with a .crf head, or a cache "
                             "built from one)")
        if batch.student_crf is None:
            raise ValueError(f"kd_loss={self.name!r} needs a student with a CRF head")
        _check_shapes(batch, "emissions")
        rows = batch.mask.any(1)
        s_em, mask, order = select_positions(batch.student_logits[rows], batch.mask[rows])
        n = s_em.shape[-1]
        t_em = batch.teacher_logits[rows].to(s_em.device).gather(1, order.unsqueeze(-1).expand(-1, -1, n))
        teacher = tuple(x.to(s_em.device) for x in batch.teacher_crf)
        counts = {"kd": batch.counts.get("kd", mask.sum()), "kd_rows": batch.counts.get("kd_rows", rows.sum())}
        start = time.perf_counter()
        with torch.no_grad():
            structures = self.teacher_side(t_em.float(), tuple(x.float() for x in teacher), mask, **hparams)
        self.teacher_s += time.perf_counter() - start
        return self.packed(s_em, batch.student_crf, t_em, teacher, mask, counts, structures)

    def packed(self, s_em, student, t_em, teacher, mask, counts, structures) -> torch.Tensor:
        raise NotImplementedError


@register_kd_loss("substructure")
class SubstructureLoss(StructuredKDLoss):
    """Efficient sub-structured KD (Lin et al. 2022): L2 of sub-structure scores, per sub-structure."""

    def packed(self, s_em, student, t_em, teacher, mask, counts, structures):
        n = s_em.shape[-1]
        subs = (counts["kd"] - counts["kd_rows"]) * n * n + counts["kd_rows"] * n
        return substructure_l2(s_em, student[0], t_em, teacher[0], mask, student[1], teacher[1], normalizer=subs)


@register_kd_loss("substructure_emissions")
class SubstructureEmissionsLoss(StructuredKDLoss):
    """L2 of emissions only, per (position, label)."""

    def packed(self, s_em, student, t_em, teacher, mask, counts, structures):
        return substructure_l2(s_em, student[0], t_em, teacher[0], mask, emissions_only=True,
                               normalizer=counts["kd"] * s_em.shape[-1])


@register_kd_loss("kbest")
class KBestLoss(StructuredKDLoss):
    """The teacher's K-best sequences as weighted pseudo-labels, per sequence."""

    hparams = ("kbest_k",)

    def teacher_side(self, t_em, teacher, mask, kbest_k=3):
        return kbest(t_em, *teacher, mask, k=kbest_k)

    def packed(self, s_em, student, t_em, teacher, mask, counts, structures):
        return kbest_loss(s_em, *student, mask, *structures, normalizer=counts["kd_rows"])


@register_kd_loss("structural")
class StructuralLoss(StructuredKDLoss):
    """Factorized structural KD (Wang et al. 2021), per sequence."""

    def teacher_side(self, t_em, teacher, mask):
        return marginals(t_em, *teacher, mask)

    def packed(self, s_em, student, t_em, teacher, mask, counts, structures):
        return structural_kd_loss(s_em, *student, mask, *structures, normalizer=counts["kd_rows"])


@register_kd_loss("posterior")
class PosteriorLoss(StructuredKDLoss):
    """KL between teacher and student unary marginals, per position."""

    def teacher_side(self, t_em, teacher, mask):
        return marginals(t_em, *teacher, mask)[0]

    def packed(self, s_em, student, t_em, teacher, mask, counts, structures):
        s_unary, _ = marginals(s_em, *student, mask, create_graph=True)
        return posterior_kd_loss(s_unary, structures, mask, normalizer=counts["kd"])


#: hidden-state match kinds
HIDDEN_LOSSES = {"mse": hidden_mse, "cosine": hidden_cosine}


def hidden_terms(specs, student_hidden, teacher_hidden, projections, mask, normalizer) -> dict[str, torch.Tensor]:
    """One term per ``(teacher_layer, student_layer, kind)`` of ``specs``: the student's hidden state (through
    its projection ``f"{t}_{s}"`` when there is one) matched to the teacher's, named ``hidden_{t}_{s}_{kind}_loss``."""
    if teacher_hidden is None:
        raise ValueError("hidden_matches need the teacher's hidden states: train with teacher_model= on rows without "
                         "cache columns, or cache them with cache_teacher_outputs(..., hidden_layers=[...])")
    terms = {}
    for t, s, kind in specs:
        if isinstance(teacher_hidden, dict) and t not in teacher_hidden:
            raise ValueError(f"hidden match {t}:{s}:{kind} needs teacher layer {t}; the cache holds layers "
                             f"{sorted(teacher_hidden)}: rebuild it with hidden_layers including {t}")
        student_h = student_hidden[s]
        if f"{t}_{s}" in projections:
            student_h = projections[f"{t}_{s}"](student_h)
        terms[f"hidden_{t}_{s}_{kind}_loss"] = HIDDEN_LOSSES[kind](
            student_h, teacher_hidden[t].to(student_h.device), mask, normalizer=normalizer)
    return terms


def finite_values(terms: dict[str, torch.Tensor], step: int) -> dict[str, float]:
    """The terms as numbers, for logging; a NaN or infinite term raises, naming it and the step."""
    values = {}
    for name, value in terms.items():
        number = value.detach().item()
        if not math.isfinite(number):
            raise FloatingPointError(
                f"loss term {name} is {number} at step {step}: check the teacher signal (a top-k cache gives -inf "
                "outside its k labels, which structured KD cannot use) and the learning rate")
        values[name] = number
    return values
