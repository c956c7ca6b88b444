"""Where teacher outputs come from: an online forward pass, or columns cached once into the dataset.

The trainer is handed one :class:`TeacherSignal` per batch kind and never branches on caching itself.
A cache carries, per example, the teacher's weight fingerprint and a hash of the example's token ids,
so a cache built by another teacher, on other data or with another tokenizer is refused, not used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
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
CACHE_COLUMNS = (CACHE_LOGITS, CACHE_TOPK_VALUES, CACHE_TOPK_INDICES, CACHE_TEACHER_ID, CACHE_INPUT_HASH, CACHE_CRF,
                 CACHE_LABEL_MAP, CACHE_TOKENIZER)
#: per-row integer columns of a cache (one value per example)
CACHE_SCALARS = (CACHE_TEACHER_ID, CACHE_INPUT_HASH, CACHE_LABEL_MAP, CACHE_TOKENIZER)
#: version of the on-disk cache layout; caches written by another version are rebuilt, never reused
CACHE_FORMAT = 2
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
    hidden_states: tuple[torch.Tensor, ...] | None = None
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
        return TeacherOutput(logits, crf=crf)

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


def _pad_batch(rows: list[dict], keys: tuple[str, ...]) -> dict[str, torch.Tensor]:
    length = max(len(r["input_ids"]) for r in rows)
    out = {}
    for k in keys:
        arr = np.zeros((len(rows), length), dtype=np.int64)
        for i, r in enumerate(rows):
            arr[i, : len(r[k])] = r[k]
        out[k] = torch.from_numpy(arr)
    return out


def _compute_cache(teacher, dataset: datasets.Dataset, batch_size: int, dtype: str, top_k: int | None, device,
                   tokenizer=None):
    keys = tuple(k for k in MODEL_INPUTS if k in dataset.column_names)
    if "attention_mask" not in keys:
        raise ValueError("cache_teacher_outputs needs a tokenized dataset with input_ids and attention_mask")
    teacher_id = teacher_fingerprint(teacher)
    device = device or next(teacher.parameters()).device
    teacher.eval().to(device)
    ids_col = dataset["input_ids"]
    order = np.argsort([len(x) for x in ids_col], kind="stable")  # similar lengths per batch: less padding
    results: list = [None] * len(dataset)
    np_dtype = np.float16 if dtype == "float16" else np.float32
    token_level = None
    inputs_only = dataset.select_columns(list(keys))
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size].tolist()
            rows = inputs_only[idx]
            rows = [{k: rows[k][i] for k in keys} for i in range(len(idx))]
            batch = {k: v.to(device) for k, v in _pad_batch(rows, keys).items()}
            logits = teacher(**batch).logits.float().cpu()
            token_level = logits.dim() == 3
            for j, i in enumerate(idx):
                row = logits[j, : len(rows[j]["input_ids"])] if token_level else logits[j]
                if top_k is not None:
                    vals, inds = row.topk(min(top_k, row.shape[-1]), dim=-1)
                    results[i] = (vals.numpy().astype(np_dtype), inds.numpy().astype(np.int16))
                else:
                    results[i] = row.numpy().astype(np_dtype)
    hashes = [input_hash(x) for x in ids_col]
    num_labels = int((results[0][0] if top_k else results[0]).shape[-1]) if results else 0
    width = top_k if top_k is not None else num_labels

    def feature(dt):
        return datasets.Array2D(shape=(None, width), dtype=dt) if token_level else datasets.Sequence(
            datasets.Value(dt), length=width
        )

    cols: dict = {CACHE_TEACHER_ID: [teacher_id] * len(dataset), CACHE_INPUT_HASH: hashes,
                  CACHE_LABEL_MAP: [label_map_id(getattr(teacher, "config", None))] * len(dataset),
                  CACHE_TOKENIZER: [tokenizer_fingerprint(tokenizer)] * len(dataset)}
    feats = {k: datasets.Value("int64") for k in CACHE_SCALARS}
    potentials = crf_potentials(teacher)
    if potentials is not None:  # the paper's step 2: teacher sub-structure scores = emissions + these
        flat = pack_crf(potentials)
        cols[CACHE_CRF] = [flat] * len(dataset)
        feats[CACHE_CRF] = datasets.Sequence(datasets.Value("float32"), length=len(flat))
    if top_k is not None:
        cols[CACHE_TOPK_VALUES] = [r[0] for r in results]
        cols[CACHE_TOPK_INDICES] = [r[1] for r in results]
        feats[CACHE_TOPK_VALUES], feats[CACHE_TOPK_INDICES] = feature(dtype), feature("int16")
    else:
        cols[CACHE_LOGITS] = results
        feats[CACHE_LOGITS] = feature(dtype)
    new = datasets.Dataset.from_dict(cols, features=datasets.Features(feats))
    base = dataset.remove_columns([c for c in CACHE_COLUMNS if c in dataset.column_names])
    return datasets.concatenate_datasets([base, new], axis=1), teacher_id


def cache_teacher_outputs(
    teacher: torch.nn.Module,
    dataset: datasets.Dataset | datasets.DatasetDict,
    batch_size: int = 64,
    dtype: str = "float16",
    top_k: int | None = None,
    cache_dir: str | None = None,
    device: str | torch.device | None = None,
    tokenizer=None,
    rebuild: bool = False,
):
    """Run ``teacher`` once over a tokenized dataset and store its logits as columns.

    ``dtype`` is ``float16`` or ``float32``; ``top_k`` keeps only the k largest logits per position.
    The teacher's label order and, with ``tokenizer``, the tokenizer's fingerprint are stored beside the
    logits; the trainer refuses a cache whose label order or tokenizer differ from the student's.
    With ``cache_dir`` the result is saved atomically under a key made of the teacher's weight
    fingerprint, a hash of the dataset's rows and these options, and reused only when all of them match;
    a damaged cache (missing rows, changed files, unreadable metadata) raises naming its folder, or is
    rebuilt with ``rebuild=True``. Temporary folders left by killed writers are removed.
    """
    if dtype not in ("float16", "float32"):
        raise ValueError(f"dtype={dtype!r}: use 'float16' or 'float32'")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k={top_k}: keep at least one logit per position (or None for all)")
    if isinstance(dataset, datasets.DatasetDict):
        return datasets.DatasetDict(
            {k: cache_teacher_outputs(teacher, v, batch_size, dtype, top_k, cache_dir, device, tokenizer, rebuild)
             for k, v in dataset.items()}
        )
    if cache_dir is None:
        return _compute_cache(teacher, dataset, batch_size, dtype, top_k, device, tokenizer)[0]
    meta = {
        "format": CACHE_FORMAT,
        "teacher_id": teacher_fingerprint(teacher),
        "labels": label_names(getattr(teacher, "config", None)),
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "dataset_content": dataset_content_hash(dataset),
        "dtype": dtype,
        "top_k": top_k,
        "num_rows": len(dataset),
    }
    key = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:20]
    path = os.path.join(cache_dir, key)
    remove_abandoned_temp_folders(cache_dir)
    if os.path.exists(path):
        try:
            return load_cache(path, meta)
        except StaleTeacherCacheError:
            if not rebuild:
                raise
            logger.warning("rebuilding the damaged teacher cache %s", path)
            shutil.rmtree(path)
    result, _ = _compute_cache(teacher, dataset, batch_size, dtype, top_k, device, tokenizer)
    os.makedirs(cache_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{key}.{os.getpid()}.", suffix=".tmp", dir=cache_dir)
    try:
        result.save_to_disk(tmp)
        with open(os.path.join(tmp, CACHE_META), "w") as f:
            json.dump({**meta, "files": _file_hashes(tmp)}, f)
        if os.path.exists(path):  # a concurrent writer finished first
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return load_cache(path, meta)


CACHE_META = "hf_distill_cache.json"


def _file_hashes(folder: str) -> dict[str, str]:
    """blake2b of every data file of a saved dataset (the metadata file aside)."""
    out = {}
    for name in sorted(os.listdir(folder)):
        if name == CACHE_META or not os.path.isfile(os.path.join(folder, name)):
            continue
        h = hashlib.blake2b(digest_size=16)
        with open(os.path.join(folder, name), "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        out[name] = h.hexdigest()
    return out


def load_cache(path: str, meta: dict | None = None) -> datasets.Dataset:
    """Load a saved teacher cache after checking it: metadata readable (and equal to ``meta`` when given),
    every data file present and unchanged, the row count as recorded. Damage raises
    :class:`StaleTeacherCacheError` naming the folder and what to do."""
    fix = "delete the folder, or pass rebuild=True to cache_teacher_outputs"
    meta_path = os.path.join(path, CACHE_META)
    try:
        with open(meta_path) as f:
            saved = json.load(f)
    except FileNotFoundError:
        raise StaleTeacherCacheError(f"{path}: no {CACHE_META} (not a teacher cache, or an interrupted write); "
                                     f"{fix}") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise StaleTeacherCacheError(f"{meta_path}: unreadable cache metadata ({e}); {fix}") from None
    files = saved.pop("files", None) if isinstance(saved, dict) else None
    if meta is not None and saved != meta:
        raise StaleTeacherCacheError(f"{meta_path}: the cache was written for other settings than its key says "
                                     f"({saved} vs {meta}); {fix}")
    if not files:
        raise StaleTeacherCacheError(f"{meta_path}: no file hashes recorded (written by an older version); {fix}")
    got = _file_hashes(path)
    changed = sorted(n for n in files if got.get(n) != files[n])
    if changed:
        raise StaleTeacherCacheError(f"{path}: damaged cache, {', '.join(changed)} missing or changed since it "
                                     f"was written; {fix}")
    try:
        loaded = datasets.load_from_disk(path)
    except Exception as e:  # pyarrow and datasets raise many types for damaged files
        raise StaleTeacherCacheError(f"{path}: unreadable cache ({type(e).__name__}: {e}); {fix}") from None
    if len(loaded) != saved.get("num_rows"):
        raise StaleTeacherCacheError(f"{path}: the cache holds {len(loaded)} rows, its metadata says "
                                     f"{saved.get('num_rows')}; {fix}")
    logger.info("reusing cached teacher outputs from %s", path)
    return loaded


def remove_abandoned_temp_folders(cache_dir: str) -> list[str]:
    """Delete temporary cache folders whose writing process is gone (a killed build); returns them."""
    removed = []
    if not os.path.isdir(cache_dir):
        return removed
    for name in os.listdir(cache_dir):
        parts = name.split(".")
        if not (name.startswith(".") and name.endswith(".tmp") and len(parts) >= 4 and parts[2].isdigit()):
            continue
        pid = int(parts[2])
        try:
            os.kill(pid, 0)
            continue  # its writer still runs
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        shutil.rmtree(os.path.join(cache_dir, name), ignore_errors=True)
        removed.append(name)
        logger.info("removed %s, left by a killed cache build", name)
    return removed


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
    if CACHE_LOGITS not in cached.column_names:
        raise ValueError("transfer_teacher_cache needs full cached logits (top-k caches are not supported)")
    if len(cached) != len(student):
        raise ValueError(f"the cache has {len(cached)} rows, the student dataset {len(student)}")
    key = next((k for k in ("tokens", "text") if k in cached.column_names and k in student.column_names), None)
    if key is None:
        raise ValueError("both datasets need a 'tokens' or 'text' column to check that rows correspond")
    sub_ids, sub_hash, src_text = cached["input_ids"], cached[CACHE_INPUT_HASH], cached[key]
    logits, teacher_ids = cached[CACHE_LOGITS], cached[CACHE_TEACHER_ID]
    label_maps = cached[CACHE_LABEL_MAP] if CACHE_LABEL_MAP in cached.column_names else [UNKNOWN] * len(cached)
    masks = cached["distill_mask"] if level == "word" else None

    def move(ex, i):
        if ex[key] != src_text[i]:
            raise StaleTeacherCacheError(f"row {i}: student {key} differ from the cached teacher's")
        if input_hash(sub_ids[i]) != sub_hash[i]:
            raise StaleTeacherCacheError(f"row {i}: cached teacher outputs do not match their own input ids")
        # the student's own tokenizer made these ids: the teacher tokenizer's fingerprint no longer applies
        out = {CACHE_TEACHER_ID: teacher_ids[i], CACHE_LABEL_MAP: label_maps[i], CACHE_TOKENIZER: UNKNOWN}
        if level == "sequence":
            out[CACHE_LOGITS] = logits[i]
            out[CACHE_INPUT_HASH] = input_hash(ex["input_ids"])
            return out
        rows = np.asarray(logits[i], dtype=np.float32)[np.asarray(masks[i], dtype=bool)]
        n = min(len(rows), len(ex["input_ids"]))
        for col in ("input_ids", "attention_mask", "labels", "distill_mask", "char_ids"):
            if col in ex:
                out[col] = ex[col][:n]
        out[CACHE_LOGITS] = rows[:n]
        out[CACHE_INPUT_HASH] = input_hash(out["input_ids"])
        return out

    width = np.asarray(logits[0]).shape[-1] if len(cached) else 0
    features = student.features.copy()
    for col in CACHE_SCALARS:
        features[col] = datasets.Value("int64")
    features[CACHE_LOGITS] = (datasets.Array2D(shape=(None, width), dtype="float32") if level == "word"
                              else datasets.Sequence(datasets.Value("float32"), length=width))
    return student.map(move, with_indices=True, features=features, desc="transfer teacher cache")
