"""Trimming a student's embedding table to the sub-words a data set uses (model surgery, not model code: saved
students rebuild the trimmed table from ``config.kept_tokens`` through :class:`~.common.TrimmedEmbedding`)."""

from __future__ import annotations

import torch
from transformers import PreTrainedModel

from .common import TrimmedEmbedding


def trim_vocabulary(model: PreTrainedModel, keep_ids, unk_token_id: int | None = None) -> int:
    """Keep embedding rows for ``keep_ids`` (plus padding and ``unk_token_id``) only, copying their current
    values (random or teacher initialization); the other ids will read the unknown token's row. Returns the
    number of rows kept; ``config.kept_tokens`` records it so ``from_pretrained`` rebuilds the same table."""
    old = model.get_input_embeddings()
    if isinstance(old, TrimmedEmbedding):
        raise ValueError("the embeddings are trimmed already")
    vocab_size = old.weight.shape[0]
    pad = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    first = [pad] + ([unk_token_id] if unk_token_id is not None and unk_token_id != pad else [])
    rest = sorted({int(i) for i in keep_ids} - set(first))
    bad = [i for i in rest[:1] + rest[-1:] if not 0 <= i < vocab_size]
    if bad:
        raise ValueError(f"trim_vocabulary: ids {bad} are outside the vocabulary of {vocab_size}")
    kept = torch.tensor(first + rest, dtype=torch.long)
    new = TrimmedEmbedding(vocab_size, len(kept), old.weight.shape[1]).to(old.weight.device)
    with torch.no_grad():
        new.weight.copy_(old.weight[kept])
        new.weight[0].zero_()
        new.kept_ids.copy_(kept)
        new.id_map.fill_(first.index(unk_token_id) if unk_token_id in first else 0)
        new.id_map[kept] = torch.arange(len(kept))
    new.weight.requires_grad_(old.weight.requires_grad)
    model.set_input_embeddings(new)
    model.config.kept_tokens = len(kept)
    return len(kept)
