"""Student specs of the zoo: the presets, ``NAME=FAMILY:JSON@LR`` parsing, vocabulary trimming, and building
one student from a spec."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..students import FAMILIES, presets

if TYPE_CHECKING:
    from ..runs import TaskSpec
    from .args import ZooArguments

#: the presets of the built-in families when the zoo was imported (``hf_distill.students.presets()`` is live):
#: name -> (family, config, learning rate); sub-word students share the teacher's tokenizer
PRESETS: dict[str, tuple[str, dict, float]] = presets()

#: the students a zoo trains when --students is not given: presets not dominated on CoNLL-2003
#: (benchmarks/results/zoo/conll2003.md): randomly initialized BERT-Tiny/Mini lost to the BiLSTM at a higher
#: latency, the teacher's first two layers (84.37 F1, 1.39 ms) to CharCNN+WordLSTM with GloVe (85.05, 0.34 ms), and
#: the BiLSTM (78.80 F1, 0.27 ms) and CharCNN+WordLSTM without CRF (84.16, 0.48 ms) to its CRF twin (85.08, 0.28 ms)
DEFAULT_STUDENTS: tuple[str, ...] = ("window", "cnn", "charcnn-wordlstm-crf")
#: the default zoo of a text-classification data set: the CNN and a BiLSTM with attention pooling over the teacher's
#: sub-word embeddings. On emotion (KD + augmented transfer set, one seed; benchmarks/results/cascade/emotion.md)
#: the CNN scored 85.28 macro-F1 at 0.19 ms, the attention BiLSTM 87.03 with random 128-d embeddings (0.30 ms) and
#: 87.80 with the teacher's (0.35 ms; 92.45 accuracy against the teacher's 93.00), where the CNN alone was the default
DEFAULT_CLASSIFIERS: tuple[str, ...] = ("cnn", "bilstm-att-B")


@dataclass
class StudentSpec:
    name: str
    family: str
    config: dict
    learning_rate: float

    @classmethod
    def parse(cls, text: str) -> StudentSpec:
        known = presets()
        if text in known:
            family, config, lr = known[text]
            return cls(text, family, dict(config), lr)
        if "=" not in text or ":" not in text.split("=", 1)[1]:
            raise ValueError(f"student spec {text!r}: a preset ({', '.join(known)}) or NAME=FAMILY:JSON[@LR]")
        name, rest = text.split("=", 1)
        family, config = rest.split(":", 1)
        lr = 1e-3
        if "@" in config and config.rsplit("@", 1)[1].replace(".", "").replace("e-", "").isdigit():
            config, lr_text = config.rsplit("@", 1)
            lr = float(lr_text)
        try:
            parsed = json.loads(config) if config.strip() else {}
        except json.JSONDecodeError as e:
            raise ValueError(f"student spec {text!r}: the config is not JSON ({e.msg})") from None
        return cls(name, family, parsed, lr)

    @property
    def record(self):
        """The family's :class:`~hf_distill.students.StudentFamily` record."""
        if self.family not in FAMILIES:
            raise ValueError(f"student {self.name!r}: unknown family {self.family!r}; choose one of {sorted(FAMILIES)}")
        return FAMILIES[self.family]

    @property
    def word_level(self) -> bool:
        """Reads words and characters through the zoo's word tokenizer."""
        return self.record.word_level


#: vocabularies above this size are trimmed under trim_vocabulary="auto"
TRIM_ABOVE = 60000


#: word dropout the zoo gives word-level students whose vectors come from the teacher (no GloVe for the language)
#: and whose spec sets none: most test names are then words the table lacks (Swedish NER: 36% of the test's entity
#: tokens are not training words, and a fifth of those are among the teacher's words). Measured on Swedish NER with
#: the CRF student (benchmarks/results/zoo/, one seed): test F1 74.07 against 72.95 without on Swedish NER, 72.96
#: against 72.08 on IndoNLU NERP; 0.3 scored 73.52 on Swedish NER
TEACHER_VECTORS_WORD_DROPOUT = 0.1
#: the teacher's pooled sub-word embeddings (and its pieces) train with the student, where GloVe stays frozen: on
#: IndoNLU NERP (the CRF student with pieces and word dropout, one seed) test F1 78.13 against 73.34 frozen, dev
#: 75.62 against 72.19 (benchmarks/results/zoo/indonlu_nerp.md); the vectors are the teacher's input embeddings,
#: not trained for the task, where GloVe's frozen space keeps unseen words beside the trained ones
TEACHER_VECTORS_FROZEN = False


def own_config(spec: StudentSpec) -> dict:
    """The fields a spec sets itself: none for a preset used as defined (its values are defaults the zoo may
    replace), else its config."""
    preset = presets().get(spec.name)
    return {} if preset is not None and (preset[0], preset[1]) == (spec.family, spec.config) else spec.config


def implied_config(spec: StudentSpec, vectors_report: dict | None) -> dict:
    """Fields the zoo gives a word-level ``spec`` that does not set them itself (:func:`own_config`), given its word
    vectors' report (``word_data``'s ``vectors_report``): word dropout when the vectors come from the teacher, and,
    when they are its pooled sub-word embeddings, the teacher's sub-word pieces for unknown words
    (``word_pieces``) and a word table that trains (``freeze_embeddings``)."""
    uses_vectors = spec.config.get("word_vectors") or spec.config.get("teacher_embeddings")
    source = (vectors_report or {}).get("source")
    if not spec.word_level or not uses_vectors or source not in ("teacher", "static"):
        return {}
    own = own_config(spec)
    out = {} if "word_dropout" in own else {"word_dropout": TEACHER_VECTORS_WORD_DROPOUT}
    if source == "teacher" and "word_pieces" not in own and (vectors_report or {}).get("pieces"):
        out["word_pieces"] = True
    if source == "teacher" and "freeze_embeddings" not in own \
            and bool(spec.config.get("freeze_embeddings", False)) != TEACHER_VECTORS_FROZEN:
        out["freeze_embeddings"] = TEACHER_VECTORS_FROZEN
    return out


def tagging_only(family: str) -> bool:
    """A family without a text-classification model (left out of the default zoo of a classification data set)."""
    return "sequence" not in FAMILIES[family].models


def kept_ids(args: ZooArguments, tokenizer, *splits) -> set[int] | None:
    """The sub-word ids of ``splits`` when the vocabulary is to be trimmed, else None."""
    choice = str(args.trim_vocabulary).lower()
    if choice not in ("auto", "true", "false"):
        raise ValueError(f"--trim_vocabulary {args.trim_vocabulary!r}: use auto, true or false")
    if choice == "false" or (choice == "auto" and len(tokenizer) <= TRIM_ABOVE):
        return None
    return {i for split in splits for row in split["input_ids"] for i in row}


def build(spec: StudentSpec, teacher, tokenizer, task: TaskSpec, keep: set[int] | None = None, words=None):
    """A fresh student of ``spec`` for ``task``: the truncated teacher, a word-level student on the zoo's word
    data (``words``) and word vectors, or a sub-word student on the teacher's tokenizer (its embedding table
    trimmed to ``keep`` where the family allows, started from the teacher's embeddings for ``-B`` specs)."""
    from ..students import build_student, student_from_teacher, trim_vocabulary

    if spec.family == "truncated":  # the one family built from the teacher itself
        return student_from_teacher(teacher, spec.config.get("layers", [0, 1]))
    config = dict(spec.config)
    record = spec.record
    if record.word_level:  # its own word tokenizer and characters (``words``: see word_data)
        if words is None:
            raise ValueError(f"student {spec.name!r}: a word-level student needs the zoo's word data")
        if config.get("use_crf") and task.kind != "token":
            raise ValueError(f"student {spec.name!r}: a CRF head tags words; this data set is text classification")
        init = None
        if config.pop("teacher_embeddings", False):
            init = words["teacher_vectors"]
        if config.pop("word_vectors", False):
            init = words["vectors"]
        if init is not None:
            config["embedding_dim"] = init.shape[1]
        config.update(implied_config(spec, words.get("vectors_report")))
        freeze = bool(config.get("freeze_embeddings", False))
        pieces = config.pop("word_pieces", False)
        if pieces:
            if words.get("piece_vocab") is None or init is None or init.shape[1] != words["piece_vectors"].shape[1]:
                raise ValueError(f"student {spec.name!r}: word_pieces reads the teacher's sub-word pieces, which "
                                 "go with the teacher's pooled word vectors (--word_vectors teacher)")
            config.update(piece_vocab=words["piece_vocab"], piece_lowercase=words["piece_lowercase"])
        student = build_student(spec.family, words["tokenizer"], labels=task.labels, char_vocab=words["chars"],
                                **config)
        if init is not None:
            student.load_embeddings(init.clone(), freeze=freeze)
        if pieces:
            student.load_piece_embeddings(words["piece_vectors"].clone(), freeze=freeze)
        return student
    from_teacher = config.pop("teacher_embeddings", False)  # the "-B" students: the teacher's sub-word embeddings
    if from_teacher:
        config["embedding_dim"] = teacher.get_input_embeddings().weight.shape[1]
    if keep is not None and record.trimmable and record.build is not None:  # small BERTs: a trimmable class
        config["trimmable"] = True
    student = build_student(spec.family, tokenizer, task=task.kind, labels=task.labels, **config)
    if keep is not None and record.trimmable:
        trim_vocabulary(student, keep, unk_token_id=tokenizer.unk_token_id)
    if from_teacher:  # rows past the tokenizer (a padded embedding table) are never read
        student.load_embeddings(teacher.get_input_embeddings().weight.detach()[: len(tokenizer)].clone(),
                                freeze=bool(config.get("freeze_embeddings", False)))
    return student
