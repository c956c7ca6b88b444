"""What every student of one zoo run shares (:class:`ZooData`): the encoded rows, the teacher and its cache, the
transfer set's counts, word-level data, the training template and the teacher's measurements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class ZooData:
    """The run data of one zoo run, built once by ``prepare`` and read by every student.

    Args:
        train: the labeled train rows, encoded with the teacher's tokenizer (students without KD train on them).
        dev: the dev rows (early stopping and model selection).
        cached: the train rows plus the transfer set, with the teacher's cached outputs (students with KD).
        teacher: the teacher model.
        transfer: the transfer set's counts (None without one).
        keep: the sub-word ids kept when the vocabulary is trimmed (None: every id).
        extra_test: a second test set, encoded (``--extra_test``), or None.
        words: word-level rows, tokenizer and vectors (:func:`~hf_distill.zoo.words.word_data`), or None.
        template: the ``DistillationTrainingArguments`` every student starts from.
        dev_split: how the dev split was carved from train (``carve_dev``'s record; None: the data set's own).
        teacher_measured: the teacher's bench in every backend (each student's bench reuses it).
        teacher_fastest: the teacher's fastest backend within 0.5 F1 (speed-ups are against it).
    """

    train: Any
    dev: Any
    cached: Any
    teacher: Any
    transfer: dict | None = None
    keep: set[int] | None = None
    extra_test: Any = None
    words: dict | None = None
    template: Any = None
    dev_split: dict | None = None
    teacher_measured: dict | None = None
    teacher_fastest: dict | None = None

    def rows(self, word_level: bool) -> dict:
        """The rows a student reads (``train``, ``dev``, ``cached``, ``extra_test``): the word-level ones, which
        carry their own ``tokenizer``, for a word-level student, else the sub-word ones."""
        if word_level and self.words is not None:
            return self.words
        return {"train": self.train, "dev": self.dev, "cached": self.cached, "extra_test": self.extra_test}
