"""Moving a cache to a student's positions: sub-word teacher outputs to words (word-level students)."""

from __future__ import annotations

import hashlib
import logging

import datasets
import numpy as np

from ..training import signals

logger = logging.getLogger(__name__)

def transfer_teacher_cache(cached: datasets.Dataset, student: datasets.Dataset, level: str = "word"):
    """Move cached teacher outputs to a student dataset tokenized differently (same rows, same order).

    ``level="word"``: sub-word logits at first sub-words (``distill_mask``) become one row per word, for
    word-level students; student rows are cut to the words the teacher saw (sub-word truncation).
    ``level="sequence"``: classification logits are copied as they are (student with its own tokenizer).
    Rows must hold the same ``tokens`` (or ``text``); the sub-word cache must match its own input ids.
    The input hash is rewritten for the student's ids so the trainer's staleness check still applies.
    """
    if level not in ("word", "sequence"):
        raise ValueError(f"level={level!r}: use 'word' or 'sequence'")
    if signals.CACHE_LOGITS not in cached.column_names:
        raise ValueError("transfer_teacher_cache needs full cached logits (top-k caches are not supported)")
    if len(cached) != len(student):
        raise ValueError(f"the cache has {len(cached)} rows, the student dataset {len(student)}")
    key = next((k for k in ("tokens", "text") if k in cached.column_names and k in student.column_names), None)
    if key is None:
        raise ValueError("both datasets need a 'tokens' or 'text' column to check that rows correspond")
    # whole columns read once (indexing a lazy column row by row costs an Arrow lookup per row)
    sub_ids, sub_hash, src_text = list(cached["input_ids"]), list(cached[signals.CACHE_INPUT_HASH]), list(cached[key])
    logits, teacher_ids = list(cached[signals.CACHE_LOGITS]), list(cached[signals.CACHE_TEACHER_ID])
    label_maps = (list(cached[signals.CACHE_LABEL_MAP]) if signals.CACHE_LABEL_MAP in cached.column_names
                  else [signals.UNKNOWN] * len(cached))
    masks = list(cached["distill_mask"]) if level == "word" else None

    def move(ex, i):
        if ex[key] != src_text[i]:
            raise signals.StaleTeacherCacheError(f"row {i}: student {key} differ from the cached teacher's")
        if signals.input_hash(sub_ids[i]) != sub_hash[i]:
            raise signals.StaleTeacherCacheError(f"row {i}: cached teacher outputs do not match their own input ids")
        # the student's own tokenizer made these ids: the teacher tokenizer's fingerprint no longer applies
        out = {signals.CACHE_TEACHER_ID: teacher_ids[i], signals.CACHE_LABEL_MAP: label_maps[i],
               signals.CACHE_TOKENIZER: signals.UNKNOWN}
        if level == "sequence":
            out[signals.CACHE_LOGITS] = logits[i]
            out[signals.CACHE_INPUT_HASH] = signals.input_hash(ex["input_ids"])
            return out
        rows = np.asarray(logits[i], dtype=np.float32)[np.asarray(masks[i], dtype=bool)]
        n = min(len(rows), len(ex["input_ids"]))
        for col in ("input_ids", "attention_mask", "labels", "distill_mask", "char_ids", "piece_ids"):
            if col in ex:
                out[col] = ex[col][:n]
        out[signals.CACHE_LOGITS] = rows[:n]
        out[signals.CACHE_INPUT_HASH] = signals.input_hash(out["input_ids"])
        return out

    width = np.asarray(logits[0]).shape[-1] if len(cached) else 0
    features = student.features.copy()
    for col in signals.CACHE_SCALARS:
        features[col] = datasets.Value("int64")
    features[signals.CACHE_LOGITS] = (datasets.Array2D(shape=(None, width), dtype="float32") if level == "word"
                              else datasets.Sequence(datasets.Value("float32"), length=width))
    # the fingerprint from the inputs' own: hashing ``move`` would pickle its closure, every row's logits
    fingerprint = hashlib.sha256(f"transfer_teacher_cache/1|{getattr(cached, '_fingerprint', '')}|"
                                 f"{getattr(student, '_fingerprint', '')}|{level}".encode()).hexdigest()[:32]
    return student.map(move, with_indices=True, features=features, desc="transfer teacher cache",
                       new_fingerprint=fingerprint)
