"""Sub-word tokenization with word-label alignment (first sub-word carries the label) and the way back."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import datasets
import numpy as np

from ..base import IGNORE_INDEX

logger = logging.getLogger(__name__)

#: Column marking the positions that carry a word (first sub-words), labeled or not; KD terms use it.
DISTILL_MASK = "distill_mask"


@dataclass
class TruncationReport:
    """How many examples lost words (or tokens, for text) to ``max_length``."""

    examples: int = 0
    truncated_examples: int = 0
    lost_words: int = 0

    def __str__(self) -> str:
        return (
            f"{self.truncated_examples} of {self.examples} examples truncated "
            f"({self.lost_words} words lost)"
        )


def _require_fast(tokenizer) -> None:
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError(
            f"{type(tokenizer).__name__} is a slow tokenizer; word alignment needs a fast tokenizer "
            "(AutoTokenizer.from_pretrained(..., use_fast=True))"
        )


def _mapped_with_report(dataset: datasets.Dataset, encode, lost_column: str, desc: str):
    """Map ``encode`` over ``dataset`` and turn its per-row ``lost_column`` counts into a TruncationReport."""
    out = dataset.map(encode, batched=True, desc=desc)
    lost = np.asarray(out[lost_column])
    return out.remove_columns(lost_column), TruncationReport(len(lost), int((lost > 0).sum()), int(lost.sum()))


def tokenize_and_align(
    dataset: datasets.Dataset | datasets.DatasetDict,
    tokenizer,
    label_column: str | None = "ner_tags",
    max_length: int = 128,
    return_report: bool = False,
):
    """Tokenize pre-split ``tokens`` and align word labels to sub-words.

    The first sub-word of each word gets the word's label and ``distill_mask = 1``; other sub-words,
    special tokens (and every position of an example without labels) get ``labels = -100``.
    Truncation at ``max_length`` is counted and logged; pass ``return_report=True`` to get the counts.
    """
    _require_fast(tokenizer)
    if isinstance(dataset, datasets.DatasetDict):
        parts = {k: tokenize_and_align(v, tokenizer, label_column, max_length, True) for k, v in dataset.items()}
        out = datasets.DatasetDict({k: v[0] for k, v in parts.items()})
        return (out, {k: v[1] for k, v in parts.items()}) if return_report else out
    has_labels = label_column is not None and label_column in dataset.column_names
    other_tags = [c for c in dataset.column_names if c.endswith("_tags")]
    if label_column is not None and not has_labels and other_tags:
        raise ValueError(f"label column {label_column!r} is not in the dataset, which has tag columns {other_tags}: "
                         f"pass label_column= one of them (a dataset with no tag column at all is read as unlabeled)")

    def encode(batch):
        enc = tokenizer(batch["tokens"], is_split_into_words=True, truncation=True, max_length=max_length)
        labels, masks, lost = [], [], []
        for i, words in enumerate(batch["tokens"]):
            word_ids = enc.word_ids(i)
            tags = batch[label_column][i] if has_labels else None
            lab, mask, prev = [], [], None
            for w in word_ids:
                first = w is not None and w != prev
                mask.append(1 if first else 0)
                lab.append(tags[w] if first and tags is not None and tags[w] is not None else IGNORE_INDEX)
                prev = w
            kept = sum(mask)
            labels.append(lab)
            masks.append(mask)
            lost.append(len(words) - kept)
        enc["labels"] = labels
        enc[DISTILL_MASK] = masks
        enc["_lost_words"] = lost
        return enc

    out, report = _mapped_with_report(dataset, encode, "_lost_words", "tokenize + align labels")
    if report.truncated_examples:
        logger.warning("tokenize_and_align(max_length=%d): %s", max_length, report)
    return (out, report) if return_report else out


def tokenize_text(
    dataset: datasets.Dataset | datasets.DatasetDict,
    tokenizer,
    text_column: str = "text",
    label_column: str = "label",
    max_length: int = 128,
    return_report: bool = False,
):
    """Tokenize a classification dataset; labels < 0 (unlabeled rows) become -100. Truncation is counted."""
    if isinstance(dataset, datasets.DatasetDict):
        parts = {k: tokenize_text(v, tokenizer, text_column, label_column, max_length, True)
                 for k, v in dataset.items()}
        out = datasets.DatasetDict({k: v[0] for k, v in parts.items()})
        return (out, {k: v[1] for k, v in parts.items()}) if return_report else out

    def encode(batch):
        enc = tokenizer(batch[text_column], truncation=True, max_length=max_length)
        full = tokenizer(batch[text_column], truncation=False, add_special_tokens=True)["input_ids"]
        enc["_lost"] = [max(0, len(f) - len(t)) for f, t in zip(full, enc["input_ids"])]
        if label_column in batch:
            enc["labels"] = [lab if lab is not None and lab >= 0 else IGNORE_INDEX for lab in batch[label_column]]
        return enc

    out, report = _mapped_with_report(dataset, encode, "_lost", "tokenize text")
    if report.truncated_examples:
        logger.warning("tokenize_text(max_length=%d): %s (tokens)", max_length, report)
    return (out, report) if return_report else out


def word_level(logits: np.ndarray, word_ids: list[int | None]) -> np.ndarray:
    """Sub-word scores ``(length, labels)`` to word scores ``(words, labels)``, reading each word's first sub-word."""
    logits = np.asarray(logits)
    if logits.shape[0] < len(word_ids):
        raise ValueError(f"logits cover {logits.shape[0]} positions but word_ids has {len(word_ids)}")
    firsts, prev = [], None
    for pos, w in enumerate(word_ids):
        if w is not None and w != prev:
            firsts.append(pos)
        prev = w
    return logits[firsts]
