"""The zoo's defaults that close the gap to the teacher: the augmented transfer set, word vectors (GloVe, a file,
static teacher vectors), CRF students, and the teacher benched in every backend."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import CONLL_LABELS, tiny_bert

from hf_distill.data.transfer import row_key
from hf_distill.runs import TaskSpec
from hf_distill.zoo import ZooArguments, fastest_backend, load_splits, run_zoo, static_teacher_vectors
from hf_distill.zoo.report import summary
from hf_distill.zoo.splits import transfer_rows


def _teacher(tmp_path, tokenizer):
    folder = tmp_path / "teacher"
    tiny_bert(len(tokenizer), layers=1, hidden=16, seed=3, labels=CONLL_LABELS).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_the_augmented_transfer_set_never_holds_a_dev_or_test_sentence(data_dir, tokenizer):
    args = ZooArguments(teacher="t", data_dir=str(data_dir), max_train_samples=300, augment_copies=4)
    raw = load_splits(args)
    # plant dev and test sentences in train: their copies (and n-grams of them) are the likeliest leaks
    import datasets

    planted = datasets.concatenate_datasets([raw["train"], raw["validation"].select(range(50)),
                                             raw["test"].select(range(50))])
    raw["train"] = planted
    task = TaskSpec.of(raw["train"])
    said = []
    rows, counts = transfer_rows(args, raw, task, tokenizer, said.append)
    banned = {row_key(r) for split in ("validation", "test") for r in raw[split]["tokens"]}
    assert rows is not None and len(rows) == counts["kept"] > 0
    assert not any(row_key(r) in banned for r in rows["tokens"])
    assert len({row_key(r) for r in rows["tokens"]}) == len(rows)  # deduplicated
    assert counts["augmented"] > counts["kept"] and "overlaps_excluded" in said[0]
    none, nothing = transfer_rows(ZooArguments(teacher="t", augment="none"), raw, task, tokenizer, said.append)
    assert none is None and nothing == {}


def test_bad_zoo_options_are_refused_by_name():
    with pytest.raises(ValueError, match="--augment_copies -1"):
        ZooArguments(teacher="t", augment_copies=-1)
    with pytest.raises(ValueError, match="--augment 'eda'"):
        ZooArguments(teacher="t", augment="eda")


def test_static_teacher_vectors_are_deterministic_and_fit_the_student(tokenizer):
    from hf_distill.data.words import build_word_tokenizer

    teacher = tiny_bert(len(tokenizer), layers=1, hidden=16, seed=3)
    words = build_word_tokenizer([["EU", "rejects", "German", "call"], ["Peter", "Blackburn", "EU"]])
    first = static_teacher_vectors(words, tokenizer, teacher, dim=8)
    again = static_teacher_vectors(words, tokenizer, teacher, dim=8)
    assert first.shape == (len(words), 8) and torch.equal(first, again)
    assert torch.all(first[0] == 0) and torch.isfinite(first).all()
    assert static_teacher_vectors(words, tokenizer, teacher, dim=64).shape == (len(words), 16)  # at most hidden


def test_teacher_vocabulary_words_are_whole_words_in_the_training_script(tokenizer):
    from hf_distill.zoo.words import teacher_vocabulary_words

    class SentencePiece:  # the shape of an XLM-R vocabulary: word starts marked, several scripts
        all_special_tokens = ["<s>", "</s>", "<unk>"]

        def get_vocab(self):
            pieces = ["<s>", "</s>", "<unk>", "\u2581de", "s", "\u2581Stockholm", "\u2581\u043d\u0430", "\u2581a",
                      "holm", "\u2581Göteborg", "\u25812019", "\u2581Malmö"]
            return {p: i for i, p in enumerate(pieces)}

    chars = set("abcdefghijklmnopqrstuvwxyzMSö0123456789")
    assert teacher_vocabulary_words(SentencePiece(), chars, 10) == ["de", "Stockholm", "Malmö"]  # no G: Göteborg is out
    assert teacher_vocabulary_words(SentencePiece(), chars, 2) == ["de", "Stockholm"]
    words = teacher_vocabulary_words(tokenizer, set("abcdefghijklmnopqrstuvwxyz"), 50)  # WordPiece: no ##pieces
    assert words and all(not w.startswith("##") and w not in tokenizer.all_special_tokens for w in words)


def test_teacher_pieces_carry_the_teachers_embeddings_and_split_unseen_words(tokenizer):
    from hf_distill.data.words import PieceSegmenter
    from hf_distill.zoo.words import teacher_pieces

    teacher = tiny_bert(len(tokenizer), layers=1, hidden=16, seed=3)
    vocab, matrix, lowercase = teacher_pieces(tokenizer, teacher, set("abcdefghijklmnopqrstuvwxyz"), ["playing"],
                                              limit=200)
    assert vocab[:2] == ["<pad>", "<unk>"] and matrix.shape == (len(vocab), 16) and not matrix[:2].any()
    table = teacher.get_input_embeddings().weight.detach()
    for word in ("playing", "unplayable"):  # a training word, and one no training row holds
        ids = PieceSegmenter(vocab, lowercase)(word)
        assert 1 not in ids  # every character is held by some piece
        teacher_ids = [tokenizer.convert_tokens_to_ids(vocab[i].lstrip("\u2581") if vocab[i][0] == "\u2581"
                                                       else "##" + vocab[i]) for i in ids]
        torch.testing.assert_close(matrix[ids], table[teacher_ids])  # each piece keeps the teacher's row


def test_word_dropout_and_pieces_are_implied_only_for_vectors_from_the_teacher():
    from hf_distill.zoo.specs import TEACHER_VECTORS_WORD_DROPOUT, StudentSpec, implied_config

    crf = StudentSpec.parse("charcnn-wordlstm-crf")
    assert implied_config(crf, {"source": "teacher"}) == {"word_dropout": TEACHER_VECTORS_WORD_DROPOUT,
                                                          "freeze_embeddings": False}
    assert implied_config(crf, {"source": "static"}) == {"word_dropout": TEACHER_VECTORS_WORD_DROPOUT}
    # the teacher's pieces go with its pooled sub-word embeddings (the space they share), not with static vectors
    # ... and a word table that trains: the preset's frozen table is a default the zoo replaces
    assert implied_config(crf, {"source": "teacher", "pieces": 9}) == {
        "word_dropout": TEACHER_VECTORS_WORD_DROPOUT, "word_pieces": True, "freeze_embeddings": False}
    assert "word_pieces" not in implied_config(crf, {"source": "static", "pieces": 9})
    no_pieces = StudentSpec.parse('np=char_lstm:{"word_vectors": true, "word_pieces": false}')
    assert implied_config(no_pieces, {"source": "teacher", "pieces": 9}) == {
        "word_dropout": TEACHER_VECTORS_WORD_DROPOUT}  # a spec's own fields stand (unfrozen is its default)
    frozen = StudentSpec.parse('fr=char_lstm:{"word_vectors": true, "freeze_embeddings": true}')
    assert "freeze_embeddings" not in implied_config(frozen, {"source": "teacher", "pieces": 9})
    assert implied_config(crf, {"source": "glove"}) == {}  # GloVe's 100k words: few unknown words to learn
    assert implied_config(StudentSpec.parse("charcnn-wordlstm-random"), {"source": "teacher"}) == {}
    assert implied_config(StudentSpec.parse("cnn"), {"source": "teacher"}) == {}
    own = StudentSpec.parse('wd=char_lstm:{"word_vectors": true, "word_dropout": 0.3}')
    assert implied_config(own, {"source": "teacher"}) == {}  # the spec's own value stands


def test_a_word_vector_file_without_any_training_word_is_refused(tmp_path, tokenizer):
    from hf_distill.data.words import build_word_tokenizer
    from hf_distill.zoo import choose_word_vectors

    vectors = tmp_path / "vectors.txt"
    vectors.write_text("zzqx 0.1 0.2\nqqzy 0.3 0.4\n")
    words = build_word_tokenizer([["EU", "rejects", "German", "call"]])
    teacher = tiny_bert(len(tokenizer), layers=1, hidden=16, seed=3)
    with pytest.raises(ValueError, match=f"{vectors}: none of the 4 training words"):
        choose_word_vectors(str(vectors), words, tokenizer, teacher)
    vectors.write_text("eu 0.1 0.2\nqqzy 0.3 0.4\n")
    matrix, report = choose_word_vectors(str(vectors), words, tokenizer, teacher)
    assert matrix.shape == (len(words), 2) and report["coverage"] == 0.25
    torch.testing.assert_close(matrix[words.get_vocab()["EU"]], torch.tensor([0.1, 0.2]))  # case-folded match


def test_fastest_backend_keeps_the_teachers_f1():
    measured = {"pytorch": {"f1": 0.90, "latency_ms": 10.0}, "onnx": {"f1": 0.90, "latency_ms": 5.0},
                "onnx_int8": {"f1": 0.893, "latency_ms": 2.0}}
    assert fastest_backend(measured) == {"backend": "onnx", "latency_ms": 5.0, "f1": 0.90}  # int8 loses 0.7 F1
    measured["onnx_int8"]["f1"] = 0.897
    assert fastest_backend(measured)["backend"] == "onnx_int8"


def test_speedups_and_the_recommendation_are_against_the_teachers_fastest_backend():
    teacher = {"f1": 0.90, "latency_ms": 4.0, "fastest": {"backend": "onnx_int8", "latency_ms": 4.0},
               "f1_by_backend": {"pytorch": 0.90, "onnx": 0.90, "onnx_int8": 0.899},
               "latency_ms_by_backend": {"pytorch": 20.0, "onnx": 8.0, "onnx_int8": 4.0}}
    rows = [{"name": "s", "spec": "s", "seed": 42, "family": "bilstm", "kd": True, "f1": 0.895, "backend": "onnx",
             "latency_ms": 0.5},
            {"name": "s-seed43", "spec": "s", "seed": 43, "family": "bilstm", "kd": True, "f1": 0.885,
             "backend": "onnx", "latency_ms": 0.5},
            {"name": "s-no-kd", "spec": "s", "seed": 42, "family": "bilstm", "kd": False, "f1": 0.85,
             "backend": "onnx", "latency_ms": 0.5}]
    args = ZooArguments(teacher="t", seeds=[43])
    out = summary(args, rows, teacher, {"within_f1_drop": {"name": "s"}}, "s", None, None)
    rec = out["recommended"]
    assert rec["speedup_vs_teacher_fastest"] == pytest.approx(8.0)  # 4.0 / 0.5, not PyTorch's 20 / 0.5
    assert rec["f1_seeds"] == [0.895, 0.885] and rec["no_kd_f1_seeds"] == [0.85]
    assert rec["kd_gain"] == pytest.approx(0.04)
    assert out["teacher"]["fastest_backend"] == "onnx_int8" and len(out["students"]) == 2


@pytest.mark.slow
@pytest.mark.parametrize("vectors", ["static", "teacher"])
def test_zoo_benches_the_teacher_in_three_backends_and_ships_a_crf_student(tmp_path, tokenizer, data_dir, vectors):
    from hf_distill.base import extra_model_inputs
    from hf_distill.shipping.bench import encode_for, onnx_predictions, torch_predictions
    from hf_distill.shipping.export import load_model
    from hf_distill.training.collator import DistillationCollator

    teacher = _teacher(tmp_path, tokenizer)
    args = ZooArguments(
        teacher=str(teacher), data_dir=str(data_dir), output_dir=str(tmp_path / "zoo"),
        students=['crf=char_lstm:{"hidden_size": 8, "char_filters": 8, "word_vectors": true, "use_crf": true, '
                  '"crf_constraints": true}@1e-2'],
        word_vectors=vectors, augment_copies=1, max_train_samples=32, max_dev_samples=16, max_eval_samples=24,
        epochs=2, patience=1, bench_runs=2)
    out = run_zoo(args)
    t = json.loads((tmp_path / "zoo" / "teacher.json").read_text())
    assert set(t["f1_by_backend"]) == {"pytorch", "onnx", "onnx_int8"}
    assert t["fastest"]["backend"] in t["f1_by_backend"]
    assert t["latency_ms"] == min(t["latency_ms_by_backend"][k] for k in t["f1_by_backend"]
                                  if t["f1_by_backend"][k] >= t["f1_by_backend"]["pytorch"] - 0.005)
    row = out["students"][0]
    assert row["speedup_vs_teacher_fastest"] == pytest.approx(t["latency_ms"] / row["latency_ms"])
    report = row["word_vectors"]
    assert report["source"] == vectors and report["extra_words"] == "teacher vocabulary"
    assert report["vocabulary"] > report["training_words"]  # the teacher's words get vectors too
    assert out["transfer"]["augmented"] > 0 and row["train_rows"] > 32
    # the CRF student decodes the same tags in ONNX (Viterbi inside the graph) as in PyTorch
    model_dir = tmp_path / "zoo" / "students" / "crf" / "model"
    model = load_model(str(model_dir))
    assert model.config.word_dropout == 0.1  # the zoo's word dropout for vectors from the teacher
    # with the teacher's pooled embeddings, unknown words read the mean of the teacher's pieces
    assert bool(model.config.piece_vocab) == (vectors == "teacher") == ("pieces" in report)
    from transformers import AutoTokenizer

    words = AutoTokenizer.from_pretrained(model_dir)
    rows = list(encode_for(model, words, load_splits(args)["test"]))
    collate = DistillationCollator(words, extra_inputs=extra_model_inputs(model))
    torch_tags = torch_predictions(model, rows, collate)
    onnx_tags = onnx_predictions(model_dir / "onnx", rows)
    assert all((a == b).all() for a, b in zip(torch_tags, onnx_tags))
    assert row["f1_pytorch"] == row["f1_onnx"]
    if vectors == "teacher":  # the graph reads the pieces; pipelines build them from raw text in both backends
        import onnxruntime

        from hf_distill.shipping.pipelines import student_pipeline

        graph = onnxruntime.InferenceSession(str(model_dir / "onnx" / "model.onnx"))
        assert "piece_ids" in {i.name for i in graph.get_inputs()}
        text = "Zorblatt visited Qwmxville"  # words no vocabulary holds
        assert [w["entity_group"] for w in student_pipeline(model_dir)(text)] == \
            [w["entity_group"] for w in student_pipeline(model_dir / "onnx")(text)]


def test_a_crf_student_is_refused_for_text_classification(tmp_path, tokenizer, data_dir):
    from transformers import BertConfig, BertForSequenceClassification

    labels = ["anger", "fear", "joy", "love", "sadness", "surprise"]
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, num_labels=6, id2label=dict(enumerate(labels)),
                        label2id={n: i for i, n in enumerate(labels)})
    BertForSequenceClassification(config).save_pretrained(tmp_path / "t")
    tokenizer.save_pretrained(tmp_path / "t")
    args = ZooArguments(teacher=str(tmp_path / "t"), dataset="emotion", data_dir=str(data_dir),
                        students=["charcnn-wordlstm-crf"], output_dir=str(tmp_path / "zoo"))
    with pytest.raises(ValueError, match=r"\['charcnn-wordlstm-crf'\] have a CRF head"):
        run_zoo(args)


def test_the_default_zoo_of_a_classification_set_adds_the_attention_bilstm(tmp_path, tokenizer, data_dir):
    """With --students left alone, text classification trains the CNN and the attention BiLSTM over the teacher's
    sub-word embeddings (measured on emotion: it beat the CNN, the only default before)."""
    from conftest import save_emotion_teacher

    from hf_distill.zoo import DEFAULT_CLASSIFIERS, ZooArguments, run_zoo

    save_emotion_teacher(tmp_path / "teacher", tokenizer, data_dir)
    out = run_zoo(ZooArguments(
        teacher=str(tmp_path / "teacher"), dataset="emotion", data_dir=str(data_dir), output_dir=str(tmp_path / "zoo"),
        max_train_samples=32, max_dev_samples=16, max_eval_samples=16, epochs=1, patience=1, bench_runs=1,
        quantize=False, augment="none"))
    assert DEFAULT_CLASSIFIERS == ("cnn", "bilstm-att-B")
    assert sorted(r["name"] for r in out["students"]) == ["bilstm-att-B", "cnn"]
    config = json.loads((tmp_path / "zoo" / "students" / "bilstm-att-B" / "model" / "config.json").read_text())
    assert config["use_attention"] and config["embedding_dim"] == 16  # the (tiny) teacher's embedding width
