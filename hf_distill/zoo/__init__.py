"""``hf-distill zoo``: which student is best for this teacher and these data?

The teacher is cached once, over the train rows and a transfer set (augmented train rows by default, plus any
unlabeled text given); every student is distilled (and, when asked, trained without KD too) to convergence on
the dev split, saved ready to ship and benched (F1 in PyTorch, ONNX and int8 ONNX; parameters; FLOPs; latency).
The teacher is benched in the same backends, and speed-ups are against its fastest one that keeps its F1. The
results go to one JSON, a Markdown table, a plot of F1 against latency with the Pareto front, and a
recommendation. A student finished with the same settings is skipped, so a killed run continues where it stopped.

Modules, one job each: ``specs`` (presets, spec parsing, building a student), ``args`` (the command's options),
``splits`` (data, teacher, transfer set), ``words`` (word-level data and vectors), ``student`` (one student's
settings key, training arguments, resume point), ``search`` (Optuna), ``selection`` (Pareto, recommendation,
fastest backend), ``shared`` (the typed run data every student reads), ``run`` (the whole run), ``report``
(JSON, Markdown, plot).
"""

from .args import ZooArguments
from .report import command_of, finished_students, plot, write_results
from .run import distill_one, run_zoo
from .selection import deployment_point, fastest_backend, pareto_front, recommend, score
from .shared import ZooData
from .specs import DEFAULT_CLASSIFIERS, DEFAULT_STUDENTS, PRESETS, StudentSpec, build, kept_ids, tagging_only
from .splits import dev_overlap_warning, load_splits, read_extra_test
from .words import choose_word_vectors, static_teacher_vectors, teacher_word_vectors, word_data

_build = build  # the name tests and recipes used before the zoo became a package

__all__ = [
    "DEFAULT_CLASSIFIERS", "DEFAULT_STUDENTS", "PRESETS", "StudentSpec", "tagging_only", "ZooArguments", "build",
    "choose_word_vectors", "command_of", "deployment_point", "dev_overlap_warning", "distill_one", "fastest_backend",
    "finished_students", "kept_ids", "load_splits", "pareto_front", "plot", "read_extra_test", "recommend",
    "run_zoo", "score", "static_teacher_vectors", "ZooData", "teacher_word_vectors", "word_data", "write_results",
]
