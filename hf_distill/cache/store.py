"""Reading a published cache back: its record and file hashes checked; abandoned temporary folders removed."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil

import datasets

from ..training.signals import (
    StaleTeacherCacheError,
)
from .runners import CACHE_META

logger = logging.getLogger(__name__)

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
