"""The teacher cache at scale: memory of the build, two processes against one, ONNX Runtime against PyTorch.

    HF_DISTILL_DATA_DIR=../shared/data python benchmarks/cache.py --stage memory     # any time (RSS only)
    HF_DISTILL_DATA_DIR=../shared/data python benchmarks/cache.py --stage speed      # needs two idle cores
    HF_DISTILL_DATA_DIR=../shared/data python benchmarks/cache.py --stage onnx       # the ONNX part of speed only
    HF_DISTILL_DATA_DIR=../shared/data python benchmarks/cache.py --stage render

Writes benchmarks/results/cache/cache.json (+ .md); each stage fills its part, so they can run in different sessions.
- memory: RSS the build adds (peak during the build, sampled every 20 ms, minus RSS just before it) with a tiny
  1-layer teacher at 14,041 rows (CoNLL-2003 train) and at 140,410 (the split repeated 10 times), for the
  streamed build (``cache_dir``; shards of 16,384 rows) and the one-pass in-memory build (``cache_dir=None``:
  every logit held in Python lists, what every build did before streaming). Each measurement in a fresh process.
- student: does the int8 teacher change what a student learns? The CNN student of the zoo distilled on
  CoNLL-2003 train (KD, KL T=1, early stopping on dev) from the fine-tuned teacher's fp32 PyTorch cache and from
  its int8 ONNX Runtime cache, 3 seeds each, one process; test F1 (PyTorch) per seed.
- speed: all-MiniLM-L6-v2 (6 layers) over CoNLL-2003 train at one thread: one process, then two processes
  (RANK/WORLD_SIZE, one core each) building the same cache, and the ONNX Runtime teacher's sentences per second
  against PyTorch's on the same rows, in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

from common import ROOT, default_teacher_path, study_dir

RESULTS = study_dir("cache")  # this study's folder under benchmarks/results/

OUT = os.path.join(RESULTS, "cache.json")


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _rows(tokenizer, repeat: int):
    import datasets

    from hf_distill import load_dataset, tokenize_and_align

    train = tokenize_and_align(load_dataset("conll2003")["train"], tokenizer, max_length=128)
    train = train.select_columns(["input_ids", "attention_mask", "labels", "distill_mask"])
    return datasets.concatenate_datasets([train] * repeat) if repeat > 1 else train


def _teacher_path() -> str:
    return default_teacher_path()


def child_memory(repeat: int, cache_dir: str) -> dict:
    """One measurement, in this (fresh) process, with whichever hf_distill is on the path."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForTokenClassification

    try:
        from hf_distill.cache import cache_teacher_outputs
    except ImportError:  # an earlier version of the package: the cache lived in signals
        from hf_distill.cache import cache_teacher_outputs

    torch.set_num_threads(1)
    tokenizer = AutoTokenizer.from_pretrained(_teacher_path())
    rows = _rows(tokenizer, repeat)
    torch.manual_seed(0)
    teacher = BertForTokenClassification(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1,
                                                    num_attention_heads=2, intermediate_size=64, num_labels=9)).eval()
    peak, stop = [_rss_mb()], threading.Event()
    before = peak[0]

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_mb())
            time.sleep(0.02)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    start = time.perf_counter()
    out = cache_teacher_outputs(teacher, rows, batch_size=64, cache_dir=cache_dir)
    n = len(out)
    del out
    seconds = time.perf_counter() - start
    stop.set()
    thread.join()
    return {"rows": n, "added_rss_mb": peak[0] - before, "rss_before_mb": before, "seconds": seconds}


def stage_memory(before_commit: str) -> dict:
    """The current build and the build of ``before_commit`` (a temporary git worktree), each in fresh processes."""
    results = {"before_commit": before_commit}
    with tempfile.TemporaryDirectory() as tmp:
        old_src = os.path.join(tmp, "before")
        subprocess.run(["git", "worktree", "add", "--detach", old_src, before_commit], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            for label, src in (("streamed", ROOT), ("before", old_src)):
                for repeat in (1, 10):
                    env = {**os.environ, "PYTHONPATH": src}
                    proc = subprocess.run([sys.executable, __file__, "--child-memory", str(repeat),
                                           os.path.join(tmp, f"cache-{label}-{repeat}")], env=env,
                                          capture_output=True, text=True, cwd=ROOT)
                    if proc.returncode:
                        raise RuntimeError(proc.stderr[-3000:])
                    r = json.loads(proc.stdout.strip().splitlines()[-1])
                    results.setdefault(label, {})[str(r["rows"])] = r
                    print(f"{label} {r['rows']} rows: +{r['added_rss_mb']:.0f} MB ({r['seconds']:.0f} s)", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", old_src], cwd=ROOT, capture_output=True)
    return results


def child_build(cache_dir: str, threads: int) -> dict:
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from hf_distill.cache import cache_teacher_outputs

    torch.set_num_threads(threads)
    path = _teacher_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    rows = _rows(tokenizer, 1)
    torch.manual_seed(0)
    teacher = AutoModelForTokenClassification.from_pretrained(path, num_labels=9).eval()
    start = time.perf_counter()
    cache_teacher_outputs(teacher, rows, cache_dir=cache_dir, tokenizer=tokenizer, shard_size=1024)
    return {"seconds": time.perf_counter() - start, "rows": len(rows)}


def _published(cache_dir: str) -> dict:
    (name,) = [p for p in os.listdir(cache_dir) if not p.startswith(".") and not p.endswith(".partial")]
    with open(os.path.join(cache_dir, name, "hf_distill_cache.json")) as f:
        return {"key": name, "files": json.load(f)["files"]}


def stage_speed(teacher: str | None = None) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        one, two = os.path.join(tmp, "one"), os.path.join(tmp, "two")
        start = time.perf_counter()
        proc = subprocess.run(["taskset", "-c", "0", sys.executable, __file__, "--child-build", one], env=env,
                              capture_output=True, text=True, cwd=ROOT)
        out["one_process_s"] = time.perf_counter() - start
        if proc.returncode:
            raise RuntimeError(proc.stderr[-3000:])
        start = time.perf_counter()
        procs = [subprocess.Popen(["taskset", "-c", str(r), sys.executable, __file__, "--child-build", two],
                                  env={**env, "RANK": str(r), "WORLD_SIZE": "2"}, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, cwd=ROOT) for r in (0, 1)]
        for p in procs:
            _, err = p.communicate()
            if p.returncode:
                raise RuntimeError(err[-3000:])
        out["two_process_s"] = time.perf_counter() - start
        out["identical"] = _published(one) == _published(two)
    out["ratio_two_over_one"] = out["two_process_s"] / out["one_process_s"]
    out.update(onnx_speed(teacher=teacher))
    return out


def onnx_speed(n: int | None = None, teacher: str | None = None) -> dict:
    """Sentences per second of the PyTorch, the ONNX Runtime (fp32, fused) and the int8 ONNX Runtime teacher
    building the same cache (all of CoNLL-2003 train by default, so the ONNX export and its check, part of an
    ONNX build, are counted), one thread; the int8 teacher's label agreement with PyTorch over every position.
    ``teacher``: a fine-tuned teacher (label agreement means more with a trained head)."""
    import numpy as np
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from hf_distill.cache import cache_teacher_outputs

    torch.set_num_threads(1)
    path = teacher or _teacher_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    rows = _rows(tokenizer, 1)
    rows = rows.select(range(n)) if n else rows
    n = len(rows)
    model = AutoModelForTokenClassification.from_pretrained(path, num_labels=9).eval()
    out = {"teacher": path}
    caches = {}
    names = {"torch": "pytorch", "onnxruntime": "onnx", "onnxruntime-int8": "onnx_int8"}
    for backend, name in names.items():
        start = time.perf_counter()
        caches[backend] = cache_teacher_outputs(model, rows, dtype="float32", backend=backend, onnx_min_agreement=0.0)
        out[f"{name}_sps"] = n / (time.perf_counter() - start)
    real = [np.asarray(m, dtype=bool) for m in rows["attention_mask"]]
    for backend, name in list(names.items())[1:]:
        pairs = list(zip(caches["torch"]["teacher_logits"], caches[backend]["teacher_logits"], real))
        out[f"{name}_max_abs_diff"] = max(float(np.abs(np.asarray(a) - np.asarray(b))[m].max()) for a, b, m in pairs)
        out[f"{name}_argmax_agreement"] = float(np.mean(np.concatenate(
            [np.asarray(a)[m].argmax(-1) == np.asarray(b)[m].argmax(-1) for a, b, m in pairs])))
        out[f"{name}_over_pytorch"] = out[f"{name}_sps"] / out["pytorch_sps"]
    out["rows_timed"] = n
    return out


STUDENT_SEEDS = (42, 43, 44)
STUDENT_BACKENDS = ("torch", "onnxruntime-int8")


def stage_student(teacher: str, student: str = "cnn") -> dict:
    """Test F1 of ``student`` distilled from the PyTorch and from the int8 ONNX Runtime cache, per seed; each
    run is a resumable zoo run (finished students are skipped), every run shares one teacher cache folder."""
    import shutil
    import statistics

    import torch

    from hf_distill.zoo import ZooArguments, run_zoo

    torch.set_num_threads(1)
    base = os.path.join(ROOT, "outputs", "cache_student")
    shared_cache = os.path.join(base, "teacher_cache")
    os.makedirs(shared_cache, exist_ok=True)
    out = {"teacher": teacher, "student": student, "seeds": list(STUDENT_SEEDS)}
    for backend in STUDENT_BACKENDS:
        f1s = []
        for seed in STUDENT_SEEDS:
            run_dir = os.path.join(base, backend, f"seed{seed}")
            os.makedirs(run_dir, exist_ok=True)
            if not os.path.exists(os.path.join(run_dir, "teacher_cache")):
                os.symlink(shared_cache, os.path.join(run_dir, "teacher_cache"))
            record = os.path.join(base, "teacher.json")  # the teacher is benched once
            if os.path.isfile(record) and not os.path.isfile(os.path.join(run_dir, "teacher.json")):
                shutil.copy(record, os.path.join(run_dir, "teacher.json"))
            res = run_zoo(ZooArguments(teacher=teacher, dataset="conll2003", students=[student], seed=seed,
                                       cache_backend=backend, output_dir=run_dir, quantize=False, bench_runs=20))
            if not os.path.isfile(record):
                shutil.copy(os.path.join(run_dir, "teacher.json"), record)
            row = res["students"][0]
            f1s.append(row["f1_pytorch"])
            out.setdefault("epochs_run", {}).setdefault(backend, []).append(row["epochs_run"])
            out["teacher_f1"] = res["teacher"]["f1"]
        out[backend] = f1s
        out[f"{backend}_mean"] = statistics.mean(f1s)
        out[f"{backend}_sd"] = statistics.stdev(f1s)
    diffs = [b - a for a, b in zip(out["torch"], out["onnxruntime-int8"])]
    out["int8_minus_torch"] = statistics.mean(diffs)
    out["command"] = ("HF_DISTILL_DATA_DIR=../shared/data python benchmarks/cache.py --stage student "
                      f"--teacher {teacher}")
    return out


def render(r: dict) -> None:
    md = ["# Teacher cache at scale", "", f"Command: `{r.get('command', '')}`"
          + (f"; ONNX part: `{r['onnx_command']}`" if r.get("onnx_command") else ""), ""]
    mem = r.get("memory")
    if mem:
        md += ["## Memory the build adds (peak RSS during the build minus RSS before it)", "",
               "| build | 14,041 rows | 140,410 rows | ratio |", "|---|---|---|---|"]
        for key, label in (("before", f"before (commit {mem['before_commit']}: all logits in memory, then saved)"),
                           ("streamed", "streamed shards (now)")):
            a, b = mem[key]["14041"]["added_rss_mb"], mem[key]["140410"]["added_rss_mb"]
            md.append(f"| {label} | +{a:.0f} MB | +{b:.0f} MB | {b / max(a, 1e-9):.2f}x |")
        md.append("")
    sp = r.get("speed")
    if sp:
        md += ["## Two processes and the ONNX Runtime teacher (all-MiniLM-L6-v2, one thread per process)", "",
               f"- CoNLL-2003 train cache: one process {sp['one_process_s']:.0f} s, two processes "
               f"{sp['two_process_s']:.0f} s ({sp['ratio_two_over_one']:.2f}x); identical cache: {sp['identical']}.",
               f"- Sentences per second over {sp['rows_timed']} rows: PyTorch {sp['pytorch_sps']:.1f}, ONNX Runtime "
               f"{sp['onnx_sps']:.1f} ({sp['onnx_over_pytorch']:.2f}x); max |ONNX - PyTorch| logit "
               f"{sp['onnx_max_abs_diff']:.1e}."]
        if "onnx_int8_sps" in sp:
            md += [f"- int8 ONNX Runtime teacher (dynamic quantization, `backend=\"onnxruntime-int8\"`): "
                   f"{sp['onnx_int8_sps']:.1f} sentences per second ({sp['onnx_int8_over_pytorch']:.2f}x PyTorch); "
                   f"it keeps PyTorch's label at {100 * sp['onnx_int8_argmax_agreement']:.2f}% of the positions "
                   f"(max |int8 - PyTorch| logit {sp['onnx_int8_max_abs_diff']:.2f}): a slightly different teacher, "
                   "so the backend is part of the cache key and the build is refused below a stated agreement "
                   "(default 99% of 256 sample rows)."]
        md.append("")
    st = r.get("student")
    if st:
        def f1s(backend):
            return " / ".join(f"{100 * x:.2f}" for x in st[backend])
        md += ["## Does the int8 teacher change the student? (CoNLL-2003, test F1, PyTorch)", "",
               f"Command: `{st['command']}`", "",
               f"Student: the zoo's `{st['student']}` preset, KD (KL, T=1, kd_weight=auto), early stopping on dev "
               f"(patience 3, at most 30 epochs), trained on the teacher's cached logits of CoNLL-2003 train. "
               f"Teacher test F1 {100 * st['teacher_f1']:.2f}. Seeds {st['seeds']}.", "",
               "| teacher cache | F1 per seed | mean ± s.d. | epochs run |", "|---|---|---|---|"]
        for backend, label in (("torch", "PyTorch fp32"), ("onnxruntime-int8", "int8 ONNX Runtime")):
            md.append(f"| {label} | {f1s(backend)} | {100 * st[backend + '_mean']:.2f} ± "
                      f"{100 * st[backend + '_sd']:.2f} | {st['epochs_run'][backend]} |")
        md += ["", f"int8 − fp32, mean of the per-seed differences: {100 * st['int8_minus_torch']:+.2f} F1.", ""]
    with open(os.path.join(RESULTS, "cache.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))


def main(argv: list[str]) -> None:
    if argv[:1] == ["--child-memory"]:
        print(json.dumps(child_memory(int(argv[1]), argv[2])))
        return
    if argv[:1] == ["--child-build"]:
        print(json.dumps(child_build(argv[1], 1)))
        return
    p = argparse.ArgumentParser()
    p.add_argument("--stage", choices=("memory", "speed", "onnx", "student", "render"), required=True)
    p.add_argument("--before_commit", default="a4babdd", help="the build to compare with (memory stage)")
    p.add_argument("--teacher", default=None, help="speed and onnx stages: a fine-tuned teacher folder for the "
                                                   "ONNX comparison (default: the all-MiniLM-L6-v2 encoder with a "
                                                   "new 9-label head)")
    a = p.parse_args(argv)
    r = json.load(open(OUT)) if os.path.isfile(OUT) else {}
    if a.stage == "memory":
        r["memory"] = stage_memory(a.before_commit)
    elif a.stage == "speed":
        r["speed"] = stage_speed(a.teacher)
    elif a.stage == "student":
        if not a.teacher:
            raise SystemExit("--stage student needs --teacher: a fine-tuned token-classification teacher")
        r["student"] = stage_student(a.teacher)
    elif a.stage == "onnx":  # only the ONNX Runtime against PyTorch part of the speed stage
        r.setdefault("speed", {}).update(onnx_speed(teacher=a.teacher))
        r["onnx_command"] = "HF_DISTILL_DATA_DIR=../shared/data python benchmarks/cache.py --stage onnx" + (
            f" --teacher {a.teacher}" if a.teacher else "")
    r["command"] = "HF_DISTILL_DATA_DIR=../shared/data python benchmarks/cache.py --stage memory|speed" + (
        f" (speed: --teacher {a.teacher})" if a.teacher and a.stage == "speed" else "")
    mem, sp = r.get("memory"), r.get("speed")
    if mem:
        r["rows"] = 14041
        r["added_rss_mb"] = {k: v["added_rss_mb"] for k, v in mem["streamed"].items()}
        r["added_rss_mb_before"] = {k: v["added_rss_mb"] for k, v in mem["before"].items()}
    if sp:
        r.update({k: sp[k] for k in ("pytorch_sps", "onnx_sps", "one_process_s", "two_process_s", "identical")})
    os.makedirs(RESULTS, exist_ok=True)
    tmp = OUT + ".tmp"
    with open(tmp, "w") as f:
        json.dump(r, f, indent=2)
    os.replace(tmp, OUT)
    render(r)


if __name__ == "__main__":
    main(sys.argv[1:])
