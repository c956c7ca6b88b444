"""Two CPU processes (accelerate launch, gloo) give the metrics of one process with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "scripts" / "distill_run.py"


def _run(cmd, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "",
           "ACCELERATE_USE_CPU": "true"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=400, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.mark.slow
def test_two_processes_match_one(tmp_path, tokenizer_dir, data_dir):
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    _run([sys.executable, str(SCRIPT), str(tokenizer_dir), str(data_dir), str(one), "8"], tmp_path)
    _run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
          "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29517",
          str(SCRIPT), str(tokenizer_dir), str(data_dir), str(two), "4"], tmp_path)
    a, b = json.loads(one.read_text()), json.loads(two.read_text())
    assert (a["world_size"], b["world_size"]) == (1, 2)
    assert a["steps"] == b["steps"] == 24
    # same global batches, loss normalized over the global batch: equal up to float reduction order
    assert b["param_checksum"] == pytest.approx(a["param_checksum"], rel=1e-5)
    assert b["eval_loss"] == pytest.approx(a["eval_loss"], rel=1e-5)
    assert abs(b["eval_f1"] - a["eval_f1"]) <= 0.01
