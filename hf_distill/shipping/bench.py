"""Measure a saved student (and its teacher) the way a model card reports it: quality of the PyTorch,
ONNX and int8 ONNX models on an evaluation split, parameters, FLOPs, file sizes, CPU latency and
throughput, and the break-even point of distillation. Results go to ``model_dir/efficiency.json``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import datasets
import numpy as np
import torch
from transformers import AutoTokenizer

from ..base import DISTILLATION_FILE, EFFICIENCY_FILE, extra_model_inputs, task_of, write_json_atomic
from ..data import tokenize_and_align, tokenize_text
from ..data.words import encode_words, piece_segmenter
from ..files import read_json
from ..metrics import IGNORE_INDEX, classification_scores, seqeval_scores
from ..training.collator import DistillationCollator
from .efficiency import (
    break_even,
    count_flops,
    count_parameters,
    file_sizes,
    measure_latency,
    measure_onnx_latency,
    measure_throughput,
    onnx_feeds,
    onnx_session,
    session_inputs,
    training_flops,
)
from .export import ONNX_FILE, QUANTIZED_FILE, OnnxTagger, export_onnx, load_model


def read_info(model_dir: str | os.PathLike, name: str = DISTILLATION_FILE) -> dict:
    """``distillation.json`` (or another JSON record) of a saved student; {} when absent."""
    path = Path(model_dir) / name
    if not path.is_file():
        return {}
    return read_json(path)


def is_token_model(model) -> bool:
    return task_of(model) == "token"


def encode_for(model, tokenizer, split: datasets.Dataset, label_column: str | None = None) -> datasets.Dataset:
    """The evaluation rows a saved model reads: sub-words, words + characters, or sentences; ``label_column``
    defaults to ``ner_tags`` (tagging) or ``label`` (classification)."""
    if not is_token_model(model):
        return tokenize_text(split, tokenizer, label_column=label_column or "label")
    char_vocab = getattr(model.config, "char_vocab", None)
    if char_vocab:
        return encode_words(split, tokenizer, char_vocab, label_column or "ner_tags",
                            max_word_length=model.config.max_word_length, pieces=piece_segmenter(model.config))
    return tokenize_and_align(split, tokenizer, label_column or "ner_tags")


def _scores(model, preds: list[np.ndarray], rows: Sequence[dict]) -> dict[str, float]:
    labels = [np.asarray(r["labels"]) for r in rows]
    if not is_token_model(model):
        return classification_scores(np.asarray([int(p) for p in preds]), np.asarray([int(x) for x in labels]))
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    gold = [[names[i] for i in lab[lab != IGNORE_INDEX]] for lab in labels]
    pred = [[names[i] for i in p] for p in preds]
    return seqeval_scores(gold, pred)


def torch_predictions(model, rows: Sequence[dict], collate, batch_size: int = 64) -> list[np.ndarray]:
    """Label ids per row at labeled positions (Viterbi for CRF students), or the class per row."""
    out = []
    model.eval()
    inputs = {"input_ids", "attention_mask", "token_type_ids", *extra_model_inputs(model)}
    with torch.inference_mode():
        for i in range(0, len(rows), batch_size):
            batch = collate(list(rows[i:i + batch_size]))
            logits = model(**{k: v for k, v in batch.items() if k in inputs}).logits
            if not is_token_model(model):
                out.extend(logits.argmax(-1).numpy())
                continue
            keep = batch["labels"] != IGNORE_INDEX
            ids = model.decode(logits, keep) if getattr(model, "crf", None) is not None else logits.argmax(-1)
            out.extend(ids[j][keep[j]].numpy() for j in range(ids.shape[0]))
    return out


def onnx_predictions(onnx_dir: str | os.PathLike, rows: Sequence[dict], quantized: bool = False) -> list[np.ndarray]:
    """Like :func:`torch_predictions`, through onnxruntime (numpy Viterbi for CRF students)."""
    tagger = OnnxTagger(str(onnx_dir), quantized=quantized)
    preds = []
    for r in rows:
        labels = np.asarray(r["labels"])
        if labels.ndim == 0:
            preds.append(tagger.logits(r).argmax(-1))
        else:
            preds.append(np.asarray(tagger.predict(r, labels != IGNORE_INDEX)))
    return preds


def latency_rows(rows: Sequence[dict], n: int = 100) -> list[dict]:
    """``n`` rows spread evenly over the split (real sentences of varied lengths)."""
    step = max(1, len(rows) // n)
    return [rows[i] for i in range(0, len(rows), step)][:n]


def measure_model(model, tokenizer, rows: Sequence[dict], onnx_dir: str | os.PathLike | None = None,
                  model_dir: str | os.PathLike | None = None, threads: int = 1, runs: int = 100,
                  seq_len: int = 128, char_len: int = 15, quality: bool = True) -> dict:
    """Every efficiency figure of one model; ONNX figures when ``onnx_dir`` holds an export."""
    collate = DistillationCollator(tokenizer, extra_inputs=extra_model_inputs(model))
    sample = latency_rows(rows)
    inputs = ("input_ids", "attention_mask", "token_type_ids", *extra_model_inputs(model))
    row = {"class": type(model).__name__, "model_type": model.config.model_type, **count_parameters(model)}
    flops = count_flops(model, seq_len=seq_len, char_len=char_len)
    row.update(flops=flops["flops"], flops_seq_len=seq_len)
    if model_dir is not None:
        row.update(file_sizes(model_dir, onnx_dir))
    row["pytorch"] = measure_latency(model, sample, collate, inputs=inputs, runs=runs, threads=threads)
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            row["pytorch"].update(measure_throughput(
                lambda b: model(**{k: v for k, v in b.items() if k in inputs}), sample, collate))
    finally:
        torch.set_num_threads(old)
    if quality:
        row["pytorch"].update(_scores(model, torch_predictions(model, rows, collate), rows))
    for name, file, quantized in (("onnx", ONNX_FILE, False), ("onnx_int8", QUANTIZED_FILE, True)):
        path = Path(onnx_dir) / file if onnx_dir is not None else None
        if path is None or not path.is_file():
            continue
        stats = measure_onnx_latency(path, sample, collate, runs=runs, threads=threads)
        session = onnx_session(path, threads)
        names = session_inputs(session)
        stats.update(measure_throughput(lambda b, s=session, n=names: s.run(None, onnx_feeds(n, b)), sample, collate))
        if quality:
            stats.update(_scores(model, onnx_predictions(onnx_dir, rows, quantized), rows))
        row[name] = stats
    return row


def export_for_bench(model, tokenizer, rows: Sequence[dict], onnx_dir: str | os.PathLike, quantize: bool) -> dict:
    """ONNX export validated on real rows of several lengths (shortest, median, longest and more)."""
    by_len = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))
    picks = sorted({by_len[0], by_len[len(by_len) // 2], by_len[-1], *by_len[:: max(1, len(by_len) // 5)]})
    names = ("input_ids", "attention_mask", "token_type_ids", *extra_model_inputs(model))
    examples = [{k: rows[i][k] for k in names if k in rows[i]} for i in picks]
    return export_onnx(model, str(onnx_dir), examples=examples, quantize=quantize, tokenizer=tokenizer)


def measure_exported(model, tokenizer, rows: Sequence[dict], model_dir: str | os.PathLike | None, threads: int,
                     runs: int, quantize: bool) -> dict:
    """:func:`measure_model` in PyTorch and in an ONNX (and int8) export made in a temporary folder: the export
    is measured, not shipped (how a teacher is benched)."""
    with tempfile.TemporaryDirectory() as onnx_dir:
        export_for_bench(model, tokenizer, rows, onnx_dir, quantize=quantize)
        return measure_model(model, tokenizer, rows, onnx_dir, model_dir, threads, runs)


def bench_student(model_dir: str, eval_split: datasets.Dataset, teacher_dir: str | None = None,
                  threads: int = 1, runs: int = 100, quantize: bool = True, teacher_epochs: float | None = None,
                  split_name: str = "test", dataset_name: str | None = None, label_column: str | None = None,
                  teacher_result: dict | None = None) -> dict:
    """Export, evaluate and time the student in ``model_dir`` (and its teacher); write ``efficiency.json``.

    ``teacher_result``: the teacher's measurements taken before on the same split (``measure_model``'s dict
    plus ``path``), used instead of measuring the teacher again (the zoo benches it once for every student).

    ONNX files go to ``model_dir/onnx``. Break-even (in FLOPs): the teacher's fine-tuning
    (``teacher_epochs`` x training examples) plus caching its outputs, over the FLOPs saved per
    inference when the student serves instead of the teacher.
    """
    info = read_info(model_dir)
    student = load_model(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = list(encode_for(student, tokenizer, eval_split, label_column))
    onnx_dir = Path(model_dir) / "onnx"
    export = export_for_bench(student, tokenizer, rows, onnx_dir, quantize)
    result = {"dataset": dataset_name or info.get("dataset"), "split": split_name, "examples": len(rows),
              "threads": threads, "runs": runs, "onnx_max_abs_diff": export.get("max_abs_diff")}
    result["student"] = measure_model(student, tokenizer, rows, onnx_dir, model_dir, threads, runs)
    teacher_dir = teacher_dir or info.get("teacher")
    if teacher_result is not None:
        result["teacher"] = teacher_result
    elif teacher_dir:
        teacher = load_model(teacher_dir)
        t_tok = AutoTokenizer.from_pretrained(teacher_dir)
        t_rows = list(encode_for(teacher, t_tok, eval_split, label_column))
        result["teacher"] = {"path": str(teacher_dir),
                             **measure_exported(teacher, t_tok, t_rows, teacher_dir, threads, runs, quantize)}
    if "teacher" in result:
        s, t = result["student"], result["teacher"]
        result["speedup"] = {k: t[k]["latency_ms"] / s[k]["latency_ms"] for k in ("pytorch", "onnx", "onnx_int8")
                             if k in s and k in t}
        result["speedup"]["onnx_vs_teacher_pytorch"] = t["pytorch"]["latency_ms"] / s["onnx"]["latency_ms"]
        n_train = info.get("train_examples")
        if n_train and teacher_epochs:
            extra = training_flops(t["flops"], int(teacher_epochs * n_train)) + t["flops"] * n_train
            result["break_even"] = {"inferences": break_even(extra, t["flops"], s["flops"]), "extra_flops": extra,
                                    "teacher_epochs": teacher_epochs, "train_examples": n_train}
    write_json_atomic(Path(model_dir) / EFFICIENCY_FILE, result)
    return result


def bench_table(result: dict) -> str:
    """``bench_student``'s result as a Markdown table: score and latency per backend for the student and the
    teacher, and the speed-up against the teacher in the same backend."""
    s, t = result["student"], result.get("teacher") or {}
    metric = "F1" if "f1" in s["pytorch"] else "macro-F1" if "macro_f1" in s["pytorch"] else "accuracy"
    key = {"F1": "f1", "macro-F1": "macro_f1", "accuracy": "accuracy"}[metric]

    def cell(m, k, scale=1.0, fmt="{:.2f}"):
        return fmt.format(scale * m[k]) if m and m.get(k) is not None else "-"

    lines = [f"| backend | student {metric} | student ms | teacher {metric} | teacher ms | speed-up |",
             "|---|---|---|---|---|---|"]
    for backend in ("pytorch", "onnx", "onnx_int8"):
        if backend not in s:
            continue
        sm, tm = s[backend], t.get(backend)
        speed = f"{tm['latency_ms'] / sm['latency_ms']:.1f}x" if tm else "-"
        lines.append(f"| {backend} | {cell(sm, key, 100)} | {cell(sm, 'latency_ms')} | {cell(tm, key, 100)} | "
                     f"{cell(tm, 'latency_ms')} | {speed} |")
    return "\n".join(lines)
