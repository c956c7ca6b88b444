"""transformers pipelines over students, in PyTorch and through optimum.onnxruntime (CRF and char students)."""

from __future__ import annotations

import pytest
import torch
from conftest import CONLL_LABELS
from transformers import pipeline

from hf_distill.data.words import build_char_vocab, build_word_tokenizer, encode_words
from hf_distill.shipping.export import export_onnx
from hf_distill.shipping.pipelines import student_pipeline
from hf_distill.students import build_student


def _word_tags(results, n_words):
    """Tags at each word's first token from an ``aggregation_strategy="none"`` result (all labels kept)."""
    tags, seen = [], set()
    for r in results:
        if r["word_index"] not in seen:
            seen.add(r["word_index"])
            tags.append(r["entity"])
    assert len(tags) == n_words
    return tags


def _run(pipe, sentences):
    out = []
    for words in sentences:
        res = pipe(words, is_split_into_words=True, aggregation_strategy="none", ignore_labels=[])
        res = res[0] if res and isinstance(res[0], list) else res  # a word list comes back as a batch of one
        enc = pipe.tokenizer(words, is_split_into_words=True)
        word_ids = enc.word_ids()
        for r in res:
            r["word_index"] = word_ids[r["index"]]
        out.append(_word_tags(res, len(words)))
    return out


@pytest.fixture(scope="module")
def sentences(conll):
    return [conll["test"][i]["tokens"] for i in (0, 1, 5, 9, 20)]


def test_crf_student_pipeline_decodes_with_viterbi_in_pytorch_and_onnx(tmp_path, tokenizer, sentences):
    torch.manual_seed(0)
    student = build_student("bilstm", tokenizer, labels=CONLL_LABELS, embedding_dim=16, hidden_size=8, use_crf=True)
    with torch.no_grad():
        student.crf.transitions.normal_(0, 3)  # strong transitions: Viterbi differs from per-token argmax
    student.eval().save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    export_onnx(student, str(tmp_path / "onnx"), tokenizer=tokenizer, quantize=True)
    expected, argmax_differs = [], False
    for words in sentences:
        enc = tokenizer(words, is_split_into_words=True, return_tensors="pt")
        ids = enc.word_ids()
        first = [i for i, w in enumerate(ids) if w is not None and (i == 0 or ids[i - 1] != w)]
        pos = torch.zeros_like(enc["input_ids"], dtype=torch.bool)
        pos[0, first] = True
        with torch.no_grad():
            logits = student(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
        tags = student.decode(logits, pos)[0][first].tolist()
        argmax_differs |= tags != logits[0, first].argmax(-1).tolist()
        expected.append([CONLL_LABELS[t] for t in tags])
    assert argmax_differs
    assert _run(student_pipeline(str(tmp_path / "model")), sentences) == expected
    onnx_pipe = student_pipeline(str(tmp_path / "onnx"))
    assert type(onnx_pipe.model).__name__ == "ORTStudentForTokenClassification"
    assert _run(onnx_pipe, sentences) == expected
    grouped = onnx_pipe(" ".join(sentences[0]))  # raw text, aggregation "first"
    assert all(g["score"] == 1.0 and g["entity_group"] in {"PER", "ORG", "LOC", "MISC"} for g in grouped)
    assert len(_run(student_pipeline(str(tmp_path / "onnx"), quantized=True), sentences)) == len(sentences)


def test_plain_student_pipeline_equals_the_stock_pipeline(tmp_path, tokenizer, sentences):
    torch.manual_seed(1)
    student = build_student("cnn", tokenizer, labels=CONLL_LABELS, embedding_dim=16).eval()
    student.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    export_onnx(student, str(tmp_path / "onnx"), tokenizer=tokenizer)
    stock = pipeline("token-classification", model=student, tokenizer=tokenizer, aggregation_strategy="first")
    ours = student_pipeline(str(tmp_path / "onnx"))
    for words in sentences:
        text = " ".join(words)
        a, b = stock(text), ours(text)
        assert [(x["entity_group"], x["start"], x["end"]) for x in a] == [(x["entity_group"], x["start"], x["end"])
                                                                         for x in b]
        assert [x["score"] for x in a] == pytest.approx([x["score"] for x in b], abs=1e-5)


def test_char_student_pipeline_builds_character_inputs(tmp_path, conll, sentences):
    words = conll["train"]["tokens"][:300]
    tok, chars = build_word_tokenizer(words), build_char_vocab(words)
    torch.manual_seed(2)
    student = build_student("char_lstm", tok, labels=CONLL_LABELS, embedding_dim=8, hidden_size=6,
                            char_vocab=chars).eval()
    student.save_pretrained(tmp_path / "model")
    tok.save_pretrained(tmp_path / "model")
    export_onnx(student, str(tmp_path / "onnx"), tokenizer=tok)
    rows = encode_words(conll["test"].select([0, 1, 5, 9, 20]), tok, chars)
    expected = []
    for r in rows:
        with torch.no_grad():
            logits = student(input_ids=torch.tensor([r["input_ids"]]), char_ids=torch.tensor([r["char_ids"]])).logits
        expected.append([CONLL_LABELS[t] for t in logits[0].argmax(-1).tolist()])
    assert _run(student_pipeline(str(tmp_path / "onnx")), sentences) == expected
    assert _run(student_pipeline(str(tmp_path / "model")), sentences) == expected


def test_sequence_student_pipeline_through_onnx(tmp_path, tokenizer):
    torch.manual_seed(3)
    student = build_student("bilstm", tokenizer, task="sequence", labels=["neg", "pos"], embedding_dim=16,
                            hidden_size=8).eval()
    export_onnx(student, str(tmp_path / "onnx"), tokenizer=tokenizer)
    pipe = student_pipeline(str(tmp_path / "onnx"))
    for text in ("a fine day in Brussels", "the talks failed"):
        enc = tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            probs = student(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits.softmax(-1)[0]
        out = pipe(text)[0]
        assert out["label"] == ["neg", "pos"][int(probs.argmax())]
        assert out["score"] == pytest.approx(float(probs.max()), abs=1e-5)
