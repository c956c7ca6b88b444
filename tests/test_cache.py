"""The teacher cache at scale: streamed shards, resume after a kill, processes sharing the work, the ONNX
Runtime teacher, and caches shared through a Hub dataset repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import HUB_TOKEN, tiny_bert

from hf_distill.cache import build as cache_mod
from hf_distill.cache import cache_teacher_outputs, load_cache_from_hub, push_cache_to_hub
from hf_distill.training.signals import StaleTeacherCacheError

SCRIPT = Path(__file__).parent / "scripts" / "cache_build.py"


@pytest.fixture(scope="module")
def teacher(tokenizer):
    return tiny_bert(len(tokenizer), layers=1, hidden=16, seed=21).eval()


@pytest.fixture(scope="module")
def rows(tokenized):
    return tokenized["train"].select(range(30))


def _same(a, b, columns=("teacher_logits", "teacher_input_hash", "teacher_id", "teacher_label_map", "input_ids")):
    for c in columns:
        assert a[c] == b[c], c


def test_streamed_shards_equal_the_one_pass_build(tmp_path, teacher, rows, tokenizer):
    one = cache_teacher_outputs(teacher, rows, shard_size=1000, tokenizer=tokenizer)
    streamed = cache_teacher_outputs(teacher, rows, shard_size=7, cache_dir=str(tmp_path), tokenizer=tokenizer)
    _same(one, streamed)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []  # shards removed once published


def test_a_killed_build_resumes_from_its_finished_shards(tmp_path, teacher, rows, tokenizer, monkeypatch, caplog):
    real = cache_mod._shard_columns
    calls = []

    def dies_on_the_third(*a, **k):
        calls.append(a[3])
        if len(calls) == 3:
            raise KeyboardInterrupt("killed")
        return real(*a, **k)

    monkeypatch.setattr(cache_mod, "_shard_columns", dies_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        cache_teacher_outputs(teacher, rows, shard_size=7, cache_dir=str(tmp_path), tokenizer=tokenizer)
    (partial,) = [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]
    assert len([p for p in partial.iterdir() if p.name.startswith("part-")]) == 2
    monkeypatch.setattr(cache_mod, "_shard_columns", real)
    counted = []
    monkeypatch.setattr(cache_mod, "_shard_columns", lambda *a, **k: counted.append(a[3]) or real(*a, **k))
    with caplog.at_level("INFO", logger="hf_distill.cache"):
        resumed = cache_teacher_outputs(teacher, rows, shard_size=7, cache_dir=str(tmp_path), tokenizer=tokenizer)
    assert counted == [14, 21, 28]  # shards 0-6 and 7-13 were reused
    assert "reusing 14 rows from finished shards" in caplog.text
    _same(resumed, cache_teacher_outputs(teacher, rows, tokenizer=tokenizer))


@pytest.mark.slow
def test_two_gloo_processes_build_the_single_process_cache(tmp_path, teacher, rows, tokenizer):
    teacher.save_pretrained(tmp_path / "teacher")
    tokenizer.save_pretrained(tmp_path / "teacher")
    rows.save_to_disk(str(tmp_path / "rows"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29531",
           "WORLD_SIZE": "2", "HF_HUB_OFFLINE": "1"}
    args = [str(tmp_path / "teacher"), str(tmp_path / "rows"), str(tmp_path / "two"), str(tmp_path / "two.json"),
            "--init-gloo"]
    procs = [subprocess.Popen([sys.executable, str(SCRIPT), *args], env={**env, "RANK": str(r)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    single = subprocess.run([sys.executable, str(SCRIPT), *args[:2], str(tmp_path / "one"), str(tmp_path / "one.json")],
                            env={**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}, capture_output=True,
                            text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]
    one = json.loads((tmp_path / "one.json.0").read_text())
    for r in (0, 1):
        two = json.loads((tmp_path / f"two.json.{r}").read_text())
        assert two["rows"] == one["rows"] == 30 and two["hashes"] == one["hashes"] and two["logits"] == one["logits"]
    # one published cache, with the same data files as the single-process build
    (a,) = [p for p in (tmp_path / "one").iterdir() if not p.name.startswith(".")]
    (b,) = [p for p in (tmp_path / "two").iterdir() if not p.name.startswith(".")]
    meta = [json.loads((p / "hf_distill_cache.json").read_text())["files"] for p in (a, b)]
    assert a.name == b.name and meta[0] == meta[1]


def test_onnx_runtime_teacher_gives_the_same_cache(teacher, rows, tokenizer):
    torch_cache = cache_teacher_outputs(teacher, rows, dtype="float32", tokenizer=tokenizer)
    onnx_cache = cache_teacher_outputs(teacher, rows, dtype="float32", tokenizer=tokenizer, backend="onnxruntime")
    diff = max(float(np.abs(np.asarray(a) - np.asarray(b)).max())
               for a, b in zip(torch_cache["teacher_logits"], onnx_cache["teacher_logits"]))
    assert diff < 1e-4
    with pytest.raises(ValueError, match="backend="):
        cache_teacher_outputs(teacher, rows, backend="tensorrt")


def test_int8_onnx_teacher_is_checked_on_label_agreement_and_keyed_apart(tmp_path, teacher, rows, tokenizer):
    import json

    torch_cache = cache_teacher_outputs(teacher, rows, dtype="float32", tokenizer=tokenizer)
    int8 = cache_teacher_outputs(teacher, rows, dtype="float32", tokenizer=tokenizer, backend="onnxruntime-int8",
                                 cache_dir=str(tmp_path), onnx_min_agreement=0.5)
    real = [np.asarray(m, dtype=bool) for m in rows["attention_mask"]]
    agree = np.mean(np.concatenate([(np.asarray(a)[m].argmax(-1) == np.asarray(b)[m].argmax(-1))
                                    for a, b, m in zip(torch_cache["teacher_logits"], int8["teacher_logits"], real)]))
    assert agree >= 0.5
    (folder,) = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    meta = json.loads((folder / "hf_distill_cache.json").read_text())
    assert meta["backend"] == "onnxruntime-int8" and 0.5 <= meta["build"]["onnx_argmax_agreement"] <= 1.0
    # another backend is another cache: the int8 one is never reused for a PyTorch request
    cache_teacher_outputs(teacher, rows, dtype="float32", tokenizer=tokenizer, cache_dir=str(tmp_path))
    assert len([p for p in tmp_path.iterdir() if not p.name.startswith(".")]) == 2
    with pytest.raises(ValueError, match="keeps PyTorch's label"):
        cache_teacher_outputs(teacher, rows, tokenizer=tokenizer, backend="onnxruntime-int8", onnx_min_agreement=1.01)


def test_a_pushed_cache_loads_by_repo_id_and_refuses_another_teacher(tmp_path, teacher, rows, tokenizer, hub):
    cache_teacher_outputs(teacher, rows, cache_dir=str(tmp_path / "c"), tokenizer=tokenizer)
    (folder,) = [p for p in (tmp_path / "c").iterdir() if not p.name.startswith(".")]
    push_cache_to_hub(str(folder), "org/teacher-cache", token=HUB_TOKEN, endpoint=hub.endpoint)
    assert "datasets/org/teacher-cache" in hub.repos
    files = hub.repos["datasets/org/teacher-cache"].commits[-1][1]
    assert "hf_distill_cache.json" in files and not any(HUB_TOKEN.encode() in v for v in files.values())
    loaded = load_cache_from_hub("org/teacher-cache", teacher, rows, tokenizer=tokenizer, token=HUB_TOKEN,
                                 endpoint=hub.endpoint, cache_dir=str(tmp_path / "dl"))
    _same(loaded, cache_teacher_outputs(teacher, rows, tokenizer=tokenizer))
    other = tiny_bert(len(tokenizer), layers=1, hidden=16, seed=22)
    with pytest.raises(StaleTeacherCacheError, match="other settings"):
        load_cache_from_hub("org/teacher-cache", other, rows, tokenizer=tokenizer, token=HUB_TOKEN,
                            endpoint=hub.endpoint, cache_dir=str(tmp_path / "dl"))
