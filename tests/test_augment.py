"""Offline augmentation: Tang et al.'s operators and masked-LM substitution, deterministic under a seed."""

from __future__ import annotations

import pytest
import torch
from conftest import CONLL_LABELS, tiny_bert
from transformers import BertConfig, BertForMaskedLM, BertModel

from hf_distill.data.augment import MaskedLMAugmenter, TangAugmenter
from hf_distill.data.transfer import TransferSetError


def test_tang_operators_are_deterministic_and_record_sources(conll):
    rows = conll["train"].select(range(50))
    words, tags = rows["tokens"], rows["ner_tags"]
    aug = TangAugmenter(p_mask=0.2, p_swap=0.2, p_ngram=0.3, seed=7)
    a, b = aug.augment(words, copies=2, groups=tags), aug.augment(words, copies=2, groups=tags)
    assert a["tokens"] == b["tokens"] and a["source_row"] == b["source_row"]
    other = TangAugmenter(p_mask=0.2, p_swap=0.2, p_ngram=0.3, seed=8).augment(words, copies=2, groups=tags)
    assert other["tokens"] != a["tokens"]
    assert len(a) > 50 and set(a["source_row"]) <= set(range(50))
    assert any("[MASK]" in r for r in a["tokens"])
    assert all(r != words[i] for r, i in zip(a["tokens"], a["source_row"]))


def test_swaps_stay_within_their_group(conll):
    rows = conll["train"].select(range(80))
    words, tags = rows["tokens"], rows["ner_tags"]
    by_tag: dict = {}
    for ws, ts in zip(words, tags):
        for w, t in zip(ws, ts):
            by_tag.setdefault(t, set()).add(w)
    out = TangAugmenter(p_mask=0.0, p_swap=0.5, p_ngram=0.0, seed=0).augment(words, groups=tags)
    for new, i in zip(out["tokens"], out["source_row"]):
        assert len(new) == len(words[i])
        for w, t in zip(new, tags[i]):
            assert w in by_tag[t]  # an entity word is replaced by an entity word of the same tag


def test_text_rows_stay_text():
    out = TangAugmenter(p_mask=0.5, p_ngram=0.0, seed=1).augment(["i feel so happy today", "i am sad"], copies=3)
    assert "text" in out.column_names and all(isinstance(t, str) for t in out["text"])
    with pytest.raises(ValueError, match="p_mask"):
        TangAugmenter(p_mask=1.5)


def _mlm_folder(tmp_path, tokenizer, cls=BertForMaskedLM):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    folder = tmp_path / cls.__name__
    cls(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_masked_lm_substitution(tmp_path, tokenizer, conll):
    folder = _mlm_folder(tmp_path, tokenizer)
    words = conll["train"].select(range(20))["tokens"]
    a = MaskedLMAugmenter(folder, fraction=0.3, seed=3).augment(words, copies=2)
    b = MaskedLMAugmenter(folder, fraction=0.3, seed=3).augment(words, copies=2)
    c = MaskedLMAugmenter(folder, fraction=0.3, seed=4).augment(words, copies=2)
    assert a["tokens"] == b["tokens"] and a["tokens"] != c["tokens"] and len(a) > 20
    vocab = tokenizer.get_vocab()
    for new, i in zip(a["tokens"], a["source_row"]):
        assert len(new) == len(words[i])
        changed = [w for w, old in zip(new, words[i]) if w != old]
        assert changed and all(w in vocab and not w.startswith("##") and not w.startswith("[") for w in changed)


def test_a_folder_without_masked_lm_head_is_refused(tmp_path, tokenizer):
    with pytest.raises(TransferSetError, match="not a masked language model"):
        MaskedLMAugmenter(_mlm_folder(tmp_path, tokenizer, BertModel))
    folder = tmp_path / "tagger"
    tiny_bert(len(tokenizer), labels=CONLL_LABELS).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    with pytest.raises(TransferSetError, match="not a masked language model"):
        MaskedLMAugmenter(folder)
