"""Student models."""

from .truncated import count_parameters, student_from_teacher

__all__ = ["count_parameters", "student_from_teacher"]
