"""Teacher caches: run the teacher once over a tokenized dataset and keep its outputs as columns.

The build streams: rows are computed shard by shard (``shard_size`` rows) and each shard is written to disk
as soon as it is done, so memory does not grow with the data set. Shards are kept under
``cache_dir/<key>.partial/`` until the cache is published atomically under ``cache_dir/<key>``: a killed
build resumes with the shards it finished (and says how many rows it reused). Under ``accelerate launch``
(or any ``torch.distributed`` run, or ``RANK``/``WORLD_SIZE`` set) each process computes every N-th shard,
the main process publishes one cache and the others wait for it and read it: no row is computed twice.
``backend="onnxruntime"`` runs the teacher through its Optimum ONNX export (checked against PyTorch on a
sample first). Caches can be pushed to the Hub as dataset repositories and loaded by repo id; the checks of
:class:`~hf_distill.training.signals.CachedTeacher` and of :func:`load_cache` apply to them as to local ones.

Modules: ``runners`` (PyTorch and ONNX teacher runners), ``build`` (computing, sharding, publishing; the cache
record), ``store`` (loading and checking a published cache), ``transfer`` (sub-word outputs moved to words),
``hub`` (sharing on the Hub).
"""

from .build import cache_meta, cache_teacher_outputs
from .hub import load_cache_from_hub, push_cache_to_hub
from .runners import BACKENDS, CACHE_META
from .store import load_cache, remove_abandoned_temp_folders
from .transfer import transfer_teacher_cache

__all__ = [
    "BACKENDS", "CACHE_META", "cache_meta", "cache_teacher_outputs", "load_cache", "load_cache_from_hub",
    "push_cache_to_hub", "remove_abandoned_temp_folders", "transfer_teacher_cache",
]
