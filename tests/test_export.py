"""ONNX export with Optimum: every student and a BERT teacher reproduce PyTorch on real sentences."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
from conftest import CONLL_LABELS, tiny_bert

from hf_distill.data.words import build_char_vocab, build_word_tokenizer, encode_words
from hf_distill.shipping.crf_decode import viterbi
from hf_distill.shipping.export import ExportError, OnnxTagger, export_onnx
from hf_distill.students import BertCRFForTokenClassification, build_student


def _examples(dataset, n=4):
    """Real sentences of several lengths (shortest, longest and two between)."""
    lengths = [len(x) for x in dataset["input_ids"]]
    order = np.argsort(lengths)
    pick = [order[0], order[len(order) // 3], order[2 * len(order) // 3], order[-1]][:n]
    return [dataset[int(i)] for i in pick]


@pytest.mark.parametrize("family,task,kw", [
    ("window", "token", {}),
    ("bilstm", "token", dict(embedding_dim=16, hidden_size=8, num_layers=2, use_attention=True,
                             num_attention_heads=2, use_crf=True)),
    ("cnn", "token", dict(embedding_dim=16, num_blocks=2)),
    ("bilstm", "sequence", dict(embedding_dim=16, hidden_size=8, pooling="mean")),
    ("cnn", "sequence", dict(embedding_dim=16, pooling="first")),
    ("mlp", "sequence", {}),
])
def test_students_export_and_match_pytorch(family, task, kw, tmp_path, tokenizer, tokenized):
    model = build_student(family, tokenizer, task=task, labels=CONLL_LABELS if task == "token" else ["a", "b"],
                          **kw).eval()
    examples = _examples(tokenized["test"])
    report = export_onnx(model, str(tmp_path), examples=examples, tokenizer=tokenizer)
    assert report["max_abs_diff"] <= 1e-4
    assert report["inputs"] == ["input_ids", "attention_mask"]  # no token_type_ids the graph never reads
    # a padded batch of three (the export traced a batch of two)
    session = ort.InferenceSession(report["onnx_file"])
    ids = np.zeros((3, 12), dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, n in enumerate((12, 5, 1)):
        ids[row, :n] = np.arange(2, 2 + n)
        mask[row, :n] = 1
    got = session.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0]
    with torch.no_grad():
        want = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits.numpy()
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_word_level_student_exports_with_char_ids(tmp_path, conll):
    raw = conll["test"].select(range(50))
    tok, chars = build_word_tokenizer(raw["tokens"]), build_char_vocab(raw["tokens"])
    words = encode_words(raw, tok, chars)
    model = build_student("char_lstm", tok, labels=CONLL_LABELS, char_vocab=chars, hidden_size=16)
    report = export_onnx(model, str(tmp_path), examples=_examples(words))
    assert report["inputs"] == ["input_ids", "char_ids", "attention_mask"] and report["max_abs_diff"] <= 1e-4


def test_bert_teacher_and_bert_crf_export(tmp_path, tokenizer, tokenized):
    teacher = tiny_bert(len(tokenizer), layers=2, hidden=32)
    report = export_onnx(teacher, str(tmp_path / "bert"), examples=_examples(tokenized["test"]))
    assert report["max_abs_diff"] <= 1e-4 and "token_type_ids" in report["inputs"]
    teacher.save_pretrained(tmp_path / "plain")
    crf = BertCRFForTokenClassification.from_pretrained(tmp_path / "plain", crf_constraints=True).eval()
    with torch.no_grad():
        crf.crf.transitions.normal_(0, 2)
    report = export_onnx(crf, str(tmp_path / "crf"), examples=_examples(tokenized["test"]), quantize=True)
    assert report["max_abs_diff"] <= 1e-4 and report["onnx_int8_mb"] < report["onnx_mb"]
    # decoded tags from ONNX + numpy Viterbi equal the PyTorch CRF decode
    tagger = OnnxTagger(str(tmp_path / "crf"))
    for ex in _examples(tokenized["test"]):
        positions = np.asarray(ex["labels"]) != -100
        ids = torch.tensor([ex["input_ids"]])
        with torch.no_grad():
            em = crf(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
        want = crf.decode(em, torch.from_numpy(positions)[None])[0][torch.from_numpy(positions)].tolist()
        assert tagger.predict(ex, positions) == want
    assert OnnxTagger(str(tmp_path / "crf"), quantized=True).predict(ex, positions)


def test_numpy_viterbi_matches_the_torch_crf():
    from hf_distill.students.crf import LinearChainCRF

    torch.manual_seed(0)
    crf = LinearChainCRF(4)
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_()
    em = torch.randn(1, 6, 4)
    trans, start, end = (x.detach().numpy() for x in crf.potentials())
    assert viterbi(em[0].numpy(), trans, start, end) == crf.viterbi(em)[0]


def test_export_errors_are_clear(tmp_path):
    with pytest.raises(ExportError, match="not a model folder"):
        export_onnx(str(tmp_path), str(tmp_path / "out"))
    with pytest.raises(ExportError, match="no transformers config"):
        export_onnx(torch.nn.Linear(2, 2), str(tmp_path / "out"), task="token-classification")
    from transformers import GPT2Config, GPT2ForTokenClassification

    gpt = GPT2ForTokenClassification(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50))
    gpt.config.model_type = "not-a-model"
    with pytest.raises(ExportError, match="unsupported architecture 'not-a-model'.*hfd_bilstm"):
        export_onnx(gpt, str(tmp_path / "out"))


def test_validation_catches_a_broken_export(tmp_path, tokenizer, tokenized):
    model = build_student("window", tokenizer, labels=CONLL_LABELS)
    export_onnx(model, str(tmp_path))
    with torch.no_grad():
        model.classifier.bias.add_(1.0)  # PyTorch now differs from the exported graph
    from hf_distill.shipping.export import validate

    with pytest.raises(ExportError, match="differ from PyTorch"):
        validate(model, tmp_path / "model.onnx", _examples(tokenized["test"]), ["input_ids", "attention_mask"])


def test_export_gives_the_model_back_unchanged(tmp_path):
    """The exporter sets config fields and eval mode; a teacher exported for its ONNX cache must keep its
    fingerprint (the zoo keys students and the teacher's bench by it)."""
    from hf_distill.training.signals import teacher_fingerprint

    model = tiny_bert(60, layers=1, hidden=16, seed=0).train()
    before = teacher_fingerprint(model)
    export_onnx(model, str(tmp_path / "onnx"))
    assert teacher_fingerprint(model) == before and model.config.use_cache and model.training
