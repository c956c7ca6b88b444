"""Readers, schemes and the registry, checked against the real files (counts from shared/data/PROVENANCE.md)."""

from __future__ import annotations

import collections

import pytest

from hf_distill.data import (
    SUC_TO_CONLL,
    DataFormatError,
    TagSchemeError,
    io_to_iob2,
    iob1_to_iob2,
    load_dataset,
    map_entity_types,
    validate_iob2,
)
from hf_distill.data.schemes import split_tag


def _entities(ds, column="ner_tags"):
    """conlleval-style chunk counts per type (an entity starts at B-, or at I- after another type or O)."""
    names = ds.features[column].feature.names
    counts = collections.Counter()
    for tags in ds[column]:
        prev = None
        for t in (names[i] for i in tags):
            prefix, typ = split_tag(t)
            if typ is not None and (prefix == "B" or typ != prev):
                counts[typ] += 1
            prev = typ
    return dict(counts)


def _tokens(ds):
    return sum(len(t) for t in ds["tokens"])


def test_conll2003_counts(conll):
    expected = {
        "train": (14041, 203621, {"LOC": 7140, "MISC": 3438, "ORG": 6321, "PER": 6600}),
        "validation": (3250, 51362, {"LOC": 1837, "MISC": 922, "ORG": 1341, "PER": 1842}),
        "test": (3453, 46435, {"LOC": 1668, "MISC": 702, "ORG": 1661, "PER": 1617}),
    }
    for split, (sentences, tokens, entities) in expected.items():
        ds = conll[split]
        assert (len(ds), _tokens(ds), _entities(ds)) == (sentences, tokens, entities), split
    assert conll["train"].features["ner_tags"].feature.names == [
        "O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
    assert set(conll["train"].column_names) == {"id", "tokens", "pos_tags", "chunk_tags", "ner_tags"}


def test_iob1_copy_converts_to_the_iob2_copy(data_dir, conll):
    from hf_distill.data.registry import REGISTRY, _read

    spec = REGISTRY["conll2003"]
    iob1 = _read(spec, spec.layouts[2], str(data_dir), strict=False)["test"]
    names1 = iob1.features["ner_tags"].feature.names
    names2 = conll["test"].features["ner_tags"].feature.names
    for a, b in zip(iob1["ner_tags"], conll["test"]["ner_tags"]):
        assert [names1[i] for i in a] == [names2[i] for i in b]
    validate_iob2([names1[i] for s in iob1["ner_tags"] for i in s], strict=True)


@pytest.mark.parametrize(
    "name,sizes,tokens",
    [
        ("conll2000", {"train": 8936, "test": 2012}, {"train": 211727, "test": 47377}),
        ("swedish-ner", {"train": 6885, "test": 2453}, {"train": 113125, "test": 42208}),
        ("indonlu-nergrit", {"train": 1672, "validation": 209, "test": 209}, {"train": 56210}),
        ("indonlu-nerp", {"train": 6720, "validation": 840, "test": 840}, {"train": 156409}),
        ("indonlu-posp", {"train": 6720, "validation": 840, "test": 840}, {"validation": 19629}),
        ("indonlu-terma", {"train": 3000, "validation": 1000, "test": 1000}, {"test": 15498}),
    ],
)
def test_token_dataset_counts(data_dir, name, sizes, tokens):
    ds = load_dataset(name, data_dir=str(data_dir))
    assert {k: len(v) for k, v in ds.items()} == sizes
    for split, n in tokens.items():
        assert _tokens(ds[split]) == n


def test_entity_counts_of_converted_schemes(data_dir):
    sv = load_dataset("swedish-ner", data_dir=str(data_dir))
    assert _entities(sv["train"]) == {"PER": 1587, "LOC": 1336, "ORG": 880, "MISC": 397}
    assert _entities(sv["test"]) == {"PER": 612, "LOC": 355, "ORG": 313, "MISC": 123}
    chunk = load_dataset("conll2000", data_dir=str(data_dir))["test"]
    assert sum(_entities(chunk, "chunk_tags").values()) == 23852
    grit = load_dataset("indonlu-nergrit", data_dir=str(data_dir))["train"]
    assert _entities(grit) == {"PERSON": 1618, "PLACE": 2688, "ORGANISATION": 1015}
    posp = load_dataset("indonlu-posp", data_dir=str(data_dir))["train"]
    assert len(posp.features["pos_tags"].feature.names) == 26


def test_classification_counts(data_dir):
    emo = load_dataset("emotion", data_dir=str(data_dir))
    assert {k: len(v) for k, v in emo.items()} == {"train": 16000, "validation": 2000, "test": 2000}
    names = emo["train"].features["label"].names
    assert names == ["sadness", "joy", "love", "anger", "fear", "surprise"]
    assert collections.Counter(emo["test"]["label"]) == {0: 581, 1: 695, 2: 159, 3: 275, 4: 224, 5: 66}
    assert emo["train"][0]["text"] == "i didnt feel humiliated"
    emot = load_dataset("indonlu-emot", data_dir=str(data_dir))
    assert {k: len(v) for k, v in emot.items()} == {"train": 3521, "validation": 440, "test": 440}
    counts = collections.Counter(emot["train"].features["label"].names[i] for i in emot["train"]["label"])
    assert counts == {"anger": 881, "fear": 519, "happy": 814, "love": 509, "sadness": 798}
    smsa = load_dataset("indonlu-smsa", data_dir=str(data_dir))
    assert {k: len(v) for k, v in smsa.items()} == {"train": 11000, "validation": 1260, "test": 500}
    counts = collections.Counter(smsa["test"].features["label"].names[i] for i in smsa["test"]["label"])
    assert counts == {"positive": 208, "negative": 204, "neutral": 88}


def test_data_dir_from_environment(monkeypatch, data_dir):
    monkeypatch.setenv("HF_DISTILL_DATA_DIR", str(data_dir))
    assert len(load_dataset("indonlu-nergrit")["validation"]) == 209


# ---------------------------------------------------------------- schemes
def test_iob1_and_io_to_iob2():
    assert iob1_to_iob2(["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG"]) == [
        "B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG"]
    assert io_to_iob2(["0", "PER", "PER", "0", "LOC", "ORG", "ORG"]) == [
        "O", "B-PER", "I-PER", "O", "B-LOC", "B-ORG", "I-ORG"]


def test_strict_validation_only_when_asked():
    validate_iob2(["O", "I-PER"], strict=False)
    with pytest.raises(TagSchemeError, match="follows O"):
        validate_iob2(["O", "I-PER"], strict=True)
    with pytest.raises(TagSchemeError, match="follows a LOC tag"):
        validate_iob2(["B-LOC", "I-PER"])
    validate_iob2(["B-LOC", "I-LOC", "O", "B-PER"])


def test_suc_type_map():
    tags = ["B-person", "I-person", "B-animal", "B-myth", "B-place", "B-inst", "B-product", "B-work", "B-event",
            "B-other", "O"]
    assert map_entity_types(tags, SUC_TO_CONLL) == [
        "B-PER", "I-PER", "B-PER", "B-PER", "B-LOC", "B-ORG", "B-MISC", "B-MISC", "B-MISC", "B-MISC", "O"]
    with pytest.raises(KeyError, match="'misc'"):
        map_entity_types(["B-misc"], SUC_TO_CONLL)


# ---------------------------------------------------------------- errors and local files
def test_unknown_name_lists_the_registry():
    with pytest.raises(ValueError, match="unknown dataset 'conll2033'.*conll2003"):
        load_dataset("conll2033")


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"conll2003/neuroner/train\.txt"):
        load_dataset("conll2003", data_dir=str(tmp_path))


def test_no_local_copy_and_no_hub_says_what_to_do(monkeypatch):
    monkeypatch.delenv("HF_DISTILL_DATA_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="HF_DISTILL_DATA_DIR.*dair-ai/emotion"):
        load_dataset("emotion")


def test_malformed_line_names_file_and_line(tmp_path):
    (tmp_path / "train.txt").write_text("EU B-ORG\nrejects O\n\nGerman\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"train\.txt:4: expected at least 2 columns"):
        load_dataset(str(tmp_path))


def test_label_outside_the_label_set_names_file_and_line(tmp_path, data_dir):
    root = tmp_path / "conll2003"
    root.mkdir()
    good = "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n"
    for name in ("train.txt", "valid.txt"):
        (root / name).write_text(good, encoding="utf-8")
    (root / "test.txt").write_text(good + "Peter NNP B-NP B-PERSON\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"test\.txt:6: label 'B-PERSON'"):
        load_dataset("conll2003", data_dir=str(tmp_path))


def test_strict_loading_rejects_i_after_o(tmp_path):
    (tmp_path / "train.txt").write_text("a O\nb I-PER\n", encoding="utf-8")
    assert len(load_dataset(str(tmp_path))["train"]) == 1
    with pytest.raises(DataFormatError, match=r"train\.txt:1: tag 'I-PER' at token 1 follows O"):
        load_dataset(str(tmp_path), strict=True)


def test_conllu_like_iob2_files(tmp_path):
    text = "# sent_id = 1\n# text = Budi ke Jakarta\n1\tBudi\tB-PER\n2\tke\tO\n3\tJakarta\tB-LOC\n\n"
    (tmp_path / "train.iob2").write_text(text, encoding="utf-8")
    (tmp_path / "test.iob2").write_text(text, encoding="utf-8")
    ds = load_dataset(str(tmp_path))
    assert ds["test"][0]["tokens"] == ["Budi", "ke", "Jakarta"]
    names = ds["train"].features["ner_tags"].feature.names
    assert [names[i] for i in ds["train"][0]["ner_tags"]] == ["B-PER", "O", "B-LOC"]


def test_classification_files_and_their_errors(tmp_path):
    (tmp_path / "train.jsonl").write_text('{"text": "good", "label": "pos"}\n{"text": "meh"}\n', encoding="utf-8")
    ds = load_dataset(str(tmp_path / "train.jsonl"))["train"]
    assert ds["label"] == [0, -1]  # a row without a label is unlabeled data
    (tmp_path / "bad.jsonl").write_text('{"text": "good", "label": "pos"}\n{"text": \n', encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"bad\.jsonl:2: invalid JSON"):
        load_dataset(str(tmp_path / "bad.jsonl"))
    (tmp_path / "d.tsv").write_text("nice place\tpositive\nno tab here\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"d\.tsv:2: expected 'text<TAB>label'"):
        load_dataset(str(tmp_path / "d.tsv"))
    (tmp_path / "d.csv").write_text("label,body\npos,hi\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"d\.csv:1: header"):
        load_dataset(str(tmp_path / "d.csv"))


def test_registered_iob2_tag_files_read_a_stray_i_as_conlleval_does(tmp_path, caplog):
    """IndoNLU NERP has ``I-X`` after ``O``: its tag column is declared IOB2, so the tag opens an entity (``B-X``,
    as conlleval and the CRF constraints read it) and the repair is logged, naming the file."""
    import logging

    folder = tmp_path / "indonlu" / "nerp_ner-prosa"
    folder.mkdir(parents=True)
    for split in ("train", "valid", "test"):
        (folder / f"{split}_preprocess.txt").write_text("Budi\tB-PPL\nke\tO\nJakarta\tI-PLC\nkota\tI-PLC\n\n")
    with caplog.at_level(logging.WARNING):
        data = load_dataset("indonlu-nerp", data_dir=str(tmp_path))
    names = data["train"].features["ner_tags"].feature.names
    assert [names[t] for t in data["train"][0]["ner_tags"]] == ["B-PPL", "O", "B-PLC", "I-PLC"]
    assert "train_preprocess.txt: 1 sentences had I-X after O" in caplog.text
