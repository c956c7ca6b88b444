"""Where teacher outputs come from: an online forward pass, or columns cached once into the dataset.

The trainer is handed one :class:`TeacherSignal` per batch kind and never branches on caching itself.
A cache carries, per example, the teacher's weight fingerprint and a hash of the example's token ids,
so a cache built by another teacher, on other data or with another tokenizer is refused, not used.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

import datasets
import numpy as np
import torch

logger = logging.getLogger(__name__)

CACHE_LOGITS = "teacher_logits"
CACHE_TOPK_VALUES = "teacher_topk_values"
CACHE_TOPK_INDICES = "teacher_topk_indices"
CACHE_TEACHER_ID = "teacher_id"
CACHE_INPUT_HASH = "teacher_input_hash"
CACHE_CRF = "teacher_crf"  # flattened (transitions, start, end) of a CRF teacher
CACHE_LABEL_MAP = "teacher_label_map"  # hash of the teacher's label names in id order (-1: generic names)
CACHE_TOKENIZER = "teacher_tokenizer"  # fingerprint of the tokenizer the rows were tokenized with (-1: unknown)
#: cached teacher hidden states, one column per layer (``teacher_hidden_0`` = embeddings), for hidden-state losses
CACHE_HIDDEN_PREFIX = "teacher_hidden_"
MAX_CACHED_LAYER = 64
CACHE_HIDDEN = tuple(f"{CACHE_HIDDEN_PREFIX}{i}" for i in range(MAX_CACHED_LAYER + 1))
CACHE_COLUMNS = (CACHE_LOGITS, CACHE_TOPK_VALUES, CACHE_TOPK_INDICES, CACHE_TEACHER_ID, CACHE_INPUT_HASH, CACHE_CRF,
                 CACHE_LABEL_MAP, CACHE_TOKENIZER, *CACHE_HIDDEN)
#: per-row integer columns of a cache (one value per example)
CACHE_SCALARS = (CACHE_TEACHER_ID, CACHE_INPUT_HASH, CACHE_LABEL_MAP, CACHE_TOKENIZER)
#: version of the on-disk cache layout; caches written by another version are rebuilt, never reused
CACHE_FORMAT = 3
UNKNOWN = -1
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def has_cache_columns(columns) -> bool:
    """True when ``columns`` (names, or a batch dict) carry cached teacher logits (full or top-k)."""
    return CACHE_LOGITS in columns or CACHE_TOPK_VALUES in columns


class StaleTeacherCacheError(RuntimeError):
    """Cached teacher outputs that do not belong to this teacher, these inputs or this tokenizer."""


@dataclass
class TeacherOutput:
    """Teacher logits ``(batch, length, labels)`` or ``(batch, labels)``; ``-inf`` outside a cached top-k."""

    logits: torch.Tensor
    #: all layers (online: a tuple, 0 = embeddings) or the cached ones (a dict layer -> tensor)
    hidden_states: tuple[torch.Tensor, ...] | dict[int, torch.Tensor] | None = None
    crf: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None  # (transitions, start, end)


def crf_potentials(model: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """A model's CRF (transitions, start, end) with constraints applied, or None without a CRF head."""
    crf = getattr(model, "crf", None)
    return None if crf is None else tuple(x.detach() for x in crf.potentials())


def pack_crf(potentials) -> np.ndarray:
    trans, start, end = potentials
    return torch.cat([trans.reshape(-1), start, end]).float().cpu().numpy()


def unpack_crf(flat: torch.Tensor, num_labels: int):
    n = num_labels
    return flat[: n * n].view(n, n), flat[n * n : n * n + n], flat[n * n + n :]


#: config keys that say where or when a model was loaded or saved, not what it computes
_PROVENANCE_KEYS = ("_name_or_path", "transformers_version", "_commit_hash", "architectures",
                    "_attn_implementation_autoset", "_attn_implementation_internal")


def teacher_fingerprint(model: torch.nn.Module) -> int:
    """A 63-bit fingerprint of what determines a model's outputs: its class, its configuration (label map
    included; not the path it was loaded from) and every weight. The same teacher loaded from a copied
    folder, a relative path or a Hub snapshot gets the same fingerprint."""
    h = hashlib.blake2b(digest_size=8)
    h.update(type(model).__name__.encode())
    config = getattr(model, "config", None)
    if config is not None:
        d = {k: v for k, v in config.to_dict().items() if k not in _PROVENANCE_KEYS}
        h.update(json.dumps(d, sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return int.from_bytes(h.digest(), "little") >> 1


def _hash63(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") >> 1


def label_names(config) -> list[str] | None:
    """A config's label names in id order, or None when it has none or only generic ``LABEL_i`` names."""
    id2label = getattr(config, "id2label", None)
    if not id2label:
        return None
    names = [id2label[i] for i in range(len(id2label))]
    return None if names == [f"LABEL_{i}" for i in range(len(names))] else names


def label_map_id(config) -> int:
    """A hash of a config's label names in id order; :data:`UNKNOWN` for generic or missing names."""
    names = label_names(config)
    return UNKNOWN if names is None else _hash63(json.dumps(names))


def tokenizer_fingerprint(tokenizer) -> int:
    """A hash of what decides a tokenizer's ids (class, vocabulary, casing options); :data:`UNKNOWN` when the
    tokenizer is None or has no vocabulary to read."""
    if tokenizer is None or not hasattr(tokenizer, "get_vocab"):
        return UNKNOWN
    try:
        vocab = tokenizer.get_vocab()
    except (NotImplementedError, AttributeError):
        return UNKNOWN
    options = {k: v for k, v in sorted(getattr(tokenizer, "init_kwargs", {}).items())
               if k in ("do_lower_case", "strip_accents", "tokenize_chinese_chars", "add_prefix_space")}
    base = type(tokenizer).__name__.removesuffix("Fast")
    return _hash63(json.dumps([base, options, sorted(vocab.items(), key=lambda kv: kv[1])], default=str))


def input_hash(ids) -> int:
    """A 63-bit hash of one example's (unpadded) token ids."""
    arr = np.asarray(ids, dtype=np.int64)
    return int.from_bytes(hashlib.blake2b(arr.tobytes(), digest_size=8).digest(), "little") >> 1


def dataset_content_hash(dataset: datasets.Dataset, batch_size: int = 1000) -> str:
    """A hash of every row and the features of a dataset, cache columns aside.

    Unlike ``Dataset._fingerprint`` (which follows the transforms applied, and can differ between two
    processes that build the same rows), it depends only on what the rows hold.
    """
    columns = [c for c in dataset.column_names if c not in CACHE_COLUMNS]
    h = hashlib.blake2b(digest_size=16)
    view = dataset.select_columns(columns)
    h.update(json.dumps({c: str(view.features[c]) for c in columns}, sort_keys=True).encode())
    for batch in view.iter(batch_size=batch_size):
        h.update(json.dumps(batch, sort_keys=True, default=str).encode())
    return h.hexdigest()


def batch_input_hashes(input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> list[int]:
    """Hashes of each row's non-padding token ids (padding side does not matter)."""
    ids = input_ids.detach().cpu().numpy()
    if attention_mask is None:
        return [input_hash(row) for row in ids]
    mask = attention_mask.detach().cpu().numpy().astype(bool)
    return [input_hash(row[m]) for row, m in zip(ids, mask)]


class OnlineTeacher:
    """Runs the teacher on each batch under ``torch.no_grad()`` (the teacher stays in eval mode)."""

    def __init__(self, teacher: torch.nn.Module, output_hidden_states: bool = False):
        self.teacher = teacher
        self.output_hidden_states = output_hidden_states

    def __call__(self, model_inputs: dict, cached: dict) -> TeacherOutput:
        inputs = {k: v for k, v in model_inputs.items() if k in MODEL_INPUTS}
        self.teacher.eval()
        with torch.no_grad():
            out = self.teacher(**inputs, output_hidden_states=self.output_hidden_states)
        return TeacherOutput(out.logits, out.hidden_states if self.output_hidden_states else None,
                             crf_potentials(self.teacher))


class CachedTeacher:
    """Reads teacher logits (full or top-k) from batch columns and checks they belong to this batch."""

    def __init__(self, teacher_id: int | None = None, num_labels: int | None = None,
                 label_map: int = UNKNOWN, tokenizer_id: int = UNKNOWN, labels: list[str] | None = None):
        self.teacher_id = teacher_id
        self.num_labels = num_labels
        self.label_map, self.tokenizer_id, self.labels = label_map, tokenizer_id, labels

    def __call__(self, model_inputs: dict, cached: dict) -> TeacherOutput:
        self.check(model_inputs, cached)
        if CACHE_LOGITS in cached:
            logits = cached[CACHE_LOGITS].float()
        else:
            values, indices = cached[CACHE_TOPK_VALUES].float(), cached[CACHE_TOPK_INDICES].long()
            if self.num_labels is None:
                raise ValueError("top-k cached logits need num_labels to rebuild the label axis")
            logits = torch.full((*values.shape[:-1], self.num_labels), float("-inf"), device=values.device)
            logits.scatter_(-1, indices, values)
        if torch.isnan(logits).any() or torch.isposinf(logits).any():
            raise StaleTeacherCacheError("cached teacher logits hold NaN or +inf values: the cache is damaged or the "
                                         "teacher diverged; rebuild it")
        if self.num_labels is not None and logits.shape[-1] != self.num_labels:
            raise StaleTeacherCacheError(
                f"cached teacher logits have {logits.shape[-1]} labels, the student has {self.num_labels}"
            )
        crf = unpack_crf(cached[CACHE_CRF][0].float(), logits.shape[-1]) if CACHE_CRF in cached else None
        hidden = {int(k[len(CACHE_HIDDEN_PREFIX):]): v.float() for k, v in cached.items()
                  if k.startswith(CACHE_HIDDEN_PREFIX)}
        return TeacherOutput(logits, hidden_states=hidden or None, crf=crf)

    def check(self, model_inputs: dict, cached: dict) -> None:
        if CACHE_INPUT_HASH not in cached:
            raise StaleTeacherCacheError("cached teacher columns lack 'teacher_input_hash'; rebuild the cache")
        got = batch_input_hashes(model_inputs["input_ids"], model_inputs.get("attention_mask"))
        want = cached[CACHE_INPUT_HASH].tolist()
        if got != want:
            bad = sum(a != b for a, b in zip(got, want))
            raise StaleTeacherCacheError(
                f"{bad} of {len(got)} examples in this batch have token ids other than those the teacher outputs "
                "were cached for (other data, other tokenizer or other max_length): rebuild the cache"
            )
        self._check_same(cached, CACHE_LABEL_MAP, self.label_map,
                         f"cached teacher outputs come from a teacher whose label names or label order differ from "
                         f"the student's id2label {self.labels}: its soft targets would be permuted; give the student "
                         "the teacher's id2label, or rebuild the cache")
        self._check_same(cached, CACHE_TOKENIZER, self.tokenizer_id,
                         "the rows were tokenized (and the teacher cached) with another tokenizer than the one this "
                         "trainer was given (processing_class): the student would be saved with the wrong tokenizer")
        if self.teacher_id is not None:
            ids = set(cached[CACHE_TEACHER_ID].tolist())
            if ids != {self.teacher_id}:
                raise StaleTeacherCacheError(
                    "cached teacher outputs were computed by another teacher (weight fingerprint differs from "
                    "teacher_model): rebuild the cache with this teacher"
                )


    @staticmethod
    def _check_same(cached: dict, column: str, want: int, message: str) -> None:
        if want == UNKNOWN or column not in cached:
            return
        got = set(cached[column].tolist()) - {UNKNOWN}
        if got and got != {want}:
            raise StaleTeacherCacheError(message)


class SignalSelector:
    """The teacher signal of one run, chosen once: the training rows' cache columns if they have them, else the
    online teacher. When the rows cannot be inspected (no column names), the first training batch decides."""

    def __init__(self, cached: CachedTeacher, online=None, columns=()):
        self.cached, self.online = cached, online
        self.kind = self._kind(columns) if columns else None

    @classmethod
    def for_run(cls, student, teacher_id: int | None, tokenizer, online, columns) -> SignalSelector:
        """The selector of a run: the cache checks are set from the student's config and the tokenizer."""
        config = getattr(student, "config", None)
        cached = CachedTeacher(teacher_id=teacher_id, num_labels=getattr(config, "num_labels", None),
                               label_map=label_map_id(config), tokenizer_id=tokenizer_fingerprint(tokenizer),
                               labels=label_names(config))
        return cls(cached, online, columns)

    def _kind(self, columns) -> str | None:
        return "cached" if has_cache_columns(columns) else "online" if self.online else None

    def __call__(self, cached_columns: dict):
        if self.kind is None:
            self.kind = self._kind(cached_columns)
        if self.kind is None:
            raise ValueError("no teacher signal: pass teacher_model= or train on cache_teacher_outputs() data")
        if self.kind == "cached" and not has_cache_columns(cached_columns):
            raise ValueError("this run reads cached teacher outputs, but a batch has no cache columns: cache every "
                             "training row (labeled and transfer rows together)")
        return self.cached if self.kind == "cached" else self.online
