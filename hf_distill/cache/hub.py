"""Sharing caches on the Hub as dataset repositories, checked on load like local ones."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import datasets

from .build import _check_hidden_layers, cache_meta, recorded_tokenizer
from .store import load_cache

logger = logging.getLogger(__name__)

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
    tokenizer = recorded_tokenizer(teacher, dataset, tokenizer)  # as the build recorded it
    return load_cache(folder, cache_meta(teacher, dataset, dtype, top_k, tokenizer, backend, hidden_layers=layers))
