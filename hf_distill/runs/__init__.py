"""Helpers for code that trains and compares several models (the demo, the zoo, recipes, benchmarks).

``callbacks`` (progress lines, early stopping above a floor, phase timing), ``tasks`` (the task of a data set,
scoring, training to convergence), ``teacher`` (fine-tuning a teacher once) and ``recipe_io`` (the paper recipes'
command lines and results files).
"""

from .callbacks import EarlyStoppingAboveFloor, PhaseTimer, Progress
from .recipe_io import parse_recipe_args, publish_results, recipe_teacher_base, without_option, write_results
from .tasks import TaskSpec, epoch_of, evaluate, train_to_convergence
from .teacher import TeacherDidNotLearnError, constant_prediction_score, fine_tune_teacher

__all__ = [
    "EarlyStoppingAboveFloor", "PhaseTimer", "Progress", "TaskSpec", "TeacherDidNotLearnError",
    "constant_prediction_score", "epoch_of", "evaluate", "fine_tune_teacher", "parse_recipe_args",
    "publish_results", "recipe_teacher_base", "train_to_convergence", "without_option", "write_results",
]
