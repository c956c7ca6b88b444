"""Batch collation that pads the distillation columns (cached teacher logits, KD mask) with the inputs."""

from __future__ import annotations

import numpy as np
import torch
from transformers import DataCollatorForTokenClassification, DataCollatorWithPadding

from ..data.align import DISTILL_MASK
from .signals import (
    CACHE_COLUMNS,
    CACHE_CRF,
    CACHE_HIDDEN,
    CACHE_LOGITS,
    CACHE_SCALARS,
    CACHE_TOPK_VALUES,
    StaleTeacherCacheError,
)

EXTRA_COLUMNS = (DISTILL_MASK, *CACHE_COLUMNS)
_SCALAR = CACHE_SCALARS
_HIDDEN = frozenset(CACHE_HIDDEN)
_FLOAT = frozenset((CACHE_LOGITS, CACHE_TOPK_VALUES, *CACHE_HIDDEN))


def hidden_as_numpy(dataset):
    """``dataset`` with its cached hidden-state columns read as numpy arrays (about 2x faster batches than the
    nested lists ``datasets`` returns by default); any other dataset, or one with a format set, as it is."""
    import datasets

    hidden = [c for c in getattr(dataset, "column_names", None) or [] if c in _HIDDEN]
    if not hidden or not isinstance(dataset, datasets.Dataset) or dataset.format["type"] is not None:
        return dataset
    return dataset.with_format("numpy", columns=hidden, output_all_columns=True)


class DistillationCollator:
    """Pads token or sequence classification batches and the extra columns the trainer reads.

    Token batches (list-valued ``labels`` or a ``distill_mask``) go through
    ``DataCollatorForTokenClassification``; others through ``DataCollatorWithPadding``. Cached
    per-position teacher arrays are right-padded with zeros to the batch length (padding is masked).
    """

    #: columns collated by default; raw columns (``tokens``, word-level ``ner_tags``...) are dropped.
    MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "labels", "label", "label_ids")

    def __init__(self, tokenizer, pad_to_multiple_of: int | None = None, extra_inputs: tuple[str, ...] = ()):
        self.keep = set(self.MODEL_INPUTS) | set(EXTRA_COLUMNS) | set(extra_inputs)
        self.per_position = set(EXTRA_COLUMNS) | set(extra_inputs)  # padded here along the time axis
        self.token = DataCollatorForTokenClassification(tokenizer, pad_to_multiple_of=pad_to_multiple_of)
        self.sequence = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_to_multiple_of)
        self.padding_side = tokenizer.padding_side

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        features = [{k: v for k, v in f.items() if k in self.keep} for f in features]
        extra = {k: [f.pop(k) for f in features] for k in self.per_position if k in features[0]}
        first = features[0]
        token_level = DISTILL_MASK in extra or isinstance(first.get("labels"), (list, tuple, np.ndarray))
        batch = (self.token if token_level else self.sequence)(features)
        length = batch["input_ids"].shape[1]
        for key, values in extra.items():
            if key in _SCALAR:
                batch[key] = torch.tensor(values, dtype=torch.int64)
            elif key == CACHE_CRF:
                batch[key] = torch.as_tensor(np.asarray(values, dtype=np.float32))
            elif token_level or key in _HIDDEN:  # hidden states are per token in every task
                batch[key] = self._pad(key, values, length)
            else:
                batch[key] = torch.as_tensor(np.asarray(values))
        return batch

    def _pad(self, key: str, values: list, length: int) -> torch.Tensor:
        dtype = np.float32 if key in _FLOAT else np.int64
        arrays = [np.asarray(v, dtype=dtype) for v in values]
        shape = (len(arrays), length, *arrays[0].shape[1:])
        out = np.zeros(shape, dtype=dtype)
        for i, a in enumerate(arrays):
            if len(a) > length:
                raise StaleTeacherCacheError(
                    f"{key} of example {i} in this batch covers {len(a)} positions but the batch is {length} "
                    "tokens long: the cache was built on other inputs (other tokenizer or max_length)"
                )
            if self.padding_side == "left":
                out[i, length - len(a) :] = a
            else:
                out[i, : len(a)] = a
        return torch.from_numpy(out)
