"""hf-distill: knowledge distillation for Hugging Face token and sequence classifiers.

ONNX export lives in ``hf_distill.export`` (imported on demand: it loads Optimum).
"""

from .args import DistillationTrainingArguments
from .collator import DistillationCollator
from .data import load_dataset, tokenize_and_align, tokenize_text
from .metrics import TokenClassificationMetrics, classification_metrics, seqeval_scores
from .signals import (
    CachedTeacher,
    OnlineTeacher,
    StaleTeacherCacheError,
    cache_teacher_outputs,
    transfer_teacher_cache,
)
from .students import build_student, count_parameters, student_from_teacher
from .trainer import DistillationTrainer, LabelSetMismatchError

__version__ = "0.1.0"

__all__ = [
    "CachedTeacher", "DistillationCollator", "DistillationTrainer", "DistillationTrainingArguments",
    "LabelSetMismatchError", "OnlineTeacher", "StaleTeacherCacheError", "TokenClassificationMetrics",
    "cache_teacher_outputs", "classification_metrics", "count_parameters", "load_dataset", "seqeval_scores",
    "student_from_teacher", "tokenize_and_align", "tokenize_text", "build_student", "transfer_teacher_cache",
]
