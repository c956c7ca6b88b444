"""Options of the ``hf-distill`` sub-commands, one dataclass each (parsed by ``HfArgumentParser``, so a
JSON or YAML file works too). This module imports nothing heavy: ``hf-distill --help`` reads it."""

from __future__ import annotations

from dataclasses import dataclass, field


def _opt(help_text: str, default=None, **kw):
    return field(default=default, metadata={"help": help_text, **kw})


@dataclass
class DataOptions:
    """Which rows a command evaluates on."""

    dataset: str | None = _opt("Registered dataset name or local folder (default: the one in distillation.json).")
    split: str = _opt("Split to evaluate on.", "test")
    data_dir: str | None = _opt("Data root for registered datasets (default: $HF_DISTILL_DATA_DIR).")
    max_eval_samples: int | None = _opt("Evaluate on the first N rows only (default: all rows).")


@dataclass
class ExportArguments(DataOptions):
    """hf-distill export MODEL_DIR: ONNX export validated against PyTorch on real sentences."""

    model_dir: str = _opt("Folder of a saved student or teacher (save_pretrained / save_student).", "")
    output_dir: str | None = _opt("Where the ONNX files go (default: MODEL_DIR/onnx); replaced atomically.")
    quantize: bool = _opt("Also write a dynamic int8 model_quantized.onnx.", False)

    positional = ("model_dir",)


@dataclass
class BenchArguments(DataOptions):
    """hf-distill bench MODEL_DIR: quality, FLOPs, sizes and latency of a student (and its teacher)."""

    model_dir: str = _opt("Folder of a saved student.", "")
    teacher: str | None = _opt("Teacher folder (default: the one recorded in distillation.json).")
    threads: int = _opt("Torch and onnxruntime threads while timing.", 1)
    runs: int = _opt("Single-sentence forward passes timed per model.", 100)
    no_quantize: bool = _opt("Skip the int8 ONNX model.", False)
    teacher_epochs: float | None = _opt("The teacher's fine-tuning epochs, for the break-even point.")

    positional = ("model_dir",)


@dataclass
class CardArguments:
    """hf-distill card MODEL_DIR: write README.md from efficiency.json and distillation.json."""

    model_dir: str = _opt("Folder of a benched student.", "")
    repo_id: str | None = _opt("The Hub id the card names (default: the folder name).")
    base_model: str | None = _opt("The teacher's Hub id (default: the recorded teacher when it is a Hub id).")
    overwrite: bool = _opt("Replace a README.md written or edited by hand (kept as README.md.bak).", False)

    positional = ("model_dir",)


@dataclass
class PushArguments:
    """hf-distill push MODEL_DIR REPO_ID: upload a student folder in one commit."""

    model_dir: str = _opt("Folder of a benched student.", "")
    repo_id: str = _opt("Hub repository id, e.g. my-org/bilstm-conll2003.", "")
    endpoint: str | None = _opt("Hub endpoint (default: $HF_ENDPOINT or huggingface.co).")
    private: bool = _opt("Create the repository as private.", False)
    no_card: bool = _opt("Upload README.md as it is instead of writing the card.", False)
    overwrite: bool = _opt("Replace a README.md written or edited by hand (kept as README.md.bak).", False)
    base_model: str | None = _opt("The teacher's Hub id for the card's metadata.")
    commit_message: str = _opt("Commit message.", "Upload distilled student (hf-distill)")

    positional = ("model_dir", "repo_id")
