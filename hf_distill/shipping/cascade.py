"""A cascade of a student and its teacher: the student answers the inputs it is sure of, the teacher the rest.

Each input gets the student's confidence: a tagger's lowest word-level max-probability, a CRF student's Viterbi
path probability (``exp(score(path) - log Z)``), a classifier's max-probability. Inputs under the threshold go
to the teacher. :func:`choose_threshold` calibrates the threshold on a dev split, for an F1 drop from the teacher
or for a latency budget per input; :class:`Cascade` runs both saved models, each in its own backend (PyTorch,
ONNX or int8 ONNX) and with its own tokenizer, and records which model answered each input.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..base import IGNORE_INDEX, portable_path, write_json_atomic
from ..files import read_json
from ..metrics import seqeval_scores
from .crf_decode import crf_path_probability, path_probabilities, viterbi_batch

CASCADE_FILE = "cascade.json"


def path_probability(emissions: torch.Tensor, crf: dict, path: Sequence[int]) -> float:
    """The probability of one tag ``path`` under a linear-chain CRF: ``exp(score(path) - log Z)``.

    Args:
        emissions: (length, labels) emissions of one sentence's labeled positions.
        crf: ``transitions`` (labels, labels), ``start`` and ``end`` (labels,) potentials.
        path: the tag ids (e.g. the Viterbi path).
    """
    from ..students.crf import log_partition, sequence_score

    em = emissions.double()[None]
    pot = [torch.as_tensor(np.asarray(crf[k]), dtype=torch.float64) for k in ("transitions", "start", "end")]
    mask = torch.ones(em.shape[:2], dtype=torch.bool)
    tags = torch.as_tensor([list(path)])
    return float(torch.exp(sequence_score(em, *pot, mask, tags) - log_partition(em, *pot, mask))[0])


def confidence(logits: np.ndarray, crf: dict | None = None, path: Sequence[int] | None = None) -> float:
    """A row's confidence from its logits at labeled positions ((length, labels) for a tagger, (labels,) for a
    classifier): the lowest max-probability over positions, the CRF path probability, or the max-probability."""
    logits = np.asarray(logits, dtype=np.float64)
    if crf is not None and logits.ndim == 2:
        return crf_path_probability(logits, crf, path) if len(logits) else 1.0
    z = np.exp(logits - logits.max(-1, keepdims=True))
    probs = (z / z.sum(-1, keepdims=True)).max(-1)
    return float(probs.min()) if probs.ndim and len(probs) else float(probs) if not probs.ndim else 1.0


def score_rows(gold: list, pred: list, token: bool) -> float:
    """seqeval F1 (tag sequences) or accuracy (one class per row), as a fraction."""
    if token:
        return seqeval_scores(gold, pred)["f1"]
    return float(np.mean([g == p for g, p in zip(gold, pred)])) if gold else 0.0


def merge(student: list, teacher: list, conf: Sequence[float], threshold: float) -> tuple[list, list[str]]:
    """The cascade's answers: the teacher's where the student's confidence is under ``threshold``, in order."""
    out, who = [], []
    for s, t, c in zip(student, teacher, conf):
        to_teacher = c < threshold
        out.append(t if to_teacher else s)
        who.append("teacher" if to_teacher else "student")
    return out, who


def threshold_curve(conf, student, teacher, gold, token: bool, points: int = 60,
                    lengths: list[int] | None = None) -> list[dict]:
    """Score and share sent to the teacher at candidate thresholds (quantiles of the confidences, plus 0 and
    just above 1). ``gold`` may be the teacher's own answers: the score is then the agreement with the teacher
    (see :func:`calibrate`). ``lengths`` (each input's length in the teacher's tokens) adds ``teacher_load``:
    the share of the teacher's work sent, since the inputs a student is unsure of are often the longer ones."""
    qs = np.quantile(np.asarray(conf, dtype=np.float64), np.linspace(0, 1, points)) if len(conf) else []
    candidates = sorted({0.0, *[float(q) for q in qs], 1.0 + 1e-9})
    curve = []
    for t in candidates:
        merged, who = merge(student, teacher, conf, t)
        point = {"threshold": t, "score": score_rows(gold, merged, token),
                 "to_teacher": who.count("teacher") / max(len(who), 1)}
        if lengths is not None:
            point["teacher_load"] = sum(n for n, w in zip(lengths, who) if w == "teacher") / max(sum(lengths), 1)
        curve.append(point)
    return curve


def choose_threshold(curve: list[dict], teacher_score: float, max_drop: float | None = None,
                     latency_budget_ms: float | None = None, student_ms: float | None = None,
                     teacher_ms: float | None = None) -> dict:
    """The calibrated point of a curve: the least share sent to the teacher whose score is within ``max_drop``
    (a fraction: 0.003 is 0.3 F1) of the teacher's, or the best score whose expected latency per input
    (``student_ms + share * teacher_ms``, the share weighted by length where the curve has ``teacher_load``) fits
    ``latency_budget_ms``. Raises when no point qualifies."""
    if (max_drop is None) == (latency_budget_ms is None):
        raise ValueError("calibrate for max_f1_drop or for latency_budget_ms (one of them)")
    if max_drop is not None:
        ok = [p for p in curve if p["score"] >= teacher_score - max_drop - 1e-12]
        if not ok:
            raise ValueError(f"no threshold keeps the score within {100 * max_drop:g} of the teacher's "
                             f"{100 * teacher_score:.2f}")
        return min(ok, key=lambda p: (p["to_teacher"], -p["score"]))
    if student_ms is None or teacher_ms is None:
        raise ValueError("a latency budget needs the student's and the teacher's latency per input")
    ok = [p for p in curve if student_ms + p.get("teacher_load", p["to_teacher"]) * teacher_ms <= latency_budget_ms]
    if not ok:
        raise ValueError(f"the student alone takes {student_ms:.3f} ms per input: over the budget of "
                         f"{latency_budget_ms:g} ms")
    return max(ok, key=lambda p: (p["score"], -p["to_teacher"]))


def calibrate(conf, student, teacher, gold, token: bool, max_drop: float | None = None,
              latency_budget_ms: float | None = None, student_ms: float | None = None,
              teacher_ms: float | None = None, reference: str = "teacher", lengths: list[int] | None = None) -> dict:
    """The threshold for a dev split: its curve and chosen point (:func:`choose_threshold`).

    ``reference="teacher"`` (the default) scores the cascade against the teacher's own answers, so a point within
    ``max_drop`` of them is within ``max_drop`` of the teacher whatever the gold labels say: a student selected by
    early stopping on the same dev split scores higher there than on unseen data, and a threshold calibrated
    against gold would send too little to the teacher. ``reference="gold"`` scores against the gold labels.
    ``lengths``: the dev inputs' teacher-token lengths, for the latency budget (:func:`threshold_curve`)."""
    if reference not in ("teacher", "gold"):
        raise ValueError(f"reference={reference!r}: use 'teacher' or 'gold'")
    ref = teacher if reference == "teacher" else gold
    curve = threshold_curve(conf, student, teacher, ref, token, lengths=lengths)
    top = score_rows(ref, teacher, token)
    point = choose_threshold(curve, top, max_drop, latency_budget_ms, student_ms, teacher_ms)
    return {"curve": curve, "point": point, "reference": reference, "reference_teacher_score": top}


@dataclass
class Side:
    """One model of a cascade: a saved folder run in one backend with its own tokenizer.

    Args:
        folder: a saved model (``save_pretrained`` + tokenizer; ``onnx/`` for the ONNX backends).
        backend: ``pytorch``, ``onnx`` or ``onnx_int8``.
    """

    folder: str
    backend: str = "pytorch"

    def __post_init__(self):
        from transformers import AutoTokenizer

        from ..base import task_of
        from .export import load_model

        if self.backend not in ("pytorch", "onnx", "onnx_int8"):
            raise ValueError(f"backend {self.backend!r}: use pytorch, onnx or onnx_int8")
        self.model = load_model(self.folder)
        self.tokenizer = AutoTokenizer.from_pretrained(self.folder)
        self.token = task_of(self.model) == "token"
        self.labels = [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]
        self.crf = None
        if getattr(self.model, "crf", None) is not None:  # the potentials with their IOB2 constraints applied
            trans, start, end = (p.detach().double().numpy() for p in self.model.crf.potentials())
            self.crf = {"transitions": trans, "start": start, "end": end}
        self.session = None
        if self.backend != "pytorch":
            from .efficiency import onnx_session, session_inputs
            from .export import ONNX_FILE, QUANTIZED_FILE

            path = Path(self.folder) / "onnx" / (QUANTIZED_FILE if self.backend == "onnx_int8" else ONNX_FILE)
            if not path.is_file():
                raise FileNotFoundError(f"{path}: no {self.backend} export (hf-distill export {self.folder} "
                                        "--quantize writes it)")
            self.session = onnx_session(path, threads=1)  # one thread, as the speeds are reported
            self.input_names = session_inputs(self.session)

    def encode(self, split):
        from .bench import encode_for

        return list(encode_for(self.model, self.tokenizer, split))

    def _logits(self, batch: dict) -> np.ndarray:
        from ..base import extra_model_inputs
        from .efficiency import onnx_feeds

        if self.session is not None:
            return self.session.run(["logits"], onnx_feeds(self.input_names, batch))[0]
        names = {"input_ids", "attention_mask", "token_type_ids", *extra_model_inputs(self.model)}
        with torch.inference_mode():
            return self.model(**{k: v for k, v in batch.items() if k in names}).logits.float().numpy()

    def predict(self, rows: list[dict], batch_size: int = 32, confidences: bool = True) -> tuple[list, list]:
        """Labels per row (tag names at labeled positions, or a class name) and the row's confidence (``None``
        without ``confidences``: a model serving alone needs none)."""
        from ..base import extra_model_inputs
        from ..training.collator import DistillationCollator

        collate = DistillationCollator(self.tokenizer, extra_inputs=extra_model_inputs(self.model))
        preds, confs = [None] * len(rows), [None] * len(rows)
        for group in length_batches([len(r["input_ids"]) for r in rows], batch_size):
            batch = collate([dict(rows[i]) for i in group])
            logits = self._logits(batch)
            if not self.token:
                for j, i in enumerate(group):
                    preds[i] = self.labels[int(logits[j].argmax())]
                    confs[i] = confidence(logits[j]) if confidences else None
                continue
            keep = (batch["labels"] != IGNORE_INDEX).numpy()
            ems = [logits[j][: keep.shape[1]][keep[j]] for j in range(len(group))]
            if self.crf is None:
                ids = [em.argmax(-1).tolist() for em in ems]
                conf = [confidence(em) if confidences else None for em in ems]
            else:  # the whole batch in one Viterbi and one forward recursion
                lengths = [len(em) for em in ems]
                padded = np.zeros((len(ems), max(lengths), logits.shape[-1]))
                for j, em in enumerate(ems):
                    padded[j, : len(em)] = em
                ids = viterbi_batch(padded, lengths, self.crf["transitions"], self.crf["start"], self.crf["end"])
                conf = path_probabilities(padded, lengths, ids, self.crf).tolist() if confidences \
                    else [None] * len(ems)
            for j, i in enumerate(group):
                preds[i] = [self.labels[k] for k in ids[j]]
                confs[i] = conf[j]
        return preds, confs


#: a batch is cut short where padding would make it cost this much more than its inputs' own lengths
MAX_PADDING = 0.25


def length_batches(lengths: Sequence[int], batch_size: int, max_padding: float = MAX_PADDING) -> list[list[int]]:
    """Row indices in batches of at most ``batch_size``, the rows sorted by length (ties in input order) and a batch
    cut short where padding every row to its longest would exceed ``max_padding`` of the rows' own lengths: the
    few, scattered inputs a cascade sends its teacher would otherwise all be padded to the longest of them.

    Args:
        lengths: each row's length.
        batch_size: rows per batch at most (1: every row alone, in input order).
        max_padding: the share of padding a batch may carry.
    """
    if batch_size <= 1:
        return [[i] for i in range(len(lengths))]
    out: list[list[int]] = []
    total = 0  # the last batch's own lengths
    for i in sorted(range(len(lengths)), key=lambda k: lengths[k]):
        n = lengths[i]  # sorted: the batch's longest once added
        if out and len(out[-1]) < batch_size and (len(out[-1]) + 1) * n <= (1 + max_padding) * (total + n):
            out[-1].append(i)
            total += n
        else:
            out.append([i])
            total = n
    return out


@dataclass
class Cascade:
    """A student that answers what it is sure of and a teacher for the rest.

    Args:
        student: the student's saved folder.
        teacher: the teacher's saved folder.
        threshold: inputs whose student confidence is under it go to the teacher (0: never; above 1: always).
        student_backend: ``pytorch``, ``onnx`` or ``onnx_int8``.
        teacher_backend: likewise.
    """

    student: str
    teacher: str
    threshold: float = 0.9
    student_backend: str = "pytorch"
    teacher_backend: str = "pytorch"
    record: dict = field(default_factory=dict)

    def __post_init__(self):
        self._student = Side(self.student, self.student_backend)
        self._teacher = Side(self.teacher, self.teacher_backend)
        s, t = self._student, self._teacher
        if s.labels != t.labels:
            only_s, only_t = sorted(set(s.labels) - set(t.labels)), sorted(set(t.labels) - set(s.labels))
            raise ValueError(f"the student's labels {s.labels} are not the teacher's {t.labels} (only the student: "
                             f"{only_s}; only the teacher: {only_t}; or another order)")
        if s.token != t.token:
            raise ValueError("one model tags tokens and the other classifies texts: a cascade needs one task")

    @property
    def token(self) -> bool:
        return self._student.token

    def predict(self, split, batch_size: int = 32) -> dict:
        """Answers for every row of ``split`` (raw rows: ``tokens`` or ``text``), in order, with ``answered_by``
        per row and the student's ``confidence``."""
        s_pred, conf = self._student.predict(self._student.encode(split), batch_size)
        send = [i for i, c in enumerate(conf) if c < self.threshold]
        t_pred = {}
        if send:
            rows = self._teacher.encode(split.select(send))
            t_pred = dict(zip(send, self._teacher.predict(rows, batch_size, confidences=False)[0]))
        out = [t_pred.get(i, p) for i, p in enumerate(s_pred)]
        return {"predictions": out, "answered_by": ["teacher" if i in t_pred else "student" for i in range(len(out))],
                "confidence": conf}

    def save_pretrained(self, folder: str | None = None) -> str:
        """Write ``cascade.json`` (beside the student by default) and return its path."""
        path = os.path.join(folder or self.student, CASCADE_FILE)
        data = {**asdict(self), "student": portable_path(self.student), "teacher": portable_path(self.teacher)}
        write_json_atomic(path, data)
        return path

    @classmethod
    def from_pretrained(cls, folder: str) -> Cascade:
        """The cascade recorded in ``folder/cascade.json``; refuses a damaged or missing record, naming it."""
        path = Path(folder) / CASCADE_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no cascade here (hf-distill cascade writes it)")
        try:
            data = read_json(path)
            return cls(**{k: data[k] for k in ("student", "teacher", "threshold", "student_backend",
                                               "teacher_backend")}, record=data.get("record", {}))
        except (KeyError, TypeError) as e:
            raise ValueError(f"{path}: not a cascade record ({e}); run hf-distill cascade again") from None


def throughput(work, rows: int, seconds: float = 2.0) -> float:
    """Inputs per second of ``work()`` (which handles ``rows`` inputs) on one thread, repeated for at least
    ``seconds`` after one warm-up call."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        work()
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds or done == 0:
            work()
            done += rows
        return done / (time.perf_counter() - start)
    finally:
        torch.set_num_threads(old)


class CascadePipeline:
    """A pipeline over a :class:`Cascade`: ``pipe(inputs)`` answers each input with the student or, under the
    threshold, the teacher.

    Tagging: a string is one sentence (split on whitespace), a list of strings several sentences, a list of token
    lists several pre-split sentences; each answer is ``{"tokens", "tags", "confidence", "answered_by"}``.
    Classification: a string or a list of strings; each answer is ``{"label", "confidence", "answered_by"}``.
    One input gives one answer, a list a list.
    """

    def __init__(self, cascade: Cascade, batch_size: int = 32):
        self.cascade = cascade
        self.batch_size = batch_size

    def __call__(self, inputs):
        import datasets

        single = isinstance(inputs, str)
        items = [inputs] if single else list(inputs)
        if self.cascade.token:
            sentences = [x.split() if isinstance(x, str) else list(x) for x in items]
            split = datasets.Dataset.from_dict({"tokens": sentences, "ner_tags": [[0] * len(s) for s in sentences]})
        else:
            split = datasets.Dataset.from_dict({"text": items, "label": [0] * len(items)})
        out = self.cascade.predict(split, self.batch_size)
        answers = []
        for i, (pred, who, conf) in enumerate(zip(out["predictions"], out["answered_by"], out["confidence"])):
            if self.cascade.token:
                tags = (list(pred) + ["O"] * len(sentences[i]))[: len(sentences[i])]  # truncated words: O
                answers.append({"tokens": sentences[i], "tags": tags, "confidence": conf, "answered_by": who})
            else:
                answers.append({"label": pred, "confidence": conf, "answered_by": who})
        return answers[0] if single else answers
