"""How a teacher is run over padded batches: PyTorch, or its ONNX export checked against PyTorch."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

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

    from ..shipping.export import ONNX_FILE, export_onnx, quantize_dynamic

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
