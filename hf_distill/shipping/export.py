"""ONNX export of students and teachers with Optimum, validation against PyTorch, int8 quantization, and
onnxruntime inference (CRF students: emissions in the graph, Viterbi outside it in numpy).

Each registered student family gets an ``OnnxConfig`` built from its record (inputs, example inputs), registered
with Optimum's ``TasksManager``; BERT-like teachers use Optimum's own. Export goes through
``optimum.exporters.onnx.export`` with the config instance, since Optimum cannot infer the library of classes
defined outside ``transformers``.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from optimum.exporters.onnx import TextEncoderOnnxConfig, export
from optimum.exporters.tasks import TasksManager
from optimum.utils import NormalizedTextConfig
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoModelForTokenClassification

from ..base import CRF_FILE, task_of
from ..files import check_model_folder, read_json
from ..students import FAMILIES, StudentFamily, family_for_model_type  # importing registers the students
from .crf_decode import viterbi
from .efficiency import onnx_feeds

ONNX_FILE, QUANTIZED_FILE = "model.onnx", "model_quantized.onnx"
_AXES = {0: "batch_size", 1: "sequence_length"}
_register = TasksManager.create_register("onnx", overwrite_existing=True)


class ExportError(ValueError):
    """A model that cannot be exported, or an export that does not reproduce PyTorch."""


class _StudentOnnxConfig(TextEncoderOnnxConfig):
    """The ``OnnxConfig`` of a registered student family: the graph inputs its record names (each with batch and
    sequence axes), and its record's example inputs where they are not plain token ids."""

    NORMALIZED_CONFIG_CLASS = NormalizedTextConfig
    DEFAULT_ONNX_OPSET = 17
    FAMILY: StudentFamily | None = None

    @property
    def inputs(self) -> dict[str, dict[int, str]]:
        names = self.FAMILY.onnx_inputs
        if self.FAMILY.onnx_dummy is not None:  # optional inputs (pieces) only where this config reads them
            given = self.FAMILY.onnx_dummy(self._config)
            names = tuple(n for n in names if n in given)
        return {name: dict(_AXES) for name in names}

    def generate_dummy_inputs(self, framework: str = "pt", **kwargs):
        if self.FAMILY.onnx_dummy is not None:
            return self.FAMILY.onnx_dummy(self._config)
        return super().generate_dummy_inputs(framework, **kwargs)


_TASKS = {"token": "token-classification", "sequence": "text-classification"}


def register_onnx_config(family: StudentFamily) -> type:
    """Register (again) the Optimum ``OnnxConfig`` of a student family with ``TasksManager`` and return it."""
    cls = type(f"{family.config_class.__name__}OnnxConfig", (_StudentOnnxConfig,), {"FAMILY": family})
    _register(family.model_type, *(_TASKS[t] for t in family.models))(cls)
    return cls


for _family in FAMILIES.values():  # families registered later are added when first exported
    if _family.register_auto:
        register_onnx_config(_family)


def load_model(path: str):
    """A saved token or sequence classifier; a clear error for a folder that is not a model."""
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise ExportError(f"{path}: not a model folder (no config.json); pass a folder written by save_pretrained")
    check_model_folder(path)
    config = AutoConfig.from_pretrained(path)
    arch = (config.architectures or [""])[0]
    if not arch.endswith(("TokenClassification", "SequenceClassification")):
        raise ExportError(f"{path}: a {arch or 'model without a recorded architecture'}, not a token or sequence "
                          "classifier; fine-tune or distill it first (exporting it would invent a random head)")
    auto = AutoModelForSequenceClassification if "SequenceClassification" in arch else AutoModelForTokenClassification
    model, info = auto.from_pretrained(path, output_loading_info=True)
    if info.get("missing_keys"):
        raise ExportError(f"{path}: weights missing for {info['missing_keys'][:4]}: the saved model is incomplete")
    return model.eval()


def _task_of(model) -> str:
    try:
        return {"token": "token-classification", "sequence": "text-classification"}[task_of(model)]
    except ValueError:
        name = type(model).__name__
        raise ExportError(f"{name}: only token and sequence classification models are exported") from None


def onnx_config_for(model, task: str | None = None):
    """The Optimum ``OnnxConfig`` for a model (ours or a transformers architecture Optimum supports)."""
    config = getattr(model, "config", None)
    if config is None or not getattr(config, "model_type", None):
        raise ExportError(f"{type(model).__name__} has no transformers config: not an exportable model")
    task = task or _task_of(model)
    family = family_for_model_type(config.model_type)
    if family is not None:  # ours: built from its record (also a family registered after this module's import)
        return register_onnx_config(family)(config, task=task)
    try:
        constructor = TasksManager.get_exporter_config_constructor(
            "onnx", model_type=config.model_type, task=task, library_name="transformers")
    except (KeyError, ValueError) as e:
        supported = sorted(TasksManager.get_supported_model_type_for_task(task, exporter="onnx"))
        ours = [t for t in supported if t.startswith("hfd_")]
        raise ExportError(f"unsupported architecture {config.model_type!r} for {task} ONNX export; supported "
                          f"students: {ours}, and Optimum's transformers types such as bert ({e})") from None
    return constructor(config)


def export_onnx(
    model,
    output_dir: str,
    examples: Sequence[dict] | None = None,
    task: str | None = None,
    atol: float = 1e-4,
    quantize: bool = False,
    tokenizer=None,
) -> dict:
    """Export ``model`` (or a saved folder) to ``output_dir/model.onnx`` and check it against PyTorch.

    ``examples``: model-input dicts (one example each, e.g. tokenized real sentences of several lengths);
    each runs through PyTorch and onnxruntime and the largest absolute logit difference must stay within
    ``atol``, else :class:`ExportError`. A CRF head's parameters go to ``crf.json`` (Viterbi runs outside
    the graph). ``quantize`` adds a dynamic int8 ``model_quantized.onnx`` (Optimum's quantizer).
    """
    if isinstance(model, (str, os.PathLike)):
        model = load_model(str(model))
    # the exporter sets config fields (use_cache=False) and eval mode: the caller's model is given back as it
    # was, so a teacher exported for its cache keeps its fingerprint
    config = getattr(model, "config", None)
    config_state, was_training = copy.deepcopy(vars(config)) if config is not None else None, model.training
    try:
        return _export_checked(model.eval(), output_dir, examples, task, atol, quantize, tokenizer)
    finally:
        if config_state is not None:
            vars(config).clear()
            vars(config).update(config_state)
        model.train(was_training)


def _export_checked(model, output_dir, examples, task, atol, quantize, tokenizer) -> dict:
    onnx_config = onnx_config_for(model, task)
    final = Path(output_dir)
    final.parent.mkdir(parents=True, exist_ok=True)
    # everything is written and validated in a temporary folder, then swapped in: a failed or killed export
    # leaves the previous export as it was
    out = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        report = _export_into(model, onnx_config, out, examples, atol, quantize, tokenizer)
        _swap_in(out, final)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    for key in ("onnx_file", "onnx_int8_file"):
        if key in report:
            report[key] = str(final / Path(report[key]).name)
    return report


def _swap_in(new: Path, final: Path) -> None:
    """Replace ``final`` (a folder) by ``new``; the old folder is removed only once the new one is in place."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
    os.replace(new, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _export_into(model, onnx_config, out: Path, examples, atol: float, quantize: bool, tokenizer) -> dict:
    with torch.no_grad():
        export(model, onnx_config, out / ONNX_FILE, opset=onnx_config.DEFAULT_ONNX_OPSET)
    model.config.save_pretrained(out)
    if tokenizer is not None:
        tokenizer.save_pretrained(out)
    crf = getattr(model, "crf", None)
    if crf is not None:
        trans, start, end = (x.detach().cpu().tolist() for x in crf.potentials())
        (out / CRF_FILE).write_text(json.dumps({"transitions": trans, "start": start, "end": end}))
    report = {"onnx_file": str(out / ONNX_FILE), "inputs": list(onnx_config.inputs),
              "onnx_mb": os.path.getsize(out / ONNX_FILE) / 2**20}
    if examples:
        report["max_abs_diff"] = validate(model, out / ONNX_FILE, examples, list(onnx_config.inputs), atol)
    if quantize:
        report["onnx_int8_file"] = str(quantize_dynamic(out))
        report["onnx_int8_mb"] = os.path.getsize(out / QUANTIZED_FILE) / 2**20
    return report


def validate(model, onnx_path, examples: Sequence[dict], input_names: Sequence[str], atol: float = 1e-4) -> float:
    """Largest |PyTorch - onnxruntime| logit difference over ``examples``; raises above ``atol``."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for i, ex in enumerate(examples):
        feeds = onnx_feeds(input_names, ex, add_batch_dim=True)
        onnx_logits = session.run(["logits"], feeds)[0]
        with torch.no_grad():
            torch_logits = model(**{k: torch.from_numpy(v) for k, v in feeds.items()}).logits.numpy()
        diff = float(np.abs(onnx_logits - torch_logits).max())
        if diff > atol:
            raise ExportError(f"example {i} (length {feeds['input_ids'].shape[1]}): ONNX logits differ from "
                              f"PyTorch by {diff:.2e} > {atol:.0e}")
        worst = max(worst, diff)
    return worst


def quantize_dynamic(onnx_dir: Path) -> Path:
    """Dynamic int8 quantization of ``onnx_dir/model.onnx`` with Optimum's ``ORTQuantizer``."""
    import logging

    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    quantizer = ORTQuantizer.from_pretrained(str(onnx_dir), file_name=ONNX_FILE)
    qconfig = AutoQuantizationConfig.avx2(is_static=False, per_channel=False)
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))  # onnxruntime logs ~20 "Quantization parameters" lines per export
    try:
        quantizer.quantize(save_dir=str(onnx_dir), quantization_config=qconfig)
    finally:
        root.setLevel(level)
    return Path(onnx_dir) / QUANTIZED_FILE


class OnnxTagger:
    """onnxruntime inference for an exported token classifier; CRF students decode with numpy Viterbi."""

    def __init__(self, onnx_dir: str, quantized: bool = False):
        import onnxruntime as ort

        path = Path(onnx_dir) / (QUANTIZED_FILE if quantized else ONNX_FILE)
        if not path.is_file():
            raise ExportError(f"{path}: no exported model here")
        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        crf = Path(onnx_dir) / CRF_FILE
        self.crf = {k: np.asarray(v) for k, v in read_json(crf).items()} if crf.is_file() else None

    def logits(self, example: dict) -> np.ndarray:
        return self.session.run(["logits"], onnx_feeds(self.input_names, example, add_batch_dim=True))[0][0]

    def predict(self, example: dict, positions: Sequence[bool]) -> list[int]:
        """Label ids at ``positions`` (e.g. first sub-words): Viterbi through the CRF, else argmax."""
        emissions = self.logits(example)[np.asarray(positions, dtype=bool)]
        if self.crf is None:
            return emissions.argmax(-1).tolist()
        return viterbi(emissions, self.crf["transitions"], self.crf["start"], self.crf["end"])
