"""Metrics: seqeval strict IOB2 entity scores by hand, classification accuracy and macro-F1."""

from __future__ import annotations

import numpy as np
import pytest
from transformers import EvalPrediction

from hf_distill.metrics import TokenClassificationMetrics, classification_metrics, seqeval_scores

NAMES = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def test_seqeval_strict_scores_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-LOC", "I-LOC", "O"]]
    pred = [["B-PER", "I-PER", "O", "O"], ["I-LOC", "I-LOC", "O"]]  # I-LOC start is not an entity in strict mode
    s = seqeval_scores(gold, pred)
    # predicted entities: PER(correct) -> precision 1/1; gold entities 3 -> recall 1/3
    assert s["precision"] == pytest.approx(1.0)
    assert s["recall"] == pytest.approx(1 / 3)
    assert s["f1"] == pytest.approx(0.5)
    assert s["PER_f1"] == pytest.approx(1.0) and s["LOC_f1"] == 0.0
    assert s["accuracy"] == pytest.approx(5 / 7)


def test_compute_metrics_skips_minus_100_positions():
    labels = np.array([[-100, 1, 2, -100, 0, 3, -100]])
    logits = np.zeros((1, 7, 5))
    for pos, lab in enumerate([0, 1, 2, 4, 0, 3, 0]):
        logits[0, pos, lab] = 1.0
    s = TokenClassificationMetrics(NAMES)(EvalPrediction(predictions=logits, label_ids=labels))
    assert s["f1"] == 1.0 and s["accuracy"] == 1.0


def test_classification_metrics():
    logits = np.eye(3)[[0, 1, 2, 2, 0]]
    labels = np.array([0, 1, 1, 2, -100])
    s = classification_metrics(EvalPrediction(predictions=logits, label_ids=labels))
    assert s["accuracy"] == pytest.approx(0.75)
    # per class F1: 0 -> 1.0, 1 -> 2/3, 2 -> 2/3
    assert s["macro_f1"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
