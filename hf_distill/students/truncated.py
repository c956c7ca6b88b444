"""Students of the teacher's own class built from a subset of its layers (Lin et al.; DistilBERT)."""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence

from torch import nn
from transformers import PreTrainedModel

_LAYER_KEY = re.compile(r"^(?P<prefix>.*\.(?:layer|layers))\.(?P<index>\d+)\.(?P<rest>.*)$")


def student_from_teacher(teacher: PreTrainedModel, layers: Sequence[int]) -> PreTrainedModel:
    """A model of ``teacher``'s class with ``len(layers)`` layers copied from the chosen teacher layers.

    Embeddings, pooler and head are copied too. ``layers=[0, 1]`` keeps the first two layers (Lin et al.);
    ``layers=[0, 2, 4]`` every other layer (DistilBERT).
    """
    config = teacher.config
    n = config.num_hidden_layers
    layers = list(layers)
    if not layers:
        raise ValueError("layers must name at least one teacher layer")
    bad = [i for i in layers if not 0 <= i < n]
    if bad:
        raise ValueError(f"teacher has {n} layers (0..{n - 1}); cannot take layers {bad}")
    student_config = copy.deepcopy(config)
    student_config.num_hidden_layers = len(layers)
    student = type(teacher)(student_config)
    source = teacher.state_dict()
    target = {}
    remap = {t: s for s, t in enumerate(layers)}
    for key, value in source.items():
        m = _LAYER_KEY.match(key)
        if m is None:
            target[key] = value.clone()
        elif int(m["index"]) in remap:
            target[f"{m['prefix']}.{remap[int(m['index'])]}.{m['rest']}"] = value.clone()
    missing, unexpected = student.load_state_dict(target, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise ValueError(f"could not map teacher weights onto the student: missing {missing}, unexpected {unexpected}")
    return student


def freeze_word_embeddings(model: nn.Module, freeze: bool = True) -> int:
    """With ``freeze``, stop training ``model``'s word-embedding table; returns its trainable parameter count.

    The table of a BERT-like student copied from its teacher holds most of its weights (11.9M of 15.5M for two
    MiniLM layers): updating it is a large share of a CPU training step, and it already holds the teacher's
    word knowledge.
    """
    if freeze:
        model.get_input_embeddings().weight.requires_grad_(False)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_parameters(model: nn.Module) -> dict[str, float]:
    """Total parameters and the share held by embedding tables."""
    total = sum(p.numel() for p in model.parameters())
    emb = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Embedding))
    return {"params": total, "embedding_params": emb, "embedding_share": emb / total if total else 0.0}
