"""Kill and resume: a sharded teacher-cache build and a zoo run (tiny random teacher, a slice of real CoNLL-2003) are
killed with SIGKILL at seeded random points, run again with the same command, and compared with an uninterrupted
run. Writes ``benchmarks/results/reliability/kill_resume.json`` (read by ``benchmarks/reliability.py``).

    HF_DISTILL_DATA_DIR=../shared/data python benchmarks/kill_resume.py [--points 10]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

from common import ROOT, study_dir

from hf_distill.base import write_json_atomic

RESULTS = study_dir("reliability")  # this study's folder under benchmarks/results/

CACHE_SCRIPT = """
import json, sys
import datasets, numpy as np, torch
from transformers import AutoModelForTokenClassification, AutoTokenizer
from hf_distill.cache import cache_teacher_outputs
teacher_dir, rows_dir, cache_dir, out = sys.argv[1:5]
torch.set_num_threads(1)
teacher = AutoModelForTokenClassification.from_pretrained(teacher_dir).eval()
rows = datasets.load_from_disk(rows_dir)
cached = cache_teacher_outputs(teacher, rows, cache_dir=cache_dir, tokenizer=AutoTokenizer.from_pretrained(teacher_dir),
                               shard_size=25, batch_size=5)
with open(out, "w") as f:
    json.dump({"rows": len(cached), "hashes": [int(x) for x in cached["teacher_input_hash"]],
               "logits": float(sum(np.asarray(r, dtype=np.float64).sum() for r in cached["teacher_logits"]))}, f)
"""


def env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": ROOT}


def make_inputs(work: str) -> tuple[str, str]:
    """A tiny random BERT teacher (its tokenizer: the all-MiniLM-L6-v2 vocabulary when installed, else a word list)
    and 400 tokenized CoNLL-2003 training rows."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForTokenClassification

    from hf_distill import load_dataset, tokenize_and_align
    from hf_distill.base import default_teacher_path

    data = load_dataset("conll2003")
    labels = data["train"].features["ner_tags"].feature.names
    tokenizer = AutoTokenizer.from_pretrained(default_teacher_path())
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, num_labels=len(labels), id2label=dict(enumerate(labels)),
                        label2id={n: i for i, n in enumerate(labels)})
    teacher = os.path.join(work, "teacher")
    BertForTokenClassification(config).save_pretrained(teacher)
    tokenizer.save_pretrained(teacher)
    rows = os.path.join(work, "rows")
    tokenize_and_align(data["train"].select(range(400)), tokenizer).save_to_disk(rows)
    return teacher, rows


def run(cmd: list[str], kill_after: float | None = None, log: str | None = None) -> tuple[int, float]:
    """Run ``cmd``; with ``kill_after``, SIGKILL it after that many seconds. Returns (exit code, seconds)."""
    start = time.perf_counter()
    with open(log or os.devnull, "a") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env(), stdout=out, stderr=subprocess.STDOUT)
        try:
            code = proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            code = proc.wait()
    return code, time.perf_counter() - start


def zoo_cmd(teacher: str, out: str) -> list[str]:
    return [sys.executable, "-m", "hf_distill.cli", "zoo", "--teacher", teacher, "--output_dir", out,
            "--students", "window", 'lstm=bilstm:{"embedding_dim": 16, "hidden_size": 16}@1e-2',
            "--max_train_samples", "200", "--max_dev_samples", "60", "--max_eval_samples", "60", "--epochs", "4",
            "--patience", "4", "--bench_runs", "3", "--quantize", "false", "--augment_copies", "1"]


def zoo_outcome(out: str) -> dict:
    with open(os.path.join(out, "zoo.json")) as f:
        saved = json.load(f)
    return {r["name"]: {"f1": round(r["f1"], 6), "best_dev_f1": round(r["best_dev_f1"] or 0, 6),
                        "epochs": r["epochs_run"]} for r in saved["students"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    opts = parser.parse_args()
    rng = random.Random(opts.seed)
    results = {"command": "HF_DISTILL_DATA_DIR=../shared/data python benchmarks/kill_resume.py"
                          + (f" --points {opts.points}" if opts.points != 10 else ""), "cache": [], "zoo": []}
    with tempfile.TemporaryDirectory() as work:
        teacher, rows = make_inputs(work)
        script = os.path.join(work, "build.py")
        with open(script, "w") as f:
            f.write(CACHE_SCRIPT)
        log = os.path.join(work, "log.txt")

        def cache(folder, kill_after=None):
            return run([sys.executable, script, teacher, rows, os.path.join(work, folder),
                        os.path.join(work, folder + ".json")], kill_after, log)

        _, full = cache("cache_ref")
        with open(os.path.join(work, "cache_ref.json")) as f:
            reference = json.load(f)
        for i in range(opts.points):
            at = rng.uniform(0.2, 1.0) * full
            code, _ = cache(f"cache_{i}", at)
            cache(f"cache_{i}")
            with open(os.path.join(work, f"cache_{i}.json")) as f:
                got = json.load(f)
            same = got["hashes"] == reference["hashes"] and abs(got["logits"] - reference["logits"]) < 1e-6
            results["cache"].append({"kill_after_s": round(at, 2), "killed": code != 0, "same_as_uninterrupted": same})
            print(f"cache kill {i}: after {at:.1f}s killed={code != 0} same={same}", flush=True)
        _, full = run(zoo_cmd(teacher, os.path.join(work, "zoo_ref")), log=log)
        reference = zoo_outcome(os.path.join(work, "zoo_ref"))
        for i in range(opts.points):
            out = os.path.join(work, f"zoo_{i}")
            at = rng.uniform(0.1, 1.0) * full
            code, _ = run(zoo_cmd(teacher, out), at, log)
            run(zoo_cmd(teacher, out), log=log)
            got = zoo_outcome(out)
            results["zoo"].append({"kill_after_s": round(at, 2), "killed": code != 0, "same_as_uninterrupted":
                                   got == reference, "got": got if got != reference else None})
            print(f"zoo kill {i}: after {at:.1f}s killed={code != 0} same={got == reference}", flush=True)
        results["zoo_reference"] = reference
    os.makedirs(RESULTS, exist_ok=True)
    write_json_atomic(os.path.join(RESULTS, "kill_resume.json"), results)


if __name__ == "__main__":
    main()
