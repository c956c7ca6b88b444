"""Transfer sets: sources, filters (no leakage into evaluation splits), teacher filters, mixing, KD-only rows."""

from __future__ import annotations

import json

import datasets
import numpy as np
import pytest
import torch
from conftest import tiny_bert

from hf_distill import DistillationCollator, DistillationTrainer, DistillationTrainingArguments, tokenize_and_align
from hf_distill.cache import cache_teacher_outputs
from hf_distill.data.readers import DataFormatError
from hf_distill.data.transfer import (
    TransferReport,
    TransferSetError,
    build_transfer_set,
    count_rows,
    filter_by_teacher,
    mix_transfer,
    row_key,
    split_words,
)
from hf_distill.losses import kl_loss
from hf_distill.training.signals import CACHE_LOGITS


def test_split_words():
    assert split_words("U.S.-led talks, didn't end.") == ["U.S.-led", "talks", ",", "didn't", "end", "."]
    assert split_words("EU rejects German call") == ["EU", "rejects", "German", "call"]
    assert split_words("  ") == []


def test_sources_of_every_kind(tmp_path, conll, data_dir):
    texts = ["EU rejects German call .", "Peter Blackburn", "BRUSSELS 1996-08-22"]
    words = [split_words(t) for t in texts]
    (tmp_path / "a.txt").write_text("\n".join(texts) + "\n\n")
    (tmp_path / "a.jsonl").write_text("".join(json.dumps({"text": t, "label": "x"}) + "\n" for t in texts))
    (tmp_path / "a.csv").write_text("id,text\n" + "".join(f"{i},\"{t}\"\n" for i, t in enumerate(texts)))
    (tmp_path / "a.conll").write_text("\n\n".join("\n".join(f"{w} O" for w in ws) for ws in words) + "\n")
    sources = [texts, words, datasets.Dataset.from_dict({"text": texts}), str(tmp_path / "a.txt"),
               str(tmp_path / "a.jsonl"), str(tmp_path / "a.csv"), str(tmp_path / "a.conll")]
    for source in sources:
        ds, report = build_transfer_set(source, task="token")
        assert ds["tokens"] == words and ds["source_row"] == [0, 1, 2], source
        assert report.rows_in == report.rows_out == 3
        seq, _ = build_transfer_set(source, task="sequence")
        assert seq["text"] == [" ".join(w) for w in words]
    dev, report = build_transfer_set("conll2003:validation", data_dir=str(data_dir), dedupe=False)
    assert len(dev) == len(conll["validation"]) and "ner_tags" not in dev.column_names


def test_filters_are_counted_and_no_test_row_leaks(conll, tokenizer):
    test = conll["test"]
    source = list(conll["train"].select(range(300))["tokens"]) + list(test.select(range(40))["tokens"])
    source += [source[0], source[1], [], ["ⅶⅷⅸ"]]  # 2 duplicates, 1 empty, 1 of unknown sub-words only
    ds, report = build_transfer_set(source, tokenizer, exclude=[conll["validation"], test])
    assert report.rows_in == len(source)
    assert report.filtered["empty"] == 1 and report.filtered["duplicate"] >= 2
    assert report.filtered["overlaps_excluded"] >= 40 and report.filtered["unknown_words"] == 1
    assert report.rows_out == len(ds) == report.rows_in - sum(report.filtered.values())
    banned = {row_key(r) for split in ("validation", "test") for r in conll[split]["tokens"]}
    assert not any(row_key(r) in banned for r in ds["tokens"])
    assert len({row_key(r) for r in ds["tokens"]}) == len(ds)
    assert [source[i] for i in ds["source_row"]] == ds["tokens"]
    assert "overlaps_excluded: " in str(report)


def test_length_filters(conll, tokenizer):
    labeled = conll["train"].select(range(200))
    source = conll["train"].select(range(200, 600))
    lo, hi = 5, 20
    ds, report = build_transfer_set(source, tokenizer, length=(lo, hi))
    lengths = [len(tokenizer(r, is_split_into_words=True, add_special_tokens=False)["input_ids"]) for r in ds["tokens"]]
    assert min(lengths) >= lo and max(lengths) <= hi and report.filtered["length"] > 0
    iqr, report = build_transfer_set(source, tokenizer, length="iqr", labeled=labeled)
    q_lo, q_hi = report.notes["length_range"]
    ref = [len(tokenizer(r, is_split_into_words=True, add_special_tokens=False)["input_ids"])
           for r in labeled["tokens"]]
    assert q_lo == int(np.percentile(ref, 25)) and q_lo <= q_hi and len(iqr) < len(source)
    with pytest.raises(ValueError, match="labeled="):
        build_transfer_set(source, tokenizer, length="iqr")


def test_max_rows_is_seeded(conll):
    source = conll["train"].select(range(100))
    a, _ = build_transfer_set(source, max_rows=10, seed=1)
    b, _ = build_transfer_set(source, max_rows=10, seed=1)
    c, _ = build_transfer_set(source, max_rows=10, seed=2)
    assert a["source_row"] == b["source_row"] != c["source_row"] and len(a) == 10


def test_bad_sources_get_clear_errors(tmp_path, tokenizer, conll):
    with pytest.raises(TransferSetError, match="empty"):
        build_transfer_set([])
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(TransferSetError, match="empty.txt is empty"):
        build_transfer_set(str(tmp_path / "empty.txt"))
    with pytest.raises(TransferSetError, match="filtered out"):
        build_transfer_set(["  ", ""])
    with pytest.raises(TransferSetError, match="knows"):
        build_transfer_set(["ⅶⅷ ⅸⅹ", "ⅺ"], tokenizer)
    with pytest.raises(TransferSetError, match="no such file"):
        build_transfer_set(str(tmp_path / "missing.txt"))
    with pytest.raises(TransferSetError, match="one split"):
        build_transfer_set(conll)
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\nnot json\n')
    with pytest.raises(DataFormatError, match="bad.jsonl:2"):
        build_transfer_set(str(tmp_path / "bad.jsonl"))
    (tmp_path / "x.pdf").write_text("x")
    with pytest.raises(TransferSetError, match="unsupported file type"):
        build_transfer_set(str(tmp_path / "x.pdf"))


def _cached(logits: list[np.ndarray], token: bool = False) -> datasets.Dataset:
    data = {CACHE_LOGITS: [x.tolist() for x in logits]}
    if token:
        data["distill_mask"] = [[1] * len(x) for x in logits]
    return datasets.Dataset.from_dict(data)


def test_confidence_and_balance_filters():
    confident, unsure = np.array([8.0, 0.0, 0.0]), np.array([0.1, 0.0, 0.0])
    rows = [confident] * 6 + [unsure] * 2 + [np.array([0.0, 9.0, 0.0])] * 2 + [np.array([0.0, 0.0, 9.0])]
    report = TransferReport(rows_in=len(rows))
    kept = filter_by_teacher(_cached(rows), min_confidence=0.9, report=report)
    assert len(kept) == 9 and report.filtered["confidence"] == 2
    balanced = filter_by_teacher(_cached(rows), balance="median", seed=0, report=report)
    predicted = [int(np.argmax(x)) for x in balanced[CACHE_LOGITS]]
    # class counts 8 / 2 / 1: the median cap is 2
    assert report.notes["balance_cap"] == 2 and sorted(predicted) == [0, 0, 1, 1, 2]
    tokens = [np.array([[9.0, 0.0], [9.0, 0.0]]), np.array([[9.0, 0.0], [0.0, 0.0]])]
    assert len(filter_by_teacher(_cached(tokens, token=True), min_confidence=0.9)) == 1
    with pytest.raises(TransferSetError, match="sequence classification"):
        filter_by_teacher(_cached(tokens, token=True), balance="median")


def test_mix_and_count(tokenizer, tokenized, conll):
    labeled = tokenized["train"].select(range(20))
    transfer, _ = build_transfer_set(conll["train"].select(range(300, 340)), tokenizer)
    transfer = tokenize_and_align(transfer, tokenizer)
    assert count_rows(transfer) == {"labeled": 0, "transfer": 40}
    mixed = mix_transfer(labeled, transfer)
    assert count_rows(mixed) == {"labeled": 20, "transfer": 40}
    assert len(mix_transfer(labeled, transfer, ratio=0.5)) == 30
    assert len(mix_transfer(labeled, transfer, count=7, seed=3)) == 27
    with pytest.raises(TransferSetError, match="carry gold labels"):
        mix_transfer(labeled, labeled)
    with pytest.raises(TransferSetError, match="has 40"):
        mix_transfer(labeled, transfer, count=41)


def test_transfer_rows_contribute_kd_terms_only(tmp_path, tokenizer, tokenized, conll):
    teacher = tiny_bert(len(tokenizer), layers=2, hidden=32, seed=1).eval()
    student = tiny_bert(len(tokenizer), layers=1, hidden=16, seed=2).train()
    transfer, _ = build_transfer_set(conll["train"].select(range(300, 308)), tokenizer)
    transfer = cache_teacher_outputs(teacher, tokenize_and_align(transfer, tokenizer))
    batch = DistillationCollator(tokenizer)([transfer[i] for i in range(8)])
    assert (batch["labels"] == -100).all() and batch["distill_mask"].sum() > 0

    def loss_of(**kw):
        args = DistillationTrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True, **kw)
        trainer = DistillationTrainer(model=student, args=args, processing_class=tokenizer)
        student.zero_grad()
        loss = trainer.compute_loss(student, batch)
        return loss, trainer

    loss, trainer = loss_of(kd_loss="kl", temperature=2.0, kd_weight="0.7", task_weight=3.0)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    expected = 0.7 * kl_loss(student(**inputs).logits, batch[CACHE_LOGITS], batch["distill_mask"].bool(),
                             temperature=2.0)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert trainer._metrics["task_loss"] == [0.0]
    no_kd, _ = loss_of(kd_loss="none")
    no_kd.backward()
    assert no_kd.item() == 0.0
    assert all(p.grad is None or torch.count_nonzero(p.grad) == 0 for p in student.parameters())


def test_a_missing_label_column_is_an_error_not_unlabeled_data(data_dir, tokenizer):
    from hf_distill import load_dataset
    from hf_distill.metrics import classification_scores, seqeval_scores

    chunks = load_dataset("conll2000", data_dir=str(data_dir))["test"].select(range(5))
    with pytest.raises(ValueError, match="'ner_tags' is not in the dataset.*chunk_tags"):
        tokenize_and_align(chunks, tokenizer)
    assert (np.asarray(tokenize_and_align(chunks, tokenizer, label_column="chunk_tags")[0]["labels"]) >= 0).any()
    words_only = datasets.Dataset.from_dict({"tokens": [["EU", "rejects"]]})
    assert set(tokenize_and_align(words_only, tokenizer)[0]["labels"]) == {-100}  # no tag column: unlabeled
    with pytest.raises(ValueError, match="no gold labels"):
        seqeval_scores([[], []], [[], []])
    with pytest.raises(ValueError, match="no gold labels"):
        classification_scores(np.zeros((2, 3)), np.array([-100, -100]))
