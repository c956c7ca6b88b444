"""One checked path for every file the library reads back: JSON records, safetensors weights, torch pickles and
whole Trainer checkpoints. Damage (empty, truncated, wrong content) raises one :class:`DamagedFileError` naming the
file, what is wrong and how to recover, instead of the parser's own message."""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any

#: how to recover a damaged file, by its name (the default: :data:`RECOVER_DEFAULT`)
RECOVER = {
    "efficiency.json": "re-run `hf-distill bench` on the student folder",
    "distillation.json": "save the student again (trainer.save_student), or delete the file (the card then says "
                         "'not recorded')",
    "zoo_result.json": "delete the student's folder under the zoo's output_dir: the zoo trains it again",
    "zoo_key.json": "delete the student's folder under the zoo's output_dir: the zoo trains it again",
    "teacher.json": "delete it: the zoo benches the teacher again",
    "cascade.json": "re-run `hf-distill cascade`",
    "config.json": "save the model again with save_pretrained (or download it again)",
    "crf.json": "re-run `hf-distill export`",
    "model.onnx": "re-run `hf-distill export`",
    "model_quantized.onnx": "re-run `hf-distill export --quantize`",
    "tokenizer.json": "save the tokenizer again (tokenizer.save_pretrained)",
    "tokenizer_config.json": "save the tokenizer again (tokenizer.save_pretrained)",
    "model.safetensors": "save the model again with save_pretrained (or download it again)",
    "trainer_state.json": "CHECKPOINT",
    "hf_distill_state.json": "CHECKPOINT",
}
RECOVER_DEFAULT = "write it again with the command or call that made it"
#: a checkpoint's own files (and weights): recovering means going back one checkpoint
CHECKPOINT_FILES = ("trainer_state.json", "hf_distill_state.json", "optimizer.pt", "scheduler.pt", "rng_state.pth",
                    "scaler.pt", "model.safetensors", "pytorch_model.bin", "training_args.bin", "config.json")


class DamagedFileError(ValueError):
    """A file the library wrote (or reads) that is empty, truncated or holds something else."""


def _recovery(path: str, recover: str | None) -> str:
    how = recover or RECOVER.get(os.path.basename(path), RECOVER_DEFAULT)
    if how == "CHECKPOINT":
        return checkpoint_recovery(os.path.dirname(path))
    return how


def checkpoint_recovery(checkpoint: str) -> str:
    """What to do about a damaged checkpoint: delete it and resume from the one before (or start again)."""
    return (f"delete {checkpoint} and resume from the previous checkpoint (or start the run again without "
            "resume_from_checkpoint)")


def damaged(path: str | os.PathLike, what: str, recover: str | None = None) -> DamagedFileError:
    """The error for ``path``: ``"<path> is damaged (<what>): <how to recover>"``."""
    path = os.fspath(path)
    return DamagedFileError(f"{path} is damaged ({what}): {_recovery(path, recover)}")


def read_json(path: str | os.PathLike, recover: str | None = None, kind: type | None = dict) -> Any:
    """The JSON value in ``path`` (of type ``kind`` when given); raises :class:`DamagedFileError` for an empty file,
    invalid JSON or undecodable bytes, and ``FileNotFoundError`` when it is missing."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        raw = f.read()
    if not raw.strip():
        raise damaged(path, "empty file", recover)
    try:
        value = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise damaged(path, f"bytes that are not UTF-8 at offset {e.start}", recover) from None
    except json.JSONDecodeError as e:
        raise damaged(path, f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}", recover) from None
    if kind is not None and not isinstance(value, kind):
        raise damaged(path, f"a JSON {type(value).__name__} where a {kind.__name__} was expected", recover)
    return value


def check_safetensors(path: str | os.PathLike, recover: str | None = None) -> None:
    """Raise :class:`DamagedFileError` when ``path`` is not a complete safetensors file (header and data)."""
    from safetensors import safe_open

    path = os.fspath(path)
    if os.path.getsize(path) == 0:
        raise damaged(path, "empty file", recover)
    try:
        with safe_open(path, "pt") as f:
            f.keys()
    except Exception as e:  # safetensors raises its own error type for every kind of damage
        raise damaged(path, f"not a complete safetensors file: {e}", recover) from None


def check_torch_file(path: str | os.PathLike, recover: str | None = None) -> None:
    """Raise :class:`DamagedFileError` when ``path`` (``torch.save``'s zip format) is empty, truncated or altered
    (every member's CRC is checked; nothing is unpickled)."""
    path = os.fspath(path)
    if os.path.getsize(path) == 0:
        raise damaged(path, "empty file", recover)
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise damaged(path, f"not a complete torch.save file: {e}", recover) from None
    if bad is not None:
        raise damaged(path, f"member {bad} fails its checksum", recover)


def check_onnx(path: str | os.PathLike, recover: str | None = None) -> None:
    """Raise :class:`DamagedFileError` when ``path`` is not a parseable ONNX model."""
    import onnx

    path = os.fspath(path)
    if os.path.getsize(path) == 0:
        raise damaged(path, "empty file", recover)
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as e:  # protobuf's DecodeError and friends
        raise damaged(path, f"not a complete ONNX model: {type(e).__name__}", recover) from None
    if not model.graph.node:
        raise damaged(path, "an ONNX model without a graph", recover)


def check_model_folder(folder: str | os.PathLike) -> None:
    """Check the files ``from_pretrained`` and the ONNX runners read in a saved model folder (config, weights,
    tokenizer, ONNX files, CRF potentials) before any of them is loaded."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        return  # a Hub id: the Hub client checks its downloads
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isfile(path) and (name in ("config.json", "tokenizer.json", "tokenizer_config.json", "crf.json",
                                              "pytorch_model.bin")
                                     or name.endswith((".safetensors", ".onnx"))):
            check_file(path)


def check_file(path: str | os.PathLike, recover: str | None = None) -> None:
    """Check one file by its kind (``.json``, ``.safetensors``, ``.pt``/``.pth``/``.bin``); other kinds only for
    being empty."""
    path = os.fspath(path)
    if path.endswith(".json"):
        read_json(path, recover, kind=None)
    elif path.endswith(".safetensors"):
        check_safetensors(path, recover)
    elif path.endswith((".pt", ".pth", ".bin")):
        check_torch_file(path, recover)
    elif path.endswith(".onnx"):
        check_onnx(path, recover)
    elif os.path.getsize(path) == 0:
        raise damaged(path, "empty file", recover)


def check_checkpoint(checkpoint: str | os.PathLike) -> None:
    """Check every file of a Trainer checkpoint that resuming reads, before training starts; a damaged one raises
    :class:`DamagedFileError` naming it and saying to go back one checkpoint."""
    checkpoint = os.fspath(checkpoint)
    if not os.path.isdir(checkpoint):
        raise FileNotFoundError(f"checkpoint not found: {checkpoint}")
    how = checkpoint_recovery(checkpoint)
    for name in sorted(os.listdir(checkpoint)):
        path = os.path.join(checkpoint, name)
        if os.path.isfile(path) and (name in CHECKPOINT_FILES or name.endswith((".safetensors", ".pt", ".pth"))):
            check_file(path, how)
