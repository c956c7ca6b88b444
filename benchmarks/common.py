"""What the benchmark scripts share: where results go, the demo recipe they build on, the default teacher."""

from __future__ import annotations

import os

from hf_distill.base import default_teacher_path  # noqa: F401  (re-exported for the benchmarks)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")


def study_dir(name: str) -> str:
    """``benchmarks/results/<name>/``, the folder of one study (its summary ``.md``/``.json`` and ``runs/``)."""
    return os.path.join(RESULTS, name)


def speed_cpu_flags() -> list[str]:
    """The CPU flags that decide bf16 and vector speed, for the benchmark reports."""
    from hf_distill.training.args import cpu_flags

    return sorted(f for f in cpu_flags() if f in ("avx512_bf16", "amx_bf16", "amx_tile", "avx512f", "avx2"))


def load_demo():
    """The demo (``hf_distill.demo``): benchmarks run its phases."""
    from hf_distill.cli import load_demo as load

    return load()
