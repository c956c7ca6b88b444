"""bench_student and cards for a sequence classifier on real data (emotion), without a teacher."""

from __future__ import annotations

import configparser
import json
from pathlib import Path

import pytest
import torch

from hf_distill import load_dataset
from hf_distill.data.words import build_word_tokenizer
from hf_distill.shipping import cards
from hf_distill.shipping.bench import bench_student
from hf_distill.shipping.cards import render_card
from hf_distill.students import build_student


@pytest.fixture(scope="module")
def emotion(data_dir):
    return load_dataset("emotion", data_dir=str(data_dir))


def test_sequence_student_bench_and_card(tmp_path, emotion):
    names = emotion["train"].features["label"].names
    tok = build_word_tokenizer(emotion["train"]["text"][:2000], lowercase=True)
    torch.manual_seed(0)
    student = build_student("mlp", tok, task="sequence", labels=names)
    student.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    test = emotion["test"].select(range(40))
    eff = bench_student(str(tmp_path), test, runs=3, dataset_name="emotion")
    s = eff["student"]
    assert "teacher" not in eff and eff["examples"] == 40
    for kind in ("pytorch", "onnx", "onnx_int8"):
        assert 0.0 <= s[kind]["accuracy"] <= 1.0 and "macro_f1" in s[kind]
    assert s["onnx"]["accuracy"] == s["pytorch"]["accuracy"]
    # the PyTorch accuracy is the share of test rows whose argmax is the gold label
    rows = [tok(t, truncation=True, max_length=128) for t in test["text"]]
    with torch.no_grad():
        preds = [int(student(input_ids=torch.tensor([r["input_ids"]])).logits.argmax()) for r in rows]
    assert s["pytorch"]["accuracy"] == pytest.approx(sum(p == g for p, g in zip(preds, test["label"])) / 40)
    card = render_card(tmp_path, "org/emotion-mlp")
    assert "| model | accuracy | macro-F1 |" in str(card) and "AutoModelForSequenceClassification" in str(card)
    metrics = {m["name"]: m["value"] for m in card.data.to_dict()["model-index"][0]["results"][0]["metrics"]}
    assert metrics == {"accuracy": round(s["pytorch"]["accuracy"], 4), "macro_f1": round(s["pytorch"]["macro_f1"], 4)}
    assert json.loads((tmp_path / "efficiency.json").read_text())["dataset"] == "emotion"


def test_every_card_template_ships_with_a_wheel():
    """setup.cfg installs every model_cards/ template where default_template looks after a wheel install."""
    root = Path(__file__).resolve().parent.parent
    cfg = configparser.ConfigParser()
    cfg.read(root / "setup.cfg")
    shipped = {}
    for folder, files in cfg["options.data_files"].items():
        for f in files.split():
            shipped[Path(f).name] = folder
    templates = sorted(p.name for p in (root / "model_cards").iterdir() if p.suffix == ".md")
    assert templates and all(shipped.get(t) == "share/hf-distill/model_cards" for t in templates)
    assert cards.TEMPLATE_DIRS[1].parts[-3:] == ("share", "hf-distill", "model_cards")
    assert cards.default_template() == root / "model_cards" / "student_card.md"


def test_missing_card_template_names_the_folders(monkeypatch, tmp_path):
    monkeypatch.setattr(cards, "TEMPLATE_DIRS", (tmp_path / "a", tmp_path / "b"))
    with pytest.raises(FileNotFoundError, match="student_card.md not found in .*a, .*b"):
        cards.default_template()
