"""hf-distill: knowledge distillation for Hugging Face token and sequence classifiers.

Names are imported on first use (``from hf_distill import DistillationTrainer`` loads the trainer then), so
``import hf_distill`` and the ``hf-distill --help`` command stay fast. The students register with the Auto
classes when :mod:`hf_distill.students` is first imported (any student name, ``build_student``...).
ONNX export lives in ``hf_distill.shipping.export`` (it loads Optimum).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_LAZY = {
    "DistillationTrainingArguments": "training.args",
    "DistillationCollator": "training.collator",
    "load_dataset": "data", "tokenize_and_align": "data", "tokenize_text": "data",
    "TokenClassificationMetrics": "metrics", "classification_metrics": "metrics", "seqeval_scores": "metrics",
    "CachedTeacher": "training.signals", "OnlineTeacher": "training.signals",
    "StaleTeacherCacheError": "training.signals",
    "cache_teacher_outputs": "cache", "transfer_teacher_cache": "cache",
    "build_student": "students", "count_parameters": "students", "student_from_teacher": "students",
    "DistillationTrainer": "training.trainer", "LabelSetMismatchError": "training.validate",
}

__all__ = [
    "CachedTeacher", "DistillationCollator", "DistillationTrainer", "DistillationTrainingArguments",
    "LabelSetMismatchError", "OnlineTeacher", "StaleTeacherCacheError", "TokenClassificationMetrics",
    "build_student", "cache_teacher_outputs", "classification_metrics", "count_parameters", "load_dataset",
    "seqeval_scores", "student_from_teacher", "tokenize_and_align", "tokenize_text", "transfer_teacher_cache",
]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hf_distill' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


if TYPE_CHECKING:  # for type checkers and IDEs: the names as if imported eagerly
    from .cache import cache_teacher_outputs, transfer_teacher_cache
    from .data import load_dataset, tokenize_and_align, tokenize_text
    from .metrics import TokenClassificationMetrics, classification_metrics, seqeval_scores
    from .students import build_student, count_parameters, student_from_teacher
    from .training.args import DistillationTrainingArguments
    from .training.collator import DistillationCollator
    from .training.signals import CachedTeacher, OnlineTeacher, StaleTeacherCacheError
    from .training.trainer import DistillationTrainer
    from .training.validate import LabelSetMismatchError
