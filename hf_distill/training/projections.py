"""Learned maps from student to teacher hidden widths, for hidden-state matches."""

from __future__ import annotations

from contextlib import contextmanager

from torch import nn


def hidden_width(model: nn.Module) -> int:
    """Width of a model's hidden states: the student encoder's ``output_size`` (BiLSTM: 2 x hidden), else
    ``config.hidden_size`` (BERT-like), else the embedding size."""
    encoder = getattr(model, "student", None)
    if encoder is not None and hasattr(encoder, "output_size"):
        return encoder.output_size
    config = model.config
    return getattr(config, "hidden_size", None) or config.embedding_dim


def build_projections(specs, teacher: nn.Module, student: nn.Module) -> nn.ModuleDict:
    """One ``Linear(student width, teacher width)`` per ``(teacher_layer, student_layer, kind)`` match whose
    widths differ, keyed ``"t_s"``; raises when a layer index is beyond a model's hidden states."""
    projections = nn.ModuleDict()
    t_size, s_size = hidden_width(teacher), hidden_width(student)
    for t, s, _ in specs:
        for who, layer, model in (("teacher", t, teacher), ("student", s, student)):
            # BERT-like models return embeddings + one state per layer; the other students one state
            last = getattr(model.config, "num_hidden_layers", 0)
            if layer > last:
                raise ValueError(f"hidden match {t}:{s}: the {who} has hidden states 0..{last} only")
        if t_size != s_size:
            projections[f"{t}_{s}"] = nn.Linear(s_size, t_size)
    return projections


#: name of the student's submodule holding the projections (trained, checkpointed and resumed with it)
PROJECTIONS = "distill_projections"


def attach_projections(student: nn.Module, specs, teacher: nn.Module | None, device) -> None:
    """Attach :func:`build_projections` to the student (as DistillKit does), so they are trained, wrapped,
    clipped, checkpointed and resumed with it."""
    if not specs:
        return
    if teacher is None:
        raise ValueError("hidden_matches need teacher_model= (it sizes the projections; with hidden states cached by "
                         "cache_teacher_outputs(..., hidden_layers=...) it is not run)")
    student.add_module(PROJECTIONS, build_projections(specs, teacher, student).to(device))


def projections_of(student: nn.Module) -> nn.ModuleDict:
    """The projections attached to the student (empty without hidden matches)."""
    return getattr(student, PROJECTIONS, None) or nn.ModuleDict()


@contextmanager
def projections_detached(student: nn.Module):
    """The student without its training-only projections while the block runs (saving a shippable model)."""
    projections = student._modules.pop(PROJECTIONS, None)
    try:
        yield student
    finally:
        if projections is not None:
            student.add_module(PROJECTIONS, projections)
