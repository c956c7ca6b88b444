"""Building a cache: shards computed (every N-th one per process under ``torch.distributed``), written as
they finish, resumed after a kill, published atomically; the record a cache is matched on."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Sequence

import datasets
import numpy as np
import pyarrow.compute as pc
import torch

from ..base import write_json_atomic
from ..training.signals import (
    CACHE_COLUMNS,
    CACHE_CRF,
    CACHE_FORMAT,
    CACHE_HIDDEN_PREFIX,
    CACHE_INPUT_HASH,
    CACHE_LABEL_MAP,
    CACHE_LOGITS,
    CACHE_SCALARS,
    CACHE_TEACHER_ID,
    CACHE_TOKENIZER,
    CACHE_TOPK_INDICES,
    CACHE_TOPK_VALUES,
    MAX_CACHED_LAYER,
    MODEL_INPUTS,
    StaleTeacherCacheError,
    crf_potentials,
    dataset_content_hash,
    input_hash,
    label_map_id,
    label_names,
    pack_crf,
    teacher_fingerprint,
    tokenizer_fingerprint,
)
from ..training.validate import longest_row
from .runners import BACKENDS, CACHE_META, ONNX_BATCH, _onnx_runner, _pad_batch, _torch_runner
from .store import _file_hashes, load_cache, remove_abandoned_temp_folders

logger = logging.getLogger(__name__)

# ------------------------------------------------------------------------------------ computing rows
def _shard_columns(run, inputs_only, keys, start: int, stop: int, batch_size: int, dtype: str, top_k,
                   fixed: dict) -> datasets.Dataset:
    """The cache columns of rows ``start..stop`` (in dataset order), as a small Dataset."""
    rows_all = inputs_only[start:stop]
    rows = [{k: rows_all[k][i] for k in keys} for i in range(stop - start)]
    order = np.argsort([len(r["input_ids"]) for r in rows], kind="stable")  # similar lengths: less padding
    np_dtype = np.float16 if dtype == "float16" else np.float32
    results: list = [None] * len(rows)
    hidden_rows: dict[int, list] = {layer: [None] * len(rows) for layer in fixed["hidden_layers"]}
    token_level = None
    for b in range(0, len(order), batch_size):
        idx = order[b : b + batch_size].tolist()
        logits = run(_pad_batch([rows[i] for i in idx], keys))
        logits, hidden = logits if isinstance(logits, tuple) else (logits, {})
        token_level = logits.ndim == 3
        for j, i in enumerate(idx):
            for layer, states in hidden.items():  # per real token of the row, as the logits of token tasks
                hidden_rows[layer][i] = states[j, : len(rows[i]["input_ids"])].astype(np_dtype)
            row = logits[j, : len(rows[i]["input_ids"])] if token_level else logits[j]
            if top_k is not None:
                k = min(top_k, row.shape[-1])
                inds = np.argsort(-row, axis=-1, kind="stable")[..., :k]
                vals = np.take_along_axis(row, inds, axis=-1)
                results[i] = (vals.astype(np_dtype), inds.astype(np.int16))
            else:
                results[i] = row.astype(np_dtype)
    n = len(rows)
    num_labels = fixed["num_labels"]
    width = top_k if top_k is not None else num_labels

    def feature(dt):
        return datasets.Array2D(shape=(None, width), dtype=dt) if fixed["token_level"] else datasets.Sequence(
            datasets.Value(dt), length=width)

    cols: dict = {CACHE_TEACHER_ID: [fixed["teacher_id"]] * n,
                  CACHE_INPUT_HASH: [input_hash(r["input_ids"]) for r in rows],
                  CACHE_LABEL_MAP: [fixed["label_map"]] * n, CACHE_TOKENIZER: [fixed["tokenizer"]] * n}
    feats = {k: datasets.Value("int64") for k in CACHE_SCALARS}
    if fixed["crf"] is not None:  # teacher sub-structure scores = emissions + these (Lin et al. 2022)
        cols[CACHE_CRF] = [fixed["crf"]] * n
        feats[CACHE_CRF] = datasets.Sequence(datasets.Value("float32"), length=len(fixed["crf"]))
    if top_k is not None:
        cols[CACHE_TOPK_VALUES] = [r[0] for r in results]
        cols[CACHE_TOPK_INDICES] = [r[1] for r in results]
        feats[CACHE_TOPK_VALUES], feats[CACHE_TOPK_INDICES] = feature(dtype), feature("int16")
    else:
        cols[CACHE_LOGITS] = results
        feats[CACHE_LOGITS] = feature(dtype)
    for layer, states in hidden_rows.items():
        cols[f"{CACHE_HIDDEN_PREFIX}{layer}"] = states
        feats[f"{CACHE_HIDDEN_PREFIX}{layer}"] = datasets.Array2D(shape=(None, fixed["hidden_size"]), dtype=dtype)
    return datasets.Dataset.from_dict(cols, features=datasets.Features(feats))


def _prepare(teacher, dataset, tokenizer, backend, device, atol, batch_size, min_agreement: float = 0.99,
             hidden_layers: tuple[int, ...] = ()):
    keys = tuple(k for k in MODEL_INPUTS if k in dataset.column_names)
    if "attention_mask" not in keys:
        raise ValueError("cache_teacher_outputs needs a tokenized dataset with input_ids and attention_mask")
    limit = getattr(getattr(teacher, "config", None), "max_position_embeddings", None)
    longest = longest_row(dataset) if limit else 0
    if longest > limit:
        raise ValueError(f"rows are up to {longest} tokens long but the teacher has {limit} position "
                         f"embeddings: tokenize with max_length<={limit}")
    inputs_only = dataset.select_columns(list(keys))
    report = {}
    if backend.startswith("onnxruntime"):
        quantized = backend == "onnxruntime-int8"
        # int8 is judged on label agreement: a larger sample than the exactness check of fp32 needs
        probe = [inputs_only[i] for i in range(min(len(dataset), 256 if quantized else 16))]
        run, check = _onnx_runner(teacher, probe, keys, atol, quantized, min_agreement)
        report.update(check)
        batch_size = min(batch_size, ONNX_BATCH)  # onnxruntime on CPU is fastest on small batches
    else:
        run = _torch_runner(teacher, device, hidden_layers)
    first = run(_pad_batch([inputs_only[0]], keys)) if len(dataset) else np.zeros((1, 1, 1))
    first, hidden = first if isinstance(first, tuple) else (first, {})
    potentials = crf_potentials(teacher)
    fixed = {"teacher_id": teacher_fingerprint(teacher), "label_map": label_map_id(getattr(teacher, "config", None)),
             "tokenizer": tokenizer_fingerprint(tokenizer), "num_labels": int(first.shape[-1]),
             "token_level": first.ndim == 3, "crf": None if potentials is None else pack_crf(potentials),
             "hidden_layers": hidden_layers,
             "hidden_size": next((int(h.shape[-1]) for h in hidden.values()), 0)}
    return run, inputs_only, keys, fixed, report, batch_size


def _attach(dataset: datasets.Dataset, columns: datasets.Dataset) -> datasets.Dataset:
    base = dataset.remove_columns([c for c in CACHE_COLUMNS if c in dataset.column_names])
    return datasets.concatenate_datasets([base, columns], axis=1)


def _release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc keeps them otherwise)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


def _distributed() -> tuple[int, int]:
    """``(rank, world size)``: from ``torch.distributed`` when initialized, else ``RANK``/``WORLD_SIZE``."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def _barrier() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()


def _wait_for(paths: list[str], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not all(os.path.exists(p) for p in paths):
        if time.monotonic() > deadline:
            missing = [p for p in paths if not os.path.exists(p)]
            raise TimeoutError(f"waited {timeout:.0f} s for {what}: {missing[:3]} missing (did a process die?)")
        time.sleep(0.5)


def _check_hidden_layers(teacher, hidden_layers, backend: str) -> tuple[int, ...]:
    """``hidden_layers`` as a sorted tuple of distinct layers, each one the teacher has."""
    if not hidden_layers:
        return ()
    if backend != "torch":
        raise ValueError(f"hidden_layers={list(hidden_layers)}: only the torch backend caches hidden states (the "
                         f"{backend} export outputs logits only)")
    layers = tuple(sorted({int(x) for x in hidden_layers}))
    count = getattr(getattr(teacher, "config", None), "num_hidden_layers", None)
    top = MAX_CACHED_LAYER if count is None else min(count, MAX_CACHED_LAYER)
    bad = [x for x in layers if not 0 <= x <= top]
    if bad:
        raise ValueError(f"hidden_layers={list(layers)}: layers {bad} do not exist (0 = embeddings, 1..{top} the "
                         "teacher's transformer layers)")
    return layers


def recorded_tokenizer(teacher, dataset, tokenizer=None):
    """The tokenizer a cache records: ``tokenizer`` when given, else the teacher's own (read from its folder or the
    local Hub cache, never downloaded) when every row's ids fit its vocabulary. When neither can be known it
    returns None and warns: the cache then cannot tell a later run with another tokenizer of the same size."""
    if tokenizer is not None:
        return tokenizer
    name = getattr(getattr(teacher, "config", None), "_name_or_path", None) or None
    found = None
    if name:
        try:
            from transformers import AutoTokenizer

            found = AutoTokenizer.from_pretrained(name, local_files_only=True)
        except Exception:  # no tokenizer files beside the teacher: said below
            found = None
    if found is not None:
        split = next(iter(dataset.values())) if isinstance(dataset, datasets.DatasetDict) else dataset
        ids = split.data.column("input_ids") if "input_ids" in split.column_names else None
        top = pc.max(pc.list_flatten(ids)).as_py() if ids is not None and len(split) else None
        if top is None or top < len(found):
            logger.info("teacher cache: no tokenizer= given; recording the teacher's tokenizer (%s)", name)
            return found
        logger.warning("teacher cache: the rows hold token id %d, beyond the %d entries of the teacher's tokenizer "
                       "(%s): they were tokenized with another tokenizer", top, len(found), name)
    logger.warning("teacher cache: no tokenizer= given and the teacher's own (%s) cannot be read: the cache records "
                   "no tokenizer, so a run with another tokenizer of the same size would not be refused; pass "
                   "tokenizer=", name or "no name_or_path")
    return None


# ------------------------------------------------------------------------------------- the public API
def cache_meta(teacher, dataset: datasets.Dataset, dtype: str = "float16", top_k: int | None = None,
               tokenizer=None, backend: str = "torch", hidden_layers: tuple[int, ...] = ()) -> dict:
    """What a cache of ``teacher`` over ``dataset`` must record to be reused: its key is a hash of this."""
    extra = {"hidden_layers": sorted(hidden_layers)} if hidden_layers else {}  # older keys stay as they were
    return {
        "format": CACHE_FORMAT,
        "teacher_id": teacher_fingerprint(teacher),
        "labels": label_names(getattr(teacher, "config", None)),
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "dataset_content": dataset_content_hash(dataset),
        "dtype": dtype,
        "top_k": top_k,
        "num_rows": len(dataset),
        "backend": backend,
        **extra,
    }


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
    backend: str = "torch",
    shard_size: int = 16384,
    onnx_atol: float = 1e-3,
    wait_timeout: float = 24 * 3600.0,
    onnx_min_agreement: float = 0.99,
    hidden_layers: Sequence[int] | None = None,
):
    """Run ``teacher`` once over a tokenized dataset and store its logits as columns.

    ``dtype`` is ``float16`` or ``float32``; ``top_k`` keeps only the k largest logits per position.
    The teacher's label order and, with ``tokenizer``, the tokenizer's fingerprint are stored beside the
    logits; the trainer refuses a cache whose label order or tokenizer differ from the student's.
    ``backend="onnxruntime"`` runs the teacher's ONNX export (refused above ``onnx_atol`` from PyTorch);
    ``"onnxruntime-int8"`` its dynamically quantized export, faster on CPU but a changed teacher: refused when
    fewer than ``onnx_min_agreement`` of 256 sample rows' positions keep PyTorch's argmax (recorded in the
    cache's metadata; the backend is part of the cache key).
    ``hidden_layers`` (PyTorch backend only) also stores those layers' hidden states per token (0 = the
    embeddings, as ``output_hidden_states`` counts; ``dtype`` as the logits), for hidden-state losses
    (``hidden_matches``) without the teacher online: about ``tokens x hidden size x 2`` bytes per layer in fp16.
    With ``cache_dir`` the build streams shard by shard (bounded memory), resumes a killed build from its
    finished shards, splits the shards across processes, and publishes atomically under a key made of the
    teacher's weight fingerprint, a hash of the dataset's rows and these options; it is reused only when
    all of them match. A damaged cache (missing rows, changed files, unreadable metadata) raises naming its
    folder, or is rebuilt with ``rebuild=True``. Temporary folders left by killed writers are removed.
    """
    if dtype not in ("float16", "float32"):
        raise ValueError(f"dtype={dtype!r}: use 'float16' or 'float32'")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k={top_k}: keep at least one logit per position (or None for all)")
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r}: use one of {BACKENDS}")
    if shard_size < 1:
        raise ValueError(f"shard_size={shard_size}: at least one row per shard")
    hidden_layers = _check_hidden_layers(teacher, hidden_layers, backend)
    tokenizer = recorded_tokenizer(teacher, dataset, tokenizer)
    if isinstance(dataset, datasets.DatasetDict):
        return datasets.DatasetDict(
            {k: cache_teacher_outputs(teacher, v, batch_size, dtype, top_k, cache_dir, device, tokenizer, rebuild,
                                      backend, shard_size, onnx_atol, wait_timeout, onnx_min_agreement, hidden_layers)
             for k, v in dataset.items()})
    if cache_dir is None:
        run, inputs_only, keys, fixed, _, batch_size = _prepare(teacher, dataset, tokenizer, backend, device,
                                                                onnx_atol, batch_size, onnx_min_agreement,
                                                                hidden_layers)
        shards = [_shard_columns(run, inputs_only, keys, a, min(a + shard_size, len(dataset)), batch_size, dtype,
                                 top_k, fixed) for a in range(0, len(dataset), shard_size)]
        return _attach(dataset, datasets.concatenate_datasets(shards)) if shards else dataset
    meta = cache_meta(teacher, dataset, dtype, top_k, tokenizer, backend, hidden_layers)
    key = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:20]
    path = os.path.join(cache_dir, key)
    rank, world = _distributed()
    if rank == 0:
        remove_abandoned_temp_folders(cache_dir)
    if os.path.exists(path):
        try:
            return load_cache(path, meta)
        except StaleTeacherCacheError:
            if not rebuild:
                raise
            if rank == 0:
                logger.warning("rebuilding the damaged teacher cache %s", path)
                shutil.rmtree(path)
            _barrier()
    partial = os.path.join(cache_dir, f"{key}.partial")
    os.makedirs(partial, exist_ok=True)
    if rank == 0:
        remove_abandoned_temp_folders(partial)
    spans = [(a, min(a + shard_size, len(dataset))) for a in range(0, len(dataset), shard_size)]
    # each part holds its rows whole (inputs + cache columns): publishing is a rename, nothing is copied
    part_dirs = [os.path.join(partial, f"part-{i:05d}-{a}-{b}") for i, (a, b) in enumerate(spans)]
    mine = [i for i in range(len(spans)) if i % world == rank]
    todo = [i for i in mine if not os.path.isdir(part_dirs[i])]
    reused = sum(spans[i][1] - spans[i][0] for i in mine if i not in todo)
    if reused:
        logger.info("teacher cache %s: reusing %d rows from finished shards, computing %d", key, reused,
                    sum(spans[i][1] - spans[i][0] for i in todo))
    build = {"reused_rows": reused, "parts": len(spans)}
    if todo:
        run, inputs_only, keys, fixed, report, batch_size = _prepare(teacher, dataset, tokenizer, backend, device,
                                                                     onnx_atol, batch_size, onnx_min_agreement,
                                                                     hidden_layers)
        build.update(report)
        for i in todo:
            a, b = spans[i]
            part = _attach(dataset.select(range(a, b)).flatten_indices(),
                           _shard_columns(run, inputs_only, keys, a, b, batch_size, dtype, top_k, fixed))
            tmp = tempfile.mkdtemp(prefix=f".part.{os.getpid()}.", suffix=".tmp", dir=partial)
            try:
                part.save_to_disk(tmp)
                os.replace(tmp, part_dirs[i])  # a part exists only once complete
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            del part
            _release_memory()  # keep the process's footprint at one shard, not the whole data set
    _barrier()
    if rank != 0:  # the main process publishes; the others read what it published
        _wait_for([os.path.join(path, CACHE_META)], f"the main process to publish {path}", wait_timeout)
        return load_cache(path, meta)
    _wait_for(part_dirs, "the other processes' parts", wait_timeout)
    write_json_atomic(os.path.join(partial, CACHE_META), {**meta, "files": _file_hashes(partial), "build": build})
    if os.path.exists(path):  # a concurrent writer finished first: check its cache as any other
        shutil.rmtree(partial, ignore_errors=True)
        return load_cache(path, meta)
    os.replace(partial, path)
    return load_cache(path, meta, verify_files=False)  # its files were hashed a moment ago
