"""Evaluation metrics: seqeval entity P/R/F1 (strict IOB2) and token accuracy; accuracy and macro-F1."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from seqeval.metrics import classification_report
from seqeval.scheme import IOB2
from sklearn.metrics import accuracy_score, f1_score

from .base import IGNORE_INDEX


def align_predictions(predictions: np.ndarray, label_ids: np.ndarray, label_names: Sequence[str]):
    """Keep the positions whose gold label is not -100; return (gold, predicted) tag sequences."""
    preds = predictions.argmax(-1) if predictions.ndim == 3 else predictions
    gold_seqs, pred_seqs = [], []
    for p_row, l_row in zip(preds, label_ids):
        keep = l_row != IGNORE_INDEX
        gold_seqs.append([label_names[i] for i in l_row[keep]])
        pred_seqs.append([label_names[i] for i in p_row[keep]])
    return gold_seqs, pred_seqs


def _iob2_shaped(tags: list[str]) -> list[str]:
    """Tags as seqeval's strict IOB2 mode reads them without failing: a bare type (IO tags such as ``PERSON``) is
    ``B-`` where it opens an entity and ``I-`` where it continues one; ``O``, ``B-X`` and ``I-X`` stay."""
    if all(t == "O" or (len(t) > 2 and t[1] == "-" and t[0] in "BI") for t in tags):
        return tags
    out, prev = [], None
    for t in tags:
        if t == "O" or (len(t) > 2 and t[1] == "-" and t[0] in "BI"):
            out.append(t)
            prev = None if t == "O" else t[2:]
        else:
            out.append(f"I-{t}" if t == prev else f"B-{t}")
            prev = t
    return out


def seqeval_scores(gold: list[list[str]], pred: list[list[str]]) -> dict[str, float]:
    """Overall and per-type precision/recall/F1 (strict IOB2 entity matching) and token accuracy. Labels of
    another shape (bare IO types) are scored as IOB2 entities of that type, never refused."""
    if not any(gold):
        raise ValueError("no gold labels to score against (every label is -100): the evaluation split is unlabeled "
                         "or its label column was not found")
    report = classification_report([_iob2_shaped(list(s)) for s in gold], [_iob2_shaped(list(s)) for s in pred],
                                   mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    out = {
        "precision": report["micro avg"]["precision"],
        "recall": report["micro avg"]["recall"],
        "f1": report["micro avg"]["f1-score"],
    }
    for name, row in report.items():
        if name not in ("micro avg", "macro avg", "weighted avg"):
            out[f"{name}_f1"] = row["f1-score"]
    flat_gold = [t for s in gold for t in s]
    flat_pred = [t for s in pred for t in s]
    out["accuracy"] = float(np.mean([g == p for g, p in zip(flat_gold, flat_pred)])) if flat_gold else 0.0
    return {k: float(v) for k, v in out.items()}


class TokenClassificationMetrics:
    """``compute_metrics`` for ``Trainer``: seqeval scores over first-sub-word positions."""

    def __init__(self, label_names: Sequence[str]):
        self.label_names = list(label_names)

    def __call__(self, eval_pred) -> dict[str, float]:
        predictions, label_ids = eval_pred.predictions, eval_pred.label_ids
        if isinstance(predictions, tuple):
            predictions = predictions[0]
        return seqeval_scores(*align_predictions(np.asarray(predictions), np.asarray(label_ids), self.label_names))


def classification_scores(predictions: np.ndarray, label_ids: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-F1 over labeled examples (label != -100)."""
    preds = predictions.argmax(-1) if predictions.ndim == 2 else predictions
    keep = label_ids != IGNORE_INDEX
    if not keep.any():
        raise ValueError("no gold labels to score against (every label is -100): the evaluation split is unlabeled")
    return {
        "accuracy": float(accuracy_score(label_ids[keep], preds[keep])),
        "macro_f1": float(f1_score(label_ids[keep], preds[keep], average="macro", zero_division=0)),
    }


def classification_metrics(eval_pred) -> dict[str, float]:
    """``compute_metrics`` for sequence classification: accuracy and macro-F1."""
    predictions = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
    return classification_scores(np.asarray(predictions), np.asarray(eval_pred.label_ids))
