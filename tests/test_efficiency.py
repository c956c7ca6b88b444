"""FLOPs against hand counts; training FLOPs, break-even, sizes, latency and throughput helpers."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import CONLL_LABELS
from transformers import BertConfig, BertForTokenClassification

from hf_distill import DistillationCollator
from hf_distill.shipping.efficiency import (
    break_even,
    count_flops,
    file_sizes,
    measure_latency,
    measure_onnx_latency,
    measure_throughput,
    training_flops,
)
from hf_distill.students import build_student

L, N = 128, len(CONLL_LABELS)


def test_bert_flops_match_a_hand_count():
    h, inter, layers = 32, 64, 2
    config = BertConfig(vocab_size=100, hidden_size=h, num_hidden_layers=layers, num_attention_heads=4,
                        intermediate_size=inter, num_labels=N)
    model = BertForTokenClassification(config)
    per_layer = (3 * 2 * L * h * h  # query, key, value
                 + 2 * L * L * h * 2  # scores and attention-weighted values
                 + 2 * L * h * h  # attention output
                 + 2 * L * h * inter * 2)  # feed-forward in and out
    hand = layers * per_layer + 2 * L * h * N
    flops = count_flops(model, seq_len=L)
    assert flops["flops"] == hand
    assert flops["attention"] == layers * 4 * L * L * h
    assert count_flops(model, seq_len=L, batch=3)["flops"] == 3 * hand


def test_bilstm_flops_match_a_hand_count(tokenizer):
    e, h = 16, 8
    model = build_student("bilstm", tokenizer, labels=CONLL_LABELS, embedding_dim=e, hidden_size=h, num_layers=2)
    lstm = lambda size: 2 * (2 * 4 * h * (size + h) * L)  # noqa: E731  two directions, four gates
    hand = lstm(e) + lstm(2 * h) + 2 * L * 2 * h * N
    flops = count_flops(model, seq_len=L)
    assert flops["flops"] == hand and flops["recurrent"] == lstm(e) + lstm(2 * h)

    attn = build_student("bilstm", tokenizer, labels=CONLL_LABELS, embedding_dim=e, hidden_size=h,
                         use_attention=True, num_attention_heads=2)
    d = 2 * h
    extra = 2 * L * d * 3 * d + 2 * L * d * d + 4 * L * L * d
    assert count_flops(attn, seq_len=L)["flops"] == lstm(e) + extra + 2 * L * d * N


def test_cnn_and_char_lstm_flops_match_a_hand_count(tokenizer, conll):
    e, k, blocks = 16, 5, 3
    model = build_student("cnn", tokenizer, labels=CONLL_LABELS, embedding_dim=e, kernel_size=k, num_blocks=blocks)
    hand = blocks * (2 * L * e * k + 2 * L * e * e) + 2 * L * e * N
    assert count_flops(model, seq_len=L) == {"flops": hand, "linear": 2 * L * e * N, "conv": hand - 2 * L * e * N,
                                             "recurrent": 0, "attention": 0}

    from hf_distill.data.words import build_char_vocab, build_word_tokenizer

    words = conll["train"]["tokens"][:50]
    char = build_student("char_lstm", build_word_tokenizer(words), labels=CONLL_LABELS, embedding_dim=10,
                         hidden_size=6, char_vocab=build_char_vocab(words), char_embedding_dim=4, char_filters=5,
                         char_kernel_size=3)
    c = 15
    hand = 2 * (L * c) * 5 * 4 * 3 + 2 * (2 * 4 * 6 * (10 + 5 + 6) * L) + 2 * L * 12 * N
    assert count_flops(char, seq_len=L, char_len=c)["flops"] == hand


def test_unknown_layers_are_refused_not_undercounted():
    class WithMHA(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = torch.nn.MultiheadAttention(8, 2)

    with pytest.raises(NotImplementedError, match="MultiheadAttention"):
        count_flops(WithMHA())


def test_training_flops_and_break_even():
    assert training_flops(10, 7) == 210
    # teacher training + caching cost 1000; each inference saves 9 - 1 = 8: 125 inferences repay it
    assert break_even(1000, 9, 1) == 125
    assert break_even(1001, 9, 1) == 126
    assert break_even(1000, 1, 1) == math.inf


def test_sizes_latency_and_throughput(tmp_path, tokenizer, tokenized):
    from hf_distill.shipping.export import export_onnx

    model = build_student("window", tokenizer, labels=CONLL_LABELS, embedding_dim=8)
    model.save_pretrained(tmp_path / "model")
    export_onnx(model, str(tmp_path / "onnx"))
    sizes = file_sizes(tmp_path / "model", tmp_path / "onnx")
    assert sizes["safetensors_mb"] == pytest.approx((tmp_path / "model" / "model.safetensors").stat().st_size / 2**20)
    assert sizes["onnx_mb"] > 0 and sizes["onnx_int8_mb"] is None

    rows = [tokenized["test"][i] for i in range(5)]
    collate = DistillationCollator(tokenizer)
    torch_lat = measure_latency(model, rows, collate, warmup=1, runs=5)
    onnx_lat = measure_onnx_latency(tmp_path / "onnx" / "model.onnx", rows, collate, warmup=1, runs=5)
    for lat in (torch_lat, onnx_lat):
        assert lat["runs"] == 5 and lat["threads"] == 1 and lat["latency_ms"] > 0
    calls = []
    tput = measure_throughput(lambda b: calls.append(b["input_ids"].shape[0]), rows, collate, batch_size=2,
                              warmup_batches=1)
    assert calls == [2, 2, 2, 1] and tput["sentences"] == 5 and tput["sentences_per_s"] > 0
