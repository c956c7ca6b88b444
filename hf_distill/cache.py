"""Teacher caches: run the teacher once over a tokenized dataset and keep its outputs as columns.

The build streams: rows are computed shard by shard (``shard_size`` rows) and each shard is written to disk
as soon as it is done, so memory does not grow with the data set. Shards are kept under
``cache_dir/<key>.partial/`` until the cache is published atomically under ``cache_dir/<key>``: a killed
build resumes with the shards it finished (and says how many rows it reused). Under ``accelerate launch``
(or any ``torch.distributed`` run, or ``RANK``/``WORLD_SIZE`` set) each process computes every N-th shard,
the main process publishes one cache and the others wait for it and read it: no row is computed twice.
``backend="onnxruntime"`` runs the teacher through its Optimum ONNX export (checked against PyTorch on a
sample first). Caches can be pushed to the Hub as dataset repositories and loaded by repo id; the checks of
:class:`~hf_distill.signals.CachedTeacher` and of :func:`load_cache` apply to them as to local ones.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import datasets
import numpy as np
import torch

from .base import write_json_atomic
from .signals import (
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
    UNKNOWN,
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

logger = logging.getLogger(__name__)

CACHE_META = "hf_distill_cache.json"
BACKENDS = ("torch", "onnxruntime", "onnxruntime-int8")
#: rows per onnxruntime call (measured on CPU, one thread: 8 beat 1 and 64)
ONNX_BATCH = 8


def _pad_batch(rows: list[dict], keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    length = max(len(r["input_ids"]) for r in rows)
    out = {}
    for k in keys:
        arr = np.zeros((len(rows), length), dtype=np.int64)
        for i, r in enumerate(rows):
            arr[i, : len(r[k])] = r[k]
        out[k] = arr
    return out


# --------------------------------------------------------------------------------- teacher runners
def _torch_runner(teacher, device, hidden_layers: tuple[int, ...] = ()):
    """Logits of a padded batch; with ``hidden_layers``, ``(logits, {layer: hidden states})``."""
    device = device or next(teacher.parameters()).device
    teacher.eval().to(device)

    def run(batch: dict[str, np.ndarray]):
        with torch.no_grad():
            out = teacher(**{k: torch.from_numpy(v).to(device) for k, v in batch.items()},
                          output_hidden_states=bool(hidden_layers))
        logits = out.logits.float().cpu().numpy()
        if not hidden_layers:
            return logits
        return logits, {layer: out.hidden_states[layer].float().cpu().numpy() for layer in hidden_layers}

    return run


def _optimized(folder: str, file_name: str) -> str:
    """The export with Optimum's graph fusions (level 2: attention, GELU, layer norm) where the architecture
    supports them, else the plain export."""
    try:
        from optimum.onnxruntime import ORTOptimizer
        from optimum.onnxruntime.configuration import OptimizationConfig

        out = os.path.join(folder, "optimized")
        ORTOptimizer.from_pretrained(folder, file_names=[file_name]).optimize(
            save_dir=out, optimization_config=OptimizationConfig(optimization_level=2))
        return next(os.path.join(out, f) for f in sorted(os.listdir(out)) if f.endswith(".onnx"))
    except Exception as e:  # an architecture Optimum cannot fuse: the plain graph is still exact
        logger.info("no ONNX graph fusions for this teacher (%s): using the plain export", e)
        return os.path.join(folder, file_name)


def _onnx_runner(teacher, sample: list[dict], keys: tuple[str, ...], atol: float, quantized: bool = False,
                 min_agreement: float = 0.99):
    """An onnxruntime session over the teacher's Optimum export, checked against PyTorch on ``sample``.

    fp32 (graph fusions): refused when a logit differs by more than ``atol``. int8 (dynamic quantization, a
    changed teacher): refused when fewer than ``min_agreement`` of the real positions keep PyTorch's argmax.
    Returns ``(run, {"onnx_max_abs_diff", "onnx_argmax_agreement"})``."""
    import onnxruntime as ort

    from .export import ONNX_FILE, export_onnx, quantize_dynamic

    folder = tempfile.mkdtemp(prefix="hf_distill_onnx_teacher_")
    try:
        export_onnx(teacher, folder)
        graph = str(quantize_dynamic(Path(folder))) if quantized else _optimized(folder, ONNX_FILE)
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    names = {i.name for i in session.get_inputs()}

    def run(batch: dict[str, np.ndarray]) -> np.ndarray:
        feeds = {k: v for k, v in batch.items() if k in names}
        if "token_type_ids" in names and "token_type_ids" not in feeds:
            feeds["token_type_ids"] = np.zeros_like(batch["input_ids"])
        return session.run(["logits"], feeds)[0].astype(np.float32)

    reference = _torch_runner(teacher, None)
    worst, same, total = 0.0, 0, 0
    for start in range(0, len(sample), 8):
        batch = _pad_batch(sample[start : start + 8], keys)
        got, want = run(batch), reference(batch)
        real = batch["attention_mask"].astype(bool) if got.ndim == 3 else np.ones(len(got), dtype=bool)
        worst = max(worst, float(np.abs(got - want)[real].max()))
        same += int((got.argmax(-1) == want.argmax(-1))[real].sum())
        total += int(real.sum())
    check = {"onnx_max_abs_diff": worst, "onnx_argmax_agreement": same / max(total, 1)}
    if not quantized and worst > atol:
        raise ValueError(f"the ONNX Runtime teacher's logits differ from PyTorch's by {worst:.2e} > {atol:.0e} on "
                         f"{len(sample)} sample rows: use backend='torch'")
    if quantized and check["onnx_argmax_agreement"] < min_agreement:
        raise ValueError(f"the int8 ONNX Runtime teacher keeps PyTorch's label at {check['onnx_argmax_agreement']:.2%}"
                         f" of {total} sample positions < {min_agreement:.0%}: use backend='onnxruntime' or 'torch'")
    logger.info("ONNX Runtime teacher%s: max |ONNX - PyTorch| = %.2e, argmax agreement %.2f%% on %d sample rows",
                " (int8)" if quantized else "", worst, 100 * check["onnx_argmax_agreement"], len(sample))
    return run, check


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


def _file_hashes(folder: str) -> dict[str, str]:
    """blake2b of every data file under ``folder`` (relative paths; the metadata file and temp folders aside)."""
    out = {}
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            full = os.path.join(root, name)
            rel = os.path.relpath(full, folder)
            if rel == CACHE_META or name.endswith(".tmp"):
                continue
            h = hashlib.blake2b(digest_size=16)
            with open(full, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            out[rel] = h.hexdigest()
    return out


def load_cache(path: str, meta: dict | None = None, verify_files: bool = True) -> datasets.Dataset:
    """Load a saved teacher cache after checking it: metadata readable (and equal to ``meta`` when given),
    every data file present and unchanged (``verify_files``), the row count as recorded. Damage raises
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
    if isinstance(saved, dict):
        saved.pop("build", None)  # how it was built (rows reused, ONNX difference): not part of the key
    if meta is not None and saved != meta:
        raise StaleTeacherCacheError(f"{meta_path}: the cache was written for other settings than its key says "
                                     f"({saved} vs {meta}); {fix}")
    if not files:
        raise StaleTeacherCacheError(f"{meta_path}: no file hashes recorded (written by an older version); {fix}")
    got = _file_hashes(path) if verify_files else files
    changed = sorted(n for n in files if got.get(n) != files[n])
    if changed:
        raise StaleTeacherCacheError(f"{path}: damaged cache, {', '.join(changed)} missing or changed since it "
                                     f"was written; {fix}")
    try:
        parts = sorted(d for d in os.listdir(path) if d.startswith("part-"))
        loaded = (datasets.concatenate_datasets([datasets.load_from_disk(os.path.join(path, d)) for d in parts])
                  if parts else datasets.load_from_disk(path))
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
    # whole columns read once (indexing a lazy column row by row costs an Arrow lookup per row)
    sub_ids, sub_hash, src_text = list(cached["input_ids"]), list(cached[CACHE_INPUT_HASH]), list(cached[key])
    logits, teacher_ids = list(cached[CACHE_LOGITS]), list(cached[CACHE_TEACHER_ID])
    label_maps = list(cached[CACHE_LABEL_MAP]) if CACHE_LABEL_MAP in cached.column_names else [UNKNOWN] * len(cached)
    masks = list(cached["distill_mask"]) if level == "word" else None

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
    # the fingerprint from the inputs' own: hashing ``move`` would pickle its closure, every row's logits
    fingerprint = hashlib.sha256(f"transfer_teacher_cache/1|{getattr(cached, '_fingerprint', '')}|"
                                 f"{getattr(student, '_fingerprint', '')}|{level}".encode()).hexdigest()[:32]
    return student.map(move, with_indices=True, features=features, desc="transfer teacher cache",
                       new_fingerprint=fingerprint)


# ------------------------------------------------------------------------------- sharing on the Hub
def push_cache_to_hub(path: str, repo_id: str, *, token: str | None = None, endpoint: str | None = None,
                      private: bool | None = None, commit_message: str = "Upload teacher cache (hf-distill)"):
    """Upload a published cache folder as a Hub dataset repository (checked first: a damaged cache is never
    shared). Returns the ``CommitInfo``."""
    from huggingface_hub import HfApi

    load_cache(path)
    api = HfApi(endpoint=endpoint, token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    return api.upload_folder(folder_path=path, repo_id=repo_id, repo_type="dataset", commit_message=commit_message,
                             ignore_patterns=["*.tmp", ".*"])


def load_cache_from_hub(repo_id: str, teacher, dataset: datasets.Dataset, *, dtype: str = "float16",
                        top_k: int | None = None, tokenizer=None, backend: str = "torch", revision: str | None = None,
                        token: str | None = None, endpoint: str | None = None,
                        cache_dir: str | None = None,
                        hidden_layers: Sequence[int] | None = None) -> datasets.Dataset:
    """Download a cache pushed with :func:`push_cache_to_hub` and check it as a local one: it must have been
    built by this teacher (weights, labels), with this tokenizer, on these rows and options (``hidden_layers``
    included: a cache with hidden states is matched only when they are asked for)."""
    from huggingface_hub import snapshot_download

    folder = snapshot_download(repo_id, repo_type="dataset", revision=revision, token=token, endpoint=endpoint,
                               cache_dir=cache_dir)
    layers = _check_hidden_layers(teacher, hidden_layers, backend)
    return load_cache(folder, cache_meta(teacher, dataset, dtype, top_k, tokenizer, backend, hidden_layers=layers))
