"""``DistillationTrainingArguments``: ``TrainingArguments`` plus the knowledge-distillation settings."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from transformers import TrainingArguments

from ..losses import HIDDEN_LOSSES, KD_LOSSES

_MIXED_PRECISION_ENV = "ACCELERATE_MIXED_PRECISION"
#: the mixed precision of the launcher (``accelerate launch``, its config), before any arguments object set it
_LAUNCH_MIXED_PRECISION = os.environ.get(_MIXED_PRECISION_ENV)


def _accelerator_available() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return torch.cuda.is_available() or bool(mps and mps.is_available())


def fast_bf16_available() -> bool:
    """Whether bfloat16 autocast speeds training up here: a CUDA device with bf16, or a CPU with native bf16
    instructions (AVX512-BF16 or AMX, read from ``/proc/cpuinfo``). Without them a CPU emulates bf16, slower."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    flags = cpu_flags()
    return "avx512_bf16" in flags or "amx_bf16" in flags


def cpu_flags() -> list[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return []


KD_SCHEDULES = ("constant", "linear_decay", "zero_last_epoch", "kd_only_until_last_epoch")


def kd_loss_names() -> tuple[str, ...]:
    """Every accepted ``kd_loss``: the registered losses (read now, so later registrations count) and none."""
    return (*KD_LOSSES, "none")


def parse_hidden_match(spec) -> tuple[int, int, str]:
    """``"6:2:mse"`` or ``(6, 2, "mse")`` -> ``(teacher_layer, student_layer, kind)``; layer 0 = embeddings."""
    parts = spec.split(":") if isinstance(spec, str) else list(spec)
    if len(parts) == 2:
        parts = [*parts, "mse"]
    try:
        t, s, kind = int(parts[0]), int(parts[1]), str(parts[2])
    except (ValueError, IndexError):
        raise ValueError(f"hidden match {spec!r}: expected 'teacher_layer:student_layer[:mse|cosine]'") from None
    if kind not in HIDDEN_LOSSES:
        raise ValueError(f"hidden match {spec!r}: kind {kind!r} is not one of {tuple(HIDDEN_LOSSES)}")
    if t < 0 or s < 0:
        raise ValueError(f"hidden match {spec!r}: layer indices must be >= 0")
    return t, s, kind


@dataclass
class DistillationTrainingArguments(TrainingArguments):
    """Training arguments for :class:`~hf_distill.DistillationTrainer`.

    The loss is ``task_weight * task + kd_weight(t) * kd + sum(hidden terms)``, where ``kd_weight(t)``
    follows ``kd_weight_schedule``.
    """

    kd_loss: str = field(
        default="kl",
        metadata={"help": "A registered KD loss (hf_distill.losses.KD_LOSSES): kl (soft targets, times T^2), "
                          "mse, hard (teacher argmax); for CRF students substructure, substructure_emissions, "
                          "kbest, structural, posterior; or none."},
    )
    temperature: float = field(default=1.0, metadata={
        "help": "Softmax temperature of the KL term. The one default of the library, its commands and recipes: 1, "
                "measured best with transfer sets (benchmarks/results/transfer/transfer.md, foundation_kd_sweep.md)."})
    kd_weight: str = field(
        default="1.0",
        metadata={"help": "Weight of the KD term: a number, or 'auto' (set on the first step so that the weighted "
                          "KD term equals the weighted task term; what the zoo and the recipes use)."},
    )
    task_weight: float = field(default=1.0, metadata={"help": "Weight of the supervised task loss."})
    kd_weight_schedule: str = field(
        default="constant",
        metadata={"help": "constant, linear_decay (to 0 at the last step), zero_last_epoch, or "
                          "kd_only_until_last_epoch (KD alone, then the task loss alone in the last epoch).",
                  "choices": list(KD_SCHEDULES)},
    )
    hidden_matches: list[str] = field(
        default_factory=list,
        metadata={"help": "Hidden-state matches 'teacher_layer:student_layer:mse|cosine' (0 = embeddings); "
                          "a learned projection is added where hidden sizes differ."},
    )
    hidden_weight: float = field(default=1.0, metadata={"help": "Weight of each hidden-state term."})
    kbest_k: int = field(default=3, metadata={"help": "K of the teacher's K-best sequences (kd_loss=kbest)."})
    crf_learning_rate: float | None = field(default=None, metadata={
        "help": "Learning rate of a CRF head's transition scores (default: learning_rate). They start at zero and "
                "barely move at an encoder's learning rate, so BERT-CRF setups often give them a larger one."})

    def __post_init__(self):
        if not (self.fp16 or self.bf16):
            # TrainingArguments writes its mixed precision into the process environment, where every later
            # arguments object (and its Trainer) would inherit it: an fp32 run after a bf16 one in the same
            # process would silently train in bf16. Start from what the launcher asked for instead.
            if _LAUNCH_MIXED_PRECISION is None:
                os.environ.pop(_MIXED_PRECISION_ENV, None)
            else:
                os.environ[_MIXED_PRECISION_ENV] = _LAUNCH_MIXED_PRECISION
        if (self.bf16 or self.bf16_full_eval) and not self.use_cpu and not _accelerator_available():
            self.use_cpu = True  # bf16 autocast on a CPU-only machine: transformers refuses it unless use_cpu
        super().__post_init__()
        if self.kd_loss not in kd_loss_names():
            raise ValueError(f"kd_loss={self.kd_loss!r}: choose one of {kd_loss_names()} (or register a new one "
                             "with hf_distill.losses.register_kd_loss)")
        if self.kd_weight_schedule not in KD_SCHEDULES:
            raise ValueError(f"kd_weight_schedule={self.kd_weight_schedule!r}: choose one of {KD_SCHEDULES}")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature must be a finite number > 0, got {self.temperature}")
        for name in ("task_weight", "hidden_weight"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if self.kbest_k < 1:
            raise ValueError(f"kbest_k must be >= 1, got {self.kbest_k}")
        if self.crf_learning_rate is not None and not (math.isfinite(self.crf_learning_rate)
                                                       and self.crf_learning_rate > 0):
            raise ValueError(f"crf_learning_rate must be a finite number > 0, got {self.crf_learning_rate}")
        self.kd_weight = str(self.kd_weight)
        if self.kd_weight != "auto":
            try:
                if not (math.isfinite(float(self.kd_weight)) and float(self.kd_weight) >= 0):
                    raise ValueError
            except ValueError:
                raise ValueError(f"kd_weight={self.kd_weight!r}: expected a finite number >= 0 or 'auto'") from None
        self.hidden_matches = [":".join(map(str, parse_hidden_match(m))) for m in self.hidden_matches or []]

    @property
    def hidden_match_specs(self) -> list[tuple[int, int, str]]:
        return [parse_hidden_match(m) for m in self.hidden_matches]


def keep_best_epoch(metric: str, save_only_model: bool | None = None) -> dict:
    """The ``TrainingArguments`` fields of training to convergence: evaluate and save every epoch, keep one
    checkpoint, restore the one with the best ``metric`` (higher is better) at the end. ``save_only_model``: set
    it too (``False`` keeps the optimizer, so a killed run resumes exactly)."""
    fields = {"eval_strategy": "epoch", "save_strategy": "epoch", "save_total_limit": 1,
              "load_best_model_at_end": True, "metric_for_best_model": metric, "greater_is_better": True}
    return fields if save_only_model is None else {**fields, "save_only_model": save_only_model}


def derive(template: DistillationTrainingArguments, **over) -> DistillationTrainingArguments:
    """A copy of ``template`` (its class, every field it was given) with ``over`` replacing fields: how a command
    turns the one template its user configured into each run's arguments. ``logging_dir`` follows the new
    ``output_dir``."""
    import dataclasses

    fresh = {f.name: getattr(template, f.name) for f in dataclasses.fields(template) if f.init}
    fresh.pop("logging_dir", None)  # derived from output_dir
    return type(template)(**{**fresh, **over})


def kd_settings(template) -> dict:
    """The distillation settings of a template: every field ``DistillationTrainingArguments`` adds to
    ``TrainingArguments`` (a subclass's new fields too)."""
    from dataclasses import fields

    base = {f.name for f in fields(TrainingArguments)}
    return {f.name: getattr(template, f.name) for f in fields(template) if f.name not in base and f.init}
