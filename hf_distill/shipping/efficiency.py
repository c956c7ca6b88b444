"""Efficiency figures: parameters, FLOPs, file sizes, CPU latency and throughput, and the KD break-even point.

FLOPs are counted analytically on the shapes of a real forward pass: each matrix product counts
2 x multiply-accumulates (linear layers, convolutions, LSTM gates, attention scores and attention-
weighted values); element-wise work (biases, activations, norms, softmax) and embedding lookups count 0.
``torch.utils.flop_counter.FlopCounterMode`` misses CPU LSTMs and fused attention, hence the formulas.
"""

from __future__ import annotations

import inspect
import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..students.truncated import count_parameters

__all__ = [
    "break_even", "count_flops", "count_parameters", "file_sizes", "measure_latency", "measure_onnx_latency",
    "measure_throughput", "training_flops",
]


# ---------------------------------------------------------------- FLOPs
def _linear(module: nn.Linear, inputs, output) -> int:
    return 2 * output.numel() * module.in_features


def _conv(module: nn.Conv1d | nn.Conv2d, inputs, output) -> int:
    per_output = (module.in_channels // module.groups) * math.prod(module.kernel_size)
    return 2 * output.numel() * per_output


def _recurrent(module: nn.RNNBase, inputs, output) -> int:
    if getattr(module, "proj_size", 0):
        raise NotImplementedError("FLOPs of LSTMs with proj_size are not counted")
    x = inputs[0]
    if isinstance(x, nn.utils.rnn.PackedSequence):
        raise NotImplementedError("FLOPs of packed sequences are not counted; pass padded tensors")
    steps = x.shape[1] * x.shape[0] if x.dim() == 3 else x.shape[0]  # batch x time (batch_first or not)
    gates = {"LSTM": 4, "GRU": 3}.get(module.mode, 1)
    dirs = 2 if module.bidirectional else 1
    h = module.hidden_size
    total = 0
    for layer in range(module.num_layers):
        size = module.input_size if layer == 0 else h * dirs
        total += dirs * 2 * gates * h * (size + h) * steps
    return total


def _attention_width(module: nn.Module) -> int:
    """Query width: ``all_head_size`` (transformers BERT-likes) or a fused ``qkv`` projection (ours)."""
    if isinstance(getattr(module, "all_head_size", None), int):
        return module.all_head_size
    if isinstance(getattr(module, "qkv", None), nn.Linear):
        return module.qkv.out_features // 3
    raise NotImplementedError(f"cannot tell the attention width of {type(module).__name__}")


def _is_attention(module: nn.Module) -> bool:
    """Modules holding the two attention products (their projections are counted as ``nn.Linear``)."""
    name = type(module).__name__
    return name == "SelfAttentionBlock" or (name.endswith("SelfAttention") and "Output" not in name)


def count_flops(model: nn.Module, seq_len: int = 128, char_len: int = 15, batch: int = 1) -> dict[str, int]:
    """Inference FLOPs of one forward pass on ``batch`` examples of ``seq_len`` tokens (no padding).

    Word-character models get ``char_len`` characters per word. Returns the total and its split by
    kind (``linear``, ``conv``, ``recurrent``, ``attention``). Raises for a model whose own layers have
    no formula here (rather than under-count).
    """
    counts = {"linear": 0, "conv": 0, "recurrent": 0, "attention": 0}
    hooks = []

    def add(kind, fn):
        def hook(module, args, kwargs, output):
            x = args[0] if args else kwargs.get("hidden_states", kwargs.get("input"))
            out = output[0] if isinstance(output, tuple) else output
            if kind == "attention":
                length = x.shape[-2]
                counts[kind] += 2 * 2 * x.shape[0] * length * length * _attention_width(module)
            else:
                counts[kind] += fn(module, (x,), out)
        return hook

    for module in model.modules():
        if isinstance(module, nn.Linear):
            hooks.append(module.register_forward_hook(add("linear", _linear), with_kwargs=True))
        elif isinstance(module, (nn.Conv1d, nn.Conv2d)):
            hooks.append(module.register_forward_hook(add("conv", _conv), with_kwargs=True))
        elif isinstance(module, (nn.LSTM, nn.GRU, nn.RNN)):
            hooks.append(module.register_forward_hook(add("recurrent", _recurrent), with_kwargs=True))
        elif _is_attention(module):
            hooks.append(module.register_forward_hook(add("attention", None), with_kwargs=True))
        elif isinstance(module, (nn.MultiheadAttention, nn.Conv3d, nn.ConvTranspose1d, nn.Bilinear)):
            raise NotImplementedError(f"no FLOPs formula for {type(module).__name__}")
    try:
        with torch.inference_mode():
            model.eval()(**dummy_inputs(model, seq_len, char_len, batch))
    finally:
        for h in hooks:
            h.remove()
    return {"flops": sum(counts.values()), **counts}


def dummy_inputs(model: nn.Module, seq_len: int, char_len: int = 15, batch: int = 1) -> dict[str, torch.Tensor]:
    """Inputs of the given length with no padding, for the inputs ``model.forward`` accepts."""
    config = model.config
    token = 3 if getattr(config, "pad_token_id", None) == 2 else 2  # any id but padding
    inputs = {"input_ids": torch.full((batch, seq_len), token, dtype=torch.long),
              "attention_mask": torch.ones(batch, seq_len, dtype=torch.long)}
    accepted = inspect.signature(model.forward).parameters
    if "char_ids" in accepted:
        inputs["char_ids"] = torch.full((batch, seq_len, char_len), 2, dtype=torch.long)
    if "piece_ids" in accepted and getattr(config, "piece_vocab", None):
        inputs["piece_ids"] = torch.full((batch, seq_len, config.max_word_pieces), 2, dtype=torch.long)
    if "token_type_ids" in accepted:
        inputs["token_type_ids"] = torch.zeros(batch, seq_len, dtype=torch.long)
    return inputs


def training_flops(inference_flops: int, examples_seen: int) -> int:
    """Training cost estimate: forward + backward = 3 x inference FLOPs per example seen."""
    return 3 * inference_flops * examples_seen


def break_even(extra_cost: float, teacher_cost: float, student_cost: float) -> float:
    """Inferences after which serving the student repays ``extra_cost`` (same unit: FLOPs or seconds).

    ``extra_cost`` is what distillation costs beyond training the student alone (teacher fine-tuning
    and caching its outputs); each inference served by the student instead of the teacher saves
    ``teacher_cost - student_cost``. Infinite when the student is not cheaper.
    """
    saving = teacher_cost - student_cost
    return math.ceil(extra_cost / saving) if saving > 0 else math.inf


# ---------------------------------------------------------------- sizes
def file_sizes(model_dir: str | os.PathLike, onnx_dir: str | os.PathLike | None = None) -> dict[str, float | None]:
    """Megabytes of the weights (``*.safetensors``), ``model.onnx`` and ``model_quantized.onnx``; None if absent."""
    model_dir = Path(model_dir)
    onnx_dir = Path(onnx_dir) if onnx_dir is not None else model_dir

    def mb(path: Path) -> float | None:
        return path.stat().st_size / 2**20 if path.is_file() else None

    weights = sorted(model_dir.glob("*.safetensors"))
    return {"safetensors_mb": sum(mb(p) for p in weights) if weights else None,
            "onnx_mb": mb(onnx_dir / "model.onnx"), "onnx_int8_mb": mb(onnx_dir / "model_quantized.onnx")}


# ---------------------------------------------------------------- time
def _time_calls(call: Callable[[int], object], warmup: int, runs: int) -> list[float]:
    times = []
    for i in range(warmup + runs):
        start = time.perf_counter()
        call(i)
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1000)
    return times


def _summary(times: list[float], threads: int, runs: int) -> dict[str, float]:
    return {"latency_ms": statistics.mean(times), "latency_ms_median": statistics.median(times),
            "threads": threads, "runs": runs}


def measure_latency(
    model: nn.Module,
    examples: Sequence[dict],
    collate: Callable[[list[dict]], dict],
    inputs: Sequence[str] = ("input_ids", "attention_mask"),
    warmup: int = 10,
    runs: int = 100,
    threads: int | None = 1,
) -> dict[str, float]:
    """Mean and median milliseconds of one PyTorch forward pass on a single example (batch of one), on CPU.

    ``examples`` are dataset rows cycled through ``runs`` times after ``warmup`` passes; ``threads``
    fixes ``torch.set_num_threads`` for the measurement (restored afterwards) and is reported.
    """
    if not examples:
        raise ValueError("measure_latency needs at least one example")
    old = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    model.eval()
    batches = [{k: v for k, v in collate([ex]).items() if k in inputs} for ex in examples]
    try:
        with torch.inference_mode():
            times = _time_calls(lambda i: model(**batches[i % len(batches)]), warmup, runs)
    finally:
        torch.set_num_threads(old)
    return _summary(times, threads or old, runs)


def onnx_session(path: str | os.PathLike, threads: int = 1):
    """An onnxruntime CPU session with ``threads`` intra-op threads (and one inter-op thread)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_feeds(input_names: Sequence[str], batch: dict, add_batch_dim: bool = False) -> dict[str, np.ndarray]:
    """int64 arrays for an ONNX graph's inputs from a batch (tensors, arrays or lists; ``add_batch_dim`` for
    one example). A missing ``attention_mask`` is all ones, missing ``token_type_ids`` zeros; any other
    missing input raises."""
    feeds = {}
    for name in input_names:
        if name in batch:
            value = np.asarray(batch[name], dtype=np.int64)
            feeds[name] = value[None] if add_batch_dim else value
    defaults = {"attention_mask": np.ones_like, "token_type_ids": np.zeros_like}
    missing = [n for n in input_names if n not in feeds and n not in defaults]
    if missing:
        raise ValueError(f"the ONNX graph needs inputs {missing} that the batch lacks (has {sorted(batch)})")
    for name in input_names:
        if name not in feeds:
            feeds[name] = defaults[name](feeds["input_ids"])
    return feeds


def session_inputs(session) -> list[str]:
    return [i.name for i in session.get_inputs()]


def measure_onnx_latency(
    onnx_path: str | os.PathLike,
    examples: Sequence[dict],
    collate: Callable[[list[dict]], dict],
    warmup: int = 10,
    runs: int = 100,
    threads: int = 1,
) -> dict[str, float]:
    """Like :func:`measure_latency`, for an ONNX file run by onnxruntime with ``threads`` threads."""
    if not examples:
        raise ValueError("measure_onnx_latency needs at least one example")
    session = onnx_session(onnx_path, threads)
    feeds = [onnx_feeds(session_inputs(session), collate([ex])) for ex in examples]
    times = _time_calls(lambda i: session.run(None, feeds[i % len(feeds)]), warmup, runs)
    return _summary(times, threads, runs)


def measure_throughput(
    run: Callable[[dict], object],
    examples: Sequence[dict],
    collate: Callable[[list[dict]], dict],
    batch_size: int = 32,
    warmup_batches: int = 2,
) -> dict[str, float]:
    """Sentences per second of ``run(batch)`` over ``examples`` in padded batches of ``batch_size``."""
    batches = [collate(list(examples[i:i + batch_size])) for i in range(0, len(examples), batch_size)]
    for b in batches[:warmup_batches]:
        run(b)
    start = time.perf_counter()
    for b in batches:
        run(b)
    seconds = time.perf_counter() - start
    return {"sentences_per_s": len(examples) / seconds, "batch_size": batch_size, "sentences": len(examples)}
