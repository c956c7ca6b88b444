"""Transfer sets: unlabeled (or augmented) text that the teacher labels and the student learns from by KD only.

:func:`build_transfer_set` reads any unlabeled source, filters it and reports what each filter removed;
:func:`filter_by_teacher` applies the filters that need teacher outputs (confidence, class balance) to a
cached transfer set; :func:`mix_transfer` joins labeled and transfer rows into one training set. Transfer
rows carry ``labels = -100`` everywhere, so the task loss ignores them and only KD terms see them.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import datasets
import numpy as np

from .align import IGNORE_INDEX
from .unlabeled import (  # noqa: F401  (re-exported: part of this module's API)
    SOURCE_ROW,
    TASKS,
    WORD_PATTERN,
    TransferSetError,
    read_unlabeled,
    split_words,
)

logger = logging.getLogger(__name__)


@dataclass
class TransferReport:
    """How many rows came in, how many each filter removed (in the order applied), and how many went out."""

    rows_in: int = 0
    filtered: dict[str, int] = field(default_factory=dict)
    rows_out: int = 0
    notes: dict[str, object] = field(default_factory=dict)

    def remove(self, name: str, count: int) -> None:
        self.filtered[name] = self.filtered.get(name, 0) + int(count)

    def to_dict(self) -> dict:
        return {"rows_in": self.rows_in, "filtered": dict(self.filtered), "rows_out": self.rows_out, **self.notes}

    def __str__(self) -> str:
        removed = ", ".join(f"{k}: {v}" for k, v in self.filtered.items()) or "none"
        return f"{self.rows_in} rows in, removed ({removed}), {self.rows_out} rows out"


# ------------------------------------------------------------------ reading sources

# ------------------------------------------------------------------ keys and lengths
def row_key(row) -> str:
    """What makes two rows the same text: their words, case-folded, single-spaced."""
    words = row if isinstance(row, (list, tuple)) else str(row).split()
    return " ".join(str(w) for w in words).casefold()


def rows_also_in(split, reference, text_column: str = "text") -> int:
    """How many rows of ``split`` have the text (:func:`row_key`) of a row of ``reference``: a validation split
    inside the training split scores memorization, not generalization."""
    seen = {row_key(r) for r in read_unlabeled(reference, text_column)}
    return sum(row_key(r) in seen for r in read_unlabeled(split, text_column))


def _subword_lengths(rows: Sequence, tokenizer) -> tuple[np.ndarray, np.ndarray]:
    """Sub-word counts (no special tokens) and counts of unknown sub-words, per row."""
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    pre_split = isinstance(rows[0], (list, tuple))
    enc = tokenizer(list(rows) if not pre_split else [list(r) for r in rows], is_split_into_words=pre_split,
                    add_special_tokens=False, truncation=False)["input_ids"]
    unk = tokenizer.unk_token_id
    lengths = np.array([len(e) for e in enc], dtype=np.int64)
    unknown = np.array([sum(t == unk for t in e) if unk is not None else 0 for e in enc], dtype=np.int64)
    return lengths, unknown


def length_range(labeled, tokenizer, how: str = "iqr", text_column: str = "text") -> tuple[int, int]:
    """The sub-word length range of a labeled set: ``"iqr"`` (Q1..Q3) or ``"minmax"``."""
    rows = read_unlabeled(labeled, text_column)
    lengths, _ = _subword_lengths(rows, tokenizer)
    if not len(lengths):
        raise TransferSetError("the labeled set is empty: no length range to match")
    if how == "iqr":
        return int(np.percentile(lengths, 25)), int(np.ceil(np.percentile(lengths, 75)))
    if how == "minmax":
        return int(lengths.min()), int(lengths.max())
    raise ValueError(f"length={how!r}: use 'iqr', 'minmax', a (min, max) pair or None")


# ------------------------------------------------------------------ building
def build_transfer_set(
    source,
    tokenizer=None,
    task: str = "token",
    text_column: str = "text",
    split: str = "train",
    data_dir: str | None = None,
    exclude: Sequence | None = None,
    dedupe: bool = True,
    length: str | tuple[int, int] | None = None,
    labeled=None,
    drop_unknown: bool = True,
    max_rows: int | None = None,
    seed: int = 0,
) -> tuple[datasets.Dataset, TransferReport]:
    """Unlabeled rows ready for :func:`~hf_distill.tokenize_and_align` / ``tokenize_text``, and a report.

    Token tasks get a ``tokens`` column (raw text is split by :func:`split_words`); sequence tasks a ``text``
    column (word lists are joined by spaces). Every row keeps ``source_row``, its index in the source.
    Filters, in this order, each counted in the report:

    - ``empty``: rows without a word;
    - ``overlaps_excluded``: rows whose text occurs in any dataset of ``exclude`` (pass the evaluation and
      test splits: no evaluation sentence is ever trained on);
    - ``duplicate``: exact repeats of an earlier row (case-folded, single-spaced);
    - ``unknown_words``: rows every sub-word of which the tokenizer maps to its unknown token;
    - ``length``: rows outside a sub-word length range, ``(min, max)``, or ``"iqr"``/``"minmax"`` of ``labeled``;
    - ``max_rows``: a seeded random sample down to ``max_rows``.
    """
    if task not in TASKS:
        raise ValueError(f"task={task!r}: use one of {TASKS}")
    rows = read_unlabeled(source, text_column, split, data_dir)
    report = TransferReport(rows_in=len(rows))
    if not rows:
        where = f" {os.fspath(source)}" if isinstance(source, (str, os.PathLike)) else ""
        raise TransferSetError(f"the unlabeled source{where} is empty: no rows to build a transfer set from")
    if task == "token":
        rows = [list(r) if isinstance(r, (list, tuple)) else split_words(r) for r in rows]
    else:
        rows = [" ".join(r) if isinstance(r, (list, tuple)) else str(r) for r in rows]
    index = list(range(len(rows)))

    def keep(name: str, mask: Sequence[bool]) -> None:
        nonlocal rows, index
        report.remove(name, len(mask) - sum(mask))
        rows = [r for r, k in zip(rows, mask) if k]
        index = [i for i, k in zip(index, mask) if k]

    keep("empty", [bool(r) and (bool(r.strip()) if isinstance(r, str) else True) for r in rows])
    if exclude:
        banned = {row_key(r) for ds in exclude for r in read_unlabeled(ds, text_column)}
        keep("overlaps_excluded", [row_key(r) not in banned for r in rows])
        if report.filtered["overlaps_excluded"]:
            logger.warning("transfer set: removed %d rows that occur in an excluded (evaluation/test) split",
                           report.filtered["overlaps_excluded"])
    if dedupe:
        seen: set[str] = set()
        first = []
        for r in rows:
            k = row_key(r)
            first.append(k not in seen)
            seen.add(k)
        keep("duplicate", first)
    if tokenizer is not None and (drop_unknown or length is not None):
        lengths, unknown = _subword_lengths(rows, tokenizer)
        if drop_unknown and len(rows):
            known = (unknown < lengths).tolist()
            if not any(known):
                raise TransferSetError(
                    f"none of the {len(rows)} rows has a word the tokenizer knows (every sub-word is "
                    f"{tokenizer.unk_token!r}): wrong language, wrong tokenizer or wrong text column?")
            keep("unknown_words", known)
            lengths = lengths[np.asarray(known, dtype=bool)]
        if length is not None:
            if isinstance(length, str):
                if labeled is None:
                    raise ValueError(f"length={length!r} needs labeled= (the set whose lengths to match)")
                lo, hi = length_range(labeled, tokenizer, length, text_column)
            else:
                lo, hi = (int(x) for x in length)
            report.notes["length_range"] = [lo, hi]
            keep("length", ((lengths >= lo) & (lengths <= hi)).tolist())
    elif length is not None:
        raise ValueError("length filtering counts the teacher's sub-words: pass tokenizer=")
    if max_rows is not None and len(rows) > max_rows:
        chosen = np.random.default_rng(seed).choice(len(rows), size=max_rows, replace=False)
        mask = np.zeros(len(rows), dtype=bool)
        mask[chosen] = True
        keep("max_rows", mask.tolist())
    report.rows_out = len(rows)
    if not rows:
        raise TransferSetError(f"every row was filtered out ({report}): loosen the filters")
    column = "tokens" if task == "token" else "text"
    features = datasets.Features({
        column: datasets.Sequence(datasets.Value("string")) if task == "token" else datasets.Value("string"),
        SOURCE_ROW: datasets.Value("int64"),
    })
    logger.info("transfer set: %s", report)
    return datasets.Dataset.from_dict({column: rows, SOURCE_ROW: index}, features=features), report


# ------------------------------------------------------------------ teacher-side filters
def _teacher_probs(cached: datasets.Dataset) -> list[np.ndarray]:
    from ..training.signals import CACHE_LOGITS

    if CACHE_LOGITS not in cached.column_names:
        raise TransferSetError("filter_by_teacher needs full cached teacher logits (cache_teacher_outputs "
                               "without top_k)")
    out = []
    masks = cached["distill_mask"] if "distill_mask" in cached.column_names else None
    for i, logits in enumerate(cached[CACHE_LOGITS]):
        z = np.asarray(logits, dtype=np.float64)
        if masks is not None:
            z = z[: len(masks[i])][np.asarray(masks[i], dtype=bool)]
        z = z - z.max(-1, keepdims=True)
        p = np.exp(z)
        out.append(p / p.sum(-1, keepdims=True))
    return out


def filter_by_teacher(
    cached: datasets.Dataset,
    min_confidence: float | None = None,
    balance: str | int | None = None,
    seed: int = 0,
    report: TransferReport | None = None,
) -> datasets.Dataset:
    """Filters that need the teacher's cached outputs on a transfer set.

    ``min_confidence``: keep rows whose teacher confidence (the mean over words of the top probability, or
    the top probability of a sequence) is at least this. ``balance`` (sequence classification): cap the rows
    per teacher-predicted class at ``"median"`` of the class counts or at a number, chosen at random (seeded).
    Removed counts go to ``report`` as ``confidence`` and ``balance``.
    """
    probs = _teacher_probs(cached)
    keep = np.ones(len(cached), dtype=bool)
    if min_confidence is not None:
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence={min_confidence}: expected a probability in [0, 1]")
        conf = np.array([p.max(-1).mean() if p.size else 0.0 for p in probs])
        keep &= conf >= min_confidence
        if report is not None:
            report.remove("confidence", int((~keep).sum()))
    if balance is not None:
        if probs and probs[0].ndim != 1:
            raise TransferSetError("balance= applies to sequence classification (one teacher class per row)")
        predicted = np.array([int(p.argmax()) for p in probs])
        counts = Counter(predicted[keep].tolist())
        if balance == "median":
            cap = int(np.median(list(counts.values()))) if counts else 0
        elif isinstance(balance, int) and not isinstance(balance, bool) and balance > 0:
            cap = balance
        else:
            raise ValueError(f"balance={balance!r}: use 'median' or a positive number of rows per class")
        rng = np.random.default_rng(seed)
        before = int(keep.sum())
        for cls in counts:
            rows = np.flatnonzero(keep & (predicted == cls))
            if len(rows) > cap:
                keep[rng.choice(rows, size=len(rows) - cap, replace=False)] = False
        if report is not None:
            report.remove("balance", before - int(keep.sum()))
            report.notes["balance_cap"] = cap
    if report is not None:
        report.rows_out = int(keep.sum())
    if not keep.any():
        raise TransferSetError("the teacher filters removed every transfer row: lower min_confidence")
    return cached.select(np.flatnonzero(keep).tolist())


# ------------------------------------------------------------------ mixing
def is_transfer_row(labels) -> bool:
    """A row with no gold label anywhere (all -100): it trains by KD only."""
    arr = np.asarray(labels)
    return bool((arr == IGNORE_INDEX).all())


def count_rows(dataset: datasets.Dataset) -> dict[str, int]:
    """``{"labeled": n, "transfer": m}``: rows with at least one gold label, and rows with none."""
    if "labels" not in dataset.column_names:
        return {"labeled": 0, "transfer": len(dataset)}
    transfer = sum(is_transfer_row(x) for x in dataset["labels"])
    return {"labeled": len(dataset) - transfer, "transfer": transfer}



def log_row_counts(dataset, distilling: bool) -> dict:
    """Log how many training rows are labeled and how many are transfer rows (KD terms only); returns
    ``{"labeled_examples", "transfer_examples"}`` for ``distillation.json`` (empty without a dataset)."""
    if dataset is None or not hasattr(dataset, "column_names"):
        return {}
    counts = count_rows(dataset)
    if counts["transfer"]:
        if not distilling:
            logger.warning("%d training rows have no gold label and kd_loss='none': they teach nothing",
                           counts["transfer"])
        logger.info("training rows: %d labeled, %d transfer (KD terms only)", counts["labeled"], counts["transfer"])
    return {"labeled_examples": counts["labeled"], "transfer_examples": counts["transfer"]}

def mix_transfer(
    labeled: datasets.Dataset,
    transfer: datasets.Dataset,
    ratio: float | None = None,
    count: int | None = None,
    seed: int = 0,
) -> datasets.Dataset:
    """Labeled rows plus transfer rows (all of them, ``count`` of them, or ``ratio`` x the labeled rows).

    Both must be tokenized the same way; the result keeps the columns they share. Transfer rows must have no
    gold label (``labels`` all -100); a transfer row with labels raises, as it would be trained on twice.
    """
    if ratio is not None and count is not None:
        raise ValueError("give ratio= or count=, not both")
    if ratio is not None:
        if ratio < 0:
            raise ValueError(f"ratio={ratio}: expected >= 0")
        count = int(round(ratio * len(labeled)))
    if count is not None:
        if count < 0:
            raise ValueError(f"count={count}: expected >= 0")
        if count > len(transfer):
            raise TransferSetError(f"asked for {count} transfer rows, the transfer set has {len(transfer)}")
        chosen = np.random.default_rng(seed).choice(len(transfer), size=count, replace=False)
        transfer = transfer.select(sorted(chosen.tolist()))
    for name, ds in (("labeled", labeled), ("transfer", transfer)):
        if "input_ids" not in ds.column_names:
            raise TransferSetError(f"the {name} set is not tokenized (no input_ids): tokenize both the same way")
    if "labels" in labeled.column_names and "labels" not in transfer.column_names:
        token = isinstance(labeled[0]["labels"], list)
        transfer = transfer.map(lambda ex: {"labels": [IGNORE_INDEX] * len(ex["input_ids"]) if token
                                            else IGNORE_INDEX}, desc="transfer rows: labels = -100")
    if "labels" in transfer.column_names:
        bad = [i for i, x in enumerate(transfer["labels"]) if not is_transfer_row(x)]
        if bad:
            raise TransferSetError(f"{len(bad)} transfer rows carry gold labels (first: row {bad[0]}); "
                                   "tokenize the transfer set without its label column")
    shared = [c for c in labeled.column_names if c in transfer.column_names]
    missing = sorted(set(labeled.column_names) - set(shared))
    if missing:
        logger.info("mix_transfer: dropping labeled-only columns %s", missing)
    labeled, transfer = labeled.select_columns(shared), transfer.select_columns(shared)
    transfer = transfer.cast(labeled.features)
    mixed = datasets.concatenate_datasets([labeled, transfer])
    logger.info("training rows: %d labeled + %d transfer (KD only)", len(labeled), len(transfer))
    return mixed
