"""Running the zoo: the teacher benched in every backend, the shared teacher cache (train rows plus the transfer
set), every student distilled, saved and benched, extra seeds for the recommended student and its no-KD twin,
and the time of each phase."""

from __future__ import annotations

import os
import time
from dataclasses import asdict
from typing import TYPE_CHECKING

from ..base import write_json_atomic
from ..files import read_json
from .report import write_results
from .search import search_student
from .selection import deployment_point, fastest_backend, recommend, score
from .shared import ZooData
from .specs import DEFAULT_CLASSIFIERS, StudentSpec, build, kept_ids
from .splits import dev_overlap_warning, load_splits, load_teacher, read_extra_test, transfer_rows
from .student import claim, default_template, release, resume_point, settings_key, training_args
from .words import word_data

if TYPE_CHECKING:
    from ..runs import TaskSpec
    from .args import ZooArguments


class PhaseClock:
    """Wall and CPU seconds of each named phase of a run (``wall_s``, ``cpu_s``)."""

    def __init__(self):
        self.phases: dict[str, dict[str, float]] = {}
        self._wall0, self._cpu0 = time.perf_counter(), time.process_time()

    def add(self, name: str, wall: float, cpu: float) -> None:
        phase = self.phases.setdefault(name, {"wall_s": 0.0, "cpu_s": 0.0})
        phase["wall_s"] += wall
        phase["cpu_s"] += cpu

    def measure(self, name: str):
        clock = self

        class _Span:
            def __enter__(self):
                self.w, self.c = time.perf_counter(), time.process_time()

            def __exit__(self, *exc):
                clock.add(name, time.perf_counter() - self.w, time.process_time() - self.c)

        return _Span()

    def total(self) -> dict[str, float]:
        return {"wall_s": time.perf_counter() - self._wall0, "cpu_s": time.process_time() - self._cpu0}


def distill_one(args: ZooArguments, spec: StudentSpec, kd: bool, teacher, tokenizer, task: TaskSpec, data: ZooData,
                raw_test, teacher_id: str, say, seed: int | None = None) -> dict:
    """Train one student (with or without KD, with ``seed`` or ``args.seed``) to convergence, save it and bench
    it; resumable by its result file. Returns its result row (times in ``train_wall_s``/``train_cpu_s`` and
    ``bench_wall_s``), or ``{"name": ..., "pending": True}`` while another zoo process holds the student (see
    :func:`~hf_distill.zoo.student.claim`)."""
    seed = args.seed if seed is None else seed
    name = (spec.name if kd else f"{spec.name}-no-kd") + ("" if seed == args.seed else f"-seed{seed}")
    folder = os.path.join(args.output_dir, "students", name)
    result_path = os.path.join(folder, "zoo_result.json")
    key = settings_key(spec, args, data.template, teacher_id, kd, seed, (data.words or {}).get("vectors_report"))

    def finished():
        if os.path.isfile(result_path):
            done = read_json(result_path)
            if done.get("key") == key:
                say(f"{name}: finished before with the same settings, skipped")
                return {**done, "skipped": True}
        return None

    done = finished()
    if done:
        return done
    lock = claim(folder)
    if lock is None:
        say(f"{name}: another zoo process is training it; taken up when it has finished")
        return {"name": name, "pending": True}
    try:
        done = finished()  # finished by another process between the two checks
        if done:
            return done
        return _distill_claimed(args, spec, kd, teacher, tokenizer, task, data, raw_test, teacher_id, say, seed,
                                name, folder, key)
    finally:
        release(lock)


def _distill_claimed(args, spec, kd, teacher, tokenizer, task, data, raw_test, teacher_id, say, seed, name, folder,
                     key) -> dict:
    from transformers import EarlyStoppingCallback, PrinterCallback

    from ..runs import Progress
    from ..shipping.bench import bench_student
    from ..training.trainer import DistillationTrainer

    result_path = os.path.join(folder, "zoo_result.json")
    template = data.template
    words = data.words if spec.word_level else None
    source = data.rows(spec.word_level)  # a word-level student reads its own rows and tokenizer
    tokenizer = words["tokenizer"] if words is not None else tokenizer
    train = source["cached"] if kd else source["train"]
    searched = {}
    wall0, cpu0 = time.perf_counter(), time.process_time()
    if args.search:
        say(f"{name}: {args.search} search trials")
        searched = search_student(args, template, spec, data.teacher, tokenizer, task, train, source["dev"],
                                  folder, kd, data.keep, words)
    lr = searched.get("learning_rate", spec.learning_rate)
    over = {k: searched[k] for k in ("temperature", "kd_weight") if k in searched}
    import torch

    torch.manual_seed(seed)
    student = build(spec, teacher, tokenizer, task, data.keep, words)
    resume = resume_point(folder, key, say)
    progress = Progress(name)
    targs = training_args(args, template, folder, task, kd, lr, seed=seed, **over)
    trainer = DistillationTrainer(model=student, args=targs,
                                  train_dataset=train, eval_dataset=source["dev"], processing_class=tokenizer,
                                  compute_metrics=task.compute_metrics(),
                                  callbacks=[progress, EarlyStoppingCallback(early_stopping_patience=args.patience)])
    trainer.remove_callback(PrinterCallback)
    trainer.train(resume_from_checkpoint=resume)
    train_wall, train_cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    model_dir = os.path.join(folder, "model")
    trainer.save_student(model_dir, teacher=args.teacher, dataset=args.dataset, student_family=spec.family,
                         zoo_spec=asdict(spec), searched=searched or None, dev_split=data.dev_split)
    say(f"{name}: benching (PyTorch, ONNX{', int8' if args.quantize else ''})")
    bench0 = time.perf_counter()
    eff = bench_student(model_dir, raw_test, threads=args.threads, runs=args.bench_runs, quantize=args.quantize,
                        dataset_name=args.dataset, label_column=task.label_column,
                        teacher_result=data.teacher_measured)
    point = deployment_point(eff)
    extra = None
    if source.get("extra_test") is not None:
        from ..runs import evaluate

        extra = evaluate(trainer.model, source["extra_test"], tokenizer, task.labels)["f1"]
    s = eff["student"]
    teacher_fast = data.teacher_fastest
    row = {"name": name, "spec": spec.name, "seed": seed, "family": spec.family, "kd": kd, "key": key, **point,
           "speedup_vs_teacher_fastest": teacher_fast["latency_ms"] / point["latency_ms"] if teacher_fast else None,
           "f1_pytorch": score(s["pytorch"]), "f1_onnx": score(s.get("onnx", {})),
           "f1_onnx_int8": score(s.get("onnx_int8", {})), "accuracy": s["pytorch"].get("accuracy"),
           "precision": s["pytorch"].get("precision"), "recall": s["pytorch"].get("recall"), "train_rows": len(train),
           "latency_ms_pytorch": s["pytorch"]["latency_ms"], "latency_ms_onnx": s.get("onnx", {}).get("latency_ms"),
           "latency_ms_onnx_int8": s.get("onnx_int8", {}).get("latency_ms"),
           "params": s.get("params"), "embedding_share": s.get("embedding_share"), "flops": s.get("flops"),
           "epochs_run": round(trainer.state.epoch or 0), "resumed_from": resume and os.path.basename(resume),
           "best_dev_f1": trainer.state.best_metric, "train_wall_s": train_wall, "train_cpu_s": train_cpu,
           "bench_wall_s": time.perf_counter() - bench0, "model_dir": model_dir,
           "learning_rate": lr, "kd_loss": targs.kd_loss, "temperature": targs.temperature if kd else None,
           "kd_weight": targs.kd_weight if kd else None,
           "word_vectors": (words or {}).get("vectors_report") if spec.config.get("word_vectors") else None,
           "searched": searched or None, "f1_extra_test": extra, "bf16": args.bf16}
    write_json_atomic(result_path, row)
    say(f"{name}: test {'F1' if task.kind == 'token' else 'macro-F1'} {100 * row['f1']:.2f} at "
        f"{row['latency_ms']:.2f} ms ({row['backend']}); trained in {train_wall:.0f}s")
    return row


def bench_teacher(args: ZooArguments, teacher, tokenizer, raw, task: TaskSpec, teacher_id: str, say) -> dict:
    """The teacher's record: F1 and latency in PyTorch, ONNX and (with ``--quantize``) int8 ONNX, and its
    fastest backend within 0.5 F1 of PyTorch; reused from ``output_dir/teacher.json`` for the same teacher."""
    from ..shipping.bench import encode_for, measure_exported

    teacher_file = os.path.join(args.output_dir, "teacher.json")
    if os.path.isfile(teacher_file):
        record = read_json(teacher_file)
        if record.get("teacher_id") == teacher_id and record.get("test_rows") == len(raw["test"]) \
                and "fastest" in record:
            return record
    say(f"benching the teacher (PyTorch, ONNX{', int8' if args.quantize else ''})")
    rows = list(encode_for(teacher, tokenizer, raw["test"], task.label_column))
    local = args.teacher if os.path.exists(args.teacher) else None
    m = measure_exported(teacher, tokenizer, rows, local, args.threads, args.bench_runs, args.quantize)
    fastest = fastest_backend(m)
    record = {"teacher_id": teacher_id, "test_rows": len(raw["test"]),
              "f1": score(m["pytorch"]), "latency_ms": fastest["latency_ms"], "fastest": fastest,
              "f1_by_backend": {k: score(m[k]) for k in ("pytorch", "onnx", "onnx_int8") if k in m},
              "latency_ms_by_backend": {k: m[k]["latency_ms"] for k in ("pytorch", "onnx", "onnx_int8") if k in m},
              "params": m.get("params"), "flops": m.get("flops"),
              "measured": {"path": args.teacher, **m}}  # every student's bench reuses it
    os.makedirs(args.output_dir, exist_ok=True)
    write_json_atomic(teacher_file, record)
    return record


def prepare(args: ZooArguments, specs: list[StudentSpec], task: TaskSpec, raw, teacher, tokenizer, clock,
            say) -> ZooData:
    """Everything the students share: encoded splits, the transfer set, the teacher cache, word-level data."""
    from ..cache import cache_teacher_outputs
    from ..data import tokenize_and_align
    from ..data.transfer import mix_transfer

    train = task.encode(raw["train"], tokenizer)
    mixed = train
    rows, counts = transfer_rows(args, raw, task, tokenizer, say)
    if rows is not None:
        mixed = mix_transfer(train, task.encode(rows, tokenizer))
    with clock.measure("teacher_cache"):
        cached = cache_teacher_outputs(teacher, mixed, tokenizer=tokenizer, backend=args.cache_backend,
                                       cache_dir=args.cache_dir or os.path.join(args.output_dir, "teacher_cache"))
    data = ZooData(train=train, dev=task.encode(raw["validation"], tokenizer), cached=cached, teacher=teacher,
                   transfer=counts)
    data.keep = kept_ids(args, tokenizer, mixed, data.dev)
    if data.keep is not None:
        say(f"trimmed vocabulary: {len(data.keep)} of {len(tokenizer)} sub-words occur in the training and dev "
            "rows; BiLSTM, CNN and window students get rows for these only")
    extra_raw = None
    if args.extra_test:
        if task.kind != "token":
            raise ValueError("--extra_test scores tagging students; this data set is text classification")
        extra_raw = read_extra_test(args.extra_test, task.labels)
        data.extra_test = tokenize_and_align(extra_raw, tokenizer)
    word_level = [spec.name for spec in specs if spec.word_level]
    if word_level:
        if task.kind != "token":
            raise ValueError(f"students {word_level} tag words: this data set is text classification")
        with clock.measure("word_data"):
            data.words = word_data(raw, mixed, cached, task, teacher, tokenizer, extra_raw, args.word_vectors,
                                   args.vector_words, any(s.config.get("teacher_embeddings") for s in specs
                                                          if s.word_level))
        say(f"word vectors: {data.words['vectors_report']}")
    return data


def run_zoo(args: ZooArguments, training=None, argv: list[str] | None = None) -> dict:
    """Distill, bench and compare every student; write zoo.json, zoo.md and zoo.png under ``output_dir``.

    Args:
        args: the zoo's options.
        training: a ``DistillationTrainingArguments`` (or subclass) whose KD settings and other fields every
            student's training arguments start from (default: ``default_template(args)``).
        argv: the command line, for the helper processes of ``--workers`` (default: rebuilt from ``args`` and
            the template's KD settings).
    """
    import torch
    from transformers import AutoTokenizer

    from ..runs import TaskSpec
    from ..training.signals import teacher_fingerprint
    from .args import ZooArguments as _Defaults

    if not args.teacher:
        raise ValueError("pass --teacher: a fine-tuned token-classification model folder or Hub id")
    specs = [StudentSpec.parse(s) for s in args.students]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"student names repeat: {names}")
    clock = PhaseClock()

    def say(text: str) -> None:
        print(f"[zoo {clock.total()['wall_s']:6.0f}s] {text}", flush=True)

    torch.manual_seed(args.seed)
    tokenizer = AutoTokenizer.from_pretrained(args.teacher)
    raw, dev_split = load_splits(args, with_record=True)
    task = TaskSpec.of(raw["train"], args.label_column, args.text_column)
    overlap = dev_overlap_warning(raw, task.text_column)
    if overlap:
        say(overlap)
    if task.kind == "sequence":
        if list(args.students) == list(_Defaults().students):  # the default zoo, for classification
            specs = [StudentSpec.parse(name) for name in DEFAULT_CLASSIFIERS]
        crf = [s.name for s in specs if s.config.get("use_crf")]
        if crf:
            raise ValueError(f"students {crf} have a CRF head, which tags words; this data set is text "
                             "classification")
    teacher = load_teacher(args.teacher, task)
    data = prepare(args, specs, task, raw, teacher, tokenizer, clock, say)
    data.template = training if training is not None else default_template(args)
    data.dev_split = dev_split
    teacher_id = teacher_fingerprint(teacher)
    with clock.measure("teacher_bench"):
        t_record = bench_teacher(args, teacher, tokenizer, raw, task, teacher_id, say)
    fast = t_record["fastest"]
    say(f"teacher: test F1 {100 * t_record['f1']:.2f}; fastest backend within 0.5 F1: {fast['backend']} at "
        f"{fast['latency_ms']:.2f} ms per sentence")
    data.teacher_measured, data.teacher_fastest = t_record["measured"], fast
    helpers = start_workers(args, argv, data.template, say) if args.workers > 1 else []
    rows = []
    plan = [(spec, kd) for spec in specs for kd in ((True, False) if args.compare_no_kd else (True,))]

    def run(spec, kd, seed=None):
        done = [r.get("train_wall_s", 0) + r.get("bench_wall_s", 0) for r in rows if not r.get("skipped")]
        left = len(plan) - len(rows)
        eta = f", about {sum(done) / len(done) * left / 60:.0f} min left" if done else ""
        say(f"student {len(rows) + 1}/{len(plan)}: {spec.name}{'' if kd else ' (no KD)'}"
            f"{'' if seed is None else f' seed {seed}'}{eta}")
        w, c = time.perf_counter(), time.process_time()
        row = distill_one(args, spec, kd, teacher, tokenizer, task, data, raw["test"], teacher_id, say, seed)
        if row.get("pending"):
            pending.append((spec, kd, seed))
            return row
        clock.add(f"student:{row['name']}", time.perf_counter() - w, time.process_time() - c)
        rows.append(row)
        return row

    pending: list = []

    def wait_for_others():
        """Students another process was training: their results once written (or trained here if it died)."""
        while pending:
            todo = list(pending)
            pending.clear()
            for spec, kd, seed in todo:
                row = distill_one(args, spec, kd, teacher, tokenizer, task, data, raw["test"], teacher_id,
                                  lambda _text: None, seed)
                if row.get("pending"):
                    pending.append((spec, kd, seed))
                else:
                    rows.append(row)
            if pending:
                time.sleep(10)

    for spec, kd in plan:
        run(spec, kd)
    wait_for_others()
    seeds = None
    if args.seeds:
        main = [r for r in rows if r["kd"] and r["seed"] == args.seed]
        pick = recommend(main, t_record["f1"], args.max_f1_drop, None).get("within_f1_drop", {}).get("name") \
            or max(main, key=lambda r: r["f1"])["name"]
        spec = next(s for s in specs if s.name == pick)
        say(f"seeds {args.seeds} for the recommended student {pick} and its no-KD twin")
        plan += [(spec, True)] * len(args.seeds) + [(spec, False)] * (len(args.seeds) + (not args.compare_no_kd))
        for seed in args.seeds:
            run(spec, True, seed)
        for seed in ([] if args.compare_no_kd else [args.seed]) + list(args.seeds):
            run(spec, False, seed)
        wait_for_others()
        seeds = pick
    for proc in helpers:  # their students are done (waited for above); let them finish before the report
        proc.wait()
    cascade = None
    if args.cascade:
        with clock.measure("cascade"):
            cascade = cascade_of_recommended(args, rows, t_record, say)
    return write_results(args, rows, t_record, task, phases=clock.phases, total=clock.total(), seeded=seeds,
                         transfer=data.transfer, template=data.template, cascade=cascade)


def start_workers(args: ZooArguments, argv: list[str] | None, template, say) -> list:
    """``args.workers - 1`` more zoo processes with this command, each pinned to its own core on one thread (this
    process takes the first core); they share the students through claim files and read the teacher's cache and
    bench from disk."""
    import shlex
    import subprocess
    import sys

    import torch

    from .report import command_of

    words = list(argv) if argv is not None else shlex.split(command_of(args, template))[2:]
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cores) >= args.workers:
        os.sched_setaffinity(0, {cores[0]})
    torch.set_num_threads(1)
    procs = []
    for i in range(1, args.workers):
        core = {cores[i]} if len(cores) >= args.workers else None
        with open(os.path.join(args.output_dir, f"worker{i}.log"), "w") as log:  # the child keeps its own copy
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "hf_distill.cli", "zoo", *words, "--workers", "1"], stdout=log,
                stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"},
                preexec_fn=(lambda core=core: os.sched_setaffinity(0, core)) if core else None))
    say(f"{len(procs)} more zoo process(es) started (logs: {args.output_dir}/worker*.log)")
    return procs


def cascade_of_recommended(args: ZooArguments, rows: list[dict], t_record: dict, say) -> dict:
    """``hf-distill cascade`` for the recommended student (else the most accurate) and the teacher; the row the
    report shows (test score, share sent to the teacher, latency per input at batch 1 on one thread)."""
    from ..runs.cascade import CascadeArguments, run_cascade

    main = [r for r in rows if r["seed"] == args.seed]  # the rows the report recommends from
    pick = recommend(main, t_record["f1"], args.max_f1_drop, args.latency_budget_ms).get(
        "within_f1_drop", {}).get("name") or max(main, key=lambda r: r["f1"])["name"]
    row = next(r for r in main if r["name"] == pick)
    say(f"cascade: {pick} with the teacher, calibrated on dev")
    out = run_cascade(CascadeArguments(student=row["model_dir"], teacher=args.teacher, dataset=args.dataset,
                                       data_dir=args.data_dir, max_eval_samples=args.max_eval_samples,
                                       max_dev_samples=args.max_dev_samples))
    c = out["cascade"]
    return {"student": pick, "threshold": c["threshold"], "f1": c["f1"], "to_teacher": c["to_teacher"],
            "latency_ms": 1000 / c["sent_per_s"]["1"], "sent_per_s": c["sent_per_s"],
            "teacher_f1": out["teacher"]["f1"], "student_f1": out["student"]["f1"],
            "teacher_sent_per_s": out["teacher"]["sent_per_s"],
            "student_dev": c["calibration"].get("student_dev"), "teacher_dev": c["calibration"].get("teacher_dev"),
            "results": os.path.join(row["model_dir"], "cascade_results.json")}
