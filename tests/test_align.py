"""Sub-word alignment: first sub-word carries the label, truncation is counted, words can be recovered."""

from __future__ import annotations

import datasets
import numpy as np
import pytest

from hf_distill.data import tokenize_and_align, tokenize_text, word_level


def _ds(tokens, tags=None):
    data = {"tokens": tokens}
    if tags is not None:
        data["ner_tags"] = tags
    return datasets.Dataset.from_dict(data)


def test_first_subword_carries_the_label(tokenizer):
    ds = _ds([["Zwingliexample", "in", "Brussels"]], [[1, 0, 5]])
    row = tokenize_and_align(ds, tokenizer)[0]
    word_ids = tokenizer(["Zwingliexample", "in", "Brussels"], is_split_into_words=True).word_ids()
    assert len(row["labels"]) == len(word_ids)
    expect_labels, expect_mask, prev = [], [], None
    for w in word_ids:
        first = w is not None and w != prev
        expect_labels.append([1, 0, 5][w] if first else -100)
        expect_mask.append(int(first))
        prev = w
    assert row["labels"] == expect_labels and row["distill_mask"] == expect_mask
    assert sum(lab != -100 for lab in row["labels"]) == 3
    assert row["labels"][0] == -100 and row["labels"][-1] == -100  # [CLS], [SEP]
    assert len(word_ids) > 5  # the rare word really was split into several sub-words


def test_unlabeled_sentences_keep_the_kd_mask(tokenizer):
    row = tokenize_and_align(_ds([["Peter", "runs"]]), tokenizer)[0]
    assert set(row["labels"]) == {-100}
    assert sum(row["distill_mask"]) == 2


def test_truncation_is_counted(tokenizer, caplog):
    ds = _ds([["the"] * 50, ["the"]], [[0] * 50, [0]])  # "the" is one token
    with caplog.at_level("WARNING"):
        out, report = tokenize_and_align(ds, tokenizer, max_length=12, return_report=True)
    assert (report.examples, report.truncated_examples, report.lost_words) == (2, 1, 40)
    assert "1 of 2 examples truncated (40 words lost)" in caplog.text
    assert sum(out[0]["distill_mask"]) == 10


def test_word_level_predictions_from_subword_logits(tokenizer):
    words = ["Zwingliexample", "in", "Brussels"]
    enc = tokenizer(words, is_split_into_words=True)
    logits = np.arange(len(enc["input_ids"]) * 2, dtype=float).reshape(-1, 2)
    got = word_level(logits, enc.word_ids())
    firsts = [enc.word_ids().index(i) for i in range(3)]
    np.testing.assert_array_equal(got, logits[firsts])
    with pytest.raises(ValueError, match="positions"):
        word_level(logits[:2], enc.word_ids())


def test_slow_tokenizers_are_refused(tokenizer_dir):
    from transformers import BertTokenizer

    with pytest.raises(TypeError, match="fast tokenizer"):
        tokenize_and_align(_ds([["a"]], [[0]]), BertTokenizer.from_pretrained(tokenizer_dir))


def test_text_classification_tokenization(tokenizer):
    ds = datasets.Dataset.from_dict({"text": ["a good day " * 20, "bad"], "label": [1, -1]})
    out, report = tokenize_text(ds, tokenizer, max_length=16, return_report=True)
    assert out["labels"] == [1, -100]
    assert len(out[0]["input_ids"]) == 16 and report.truncated_examples == 1
