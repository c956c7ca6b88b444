"""Efficiency figures: parameters, embedding share and CPU latency per example."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

import torch
from torch import nn

from .students.truncated import count_parameters

__all__ = ["count_parameters", "measure_latency"]


def measure_latency(
    model: nn.Module,
    examples: Sequence[dict],
    collate: Callable[[list[dict]], dict],
    inputs: Sequence[str] = ("input_ids", "attention_mask"),
    warmup: int = 10,
    runs: int = 100,
    threads: int | None = 1,
) -> dict[str, float]:
    """Mean and median milliseconds of one forward pass on a single example (batch of one), on CPU.

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
    times = []
    try:
        with torch.inference_mode():
            for i in range(warmup + runs):
                batch = batches[i % len(batches)]
                start = time.perf_counter()
                model(**batch)
                if i >= warmup:
                    times.append((time.perf_counter() - start) * 1000)
    finally:
        torch.set_num_threads(old)
    return {"latency_ms": statistics.mean(times), "latency_ms_median": statistics.median(times),
            "threads": threads or old, "runs": runs}
