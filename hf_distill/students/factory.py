"""``build_student``: one entry point for every student family, with vocabulary checks."""

from __future__ import annotations

from transformers import PreTrainedModel

from .bert_crf import BertCRFConfig, BertCRFForTokenClassification
from .bilstm import BiLSTMConfig, BiLSTMForSequenceClassification, BiLSTMForTokenClassification
from .char_lstm import CharCNNWordLSTMForTokenClassification, CharLSTMConfig
from .cnn import CNNConfig, CNNForSequenceClassification, CNNForTokenClassification
from .mlp import MLPConfig, MLPForSequenceClassification
from .small_bert import SMALL_BERTS, small_bert
from .window import WindowConfig, WindowForTokenClassification

FAMILIES = {
    "window": (WindowConfig, {"token": WindowForTokenClassification}),
    "bilstm": (BiLSTMConfig, {"token": BiLSTMForTokenClassification, "sequence": BiLSTMForSequenceClassification}),
    "char_lstm": (CharLSTMConfig, {"token": CharCNNWordLSTMForTokenClassification}),
    "cnn": (CNNConfig, {"token": CNNForTokenClassification, "sequence": CNNForSequenceClassification}),
    "mlp": (MLPConfig, {"sequence": MLPForSequenceClassification}),
    "bert_crf": (BertCRFConfig, {"token": BertCRFForTokenClassification}),
}


def build_student(family: str, tokenizer=None, task: str = "token", labels: list[str] | None = None,
                  **config_kwargs) -> PreTrainedModel:
    """Build a student of ``family`` (window, bilstm, char_lstm, cnn, mlp, bert-tiny/mini/small).

    ``tokenizer`` sets ``vocab_size`` (and pad/unk ids); a ``vocab_size`` given as well must match it.
    ``labels`` sets ``num_labels``, ``id2label`` and ``label2id``.
    """
    if tokenizer is not None:
        n = len(tokenizer)
        given = config_kwargs.get("vocab_size")
        if given is not None and given != n:
            raise ValueError(f"vocab_size={given} does not match the tokenizer's vocabulary of {n} tokens")
        config_kwargs["vocab_size"] = n
        if tokenizer.pad_token_id is not None:
            config_kwargs.setdefault("pad_token_id", tokenizer.pad_token_id)
        if family == "bilstm" and tokenizer.unk_token_id is not None:
            config_kwargs.setdefault("unk_token_id", tokenizer.unk_token_id)
    if labels is not None:
        config_kwargs.update(num_labels=len(labels), id2label=dict(enumerate(labels)),
                             label2id={n: i for i, n in enumerate(labels)})
    if family in SMALL_BERTS:
        vocab = config_kwargs.pop("vocab_size", None)
        if vocab is None:
            raise ValueError(f"{family}: pass tokenizer= or vocab_size=")
        return small_bert(family, vocab, task=task, **config_kwargs)
    if family not in FAMILIES:
        raise ValueError(f"unknown student family {family!r}; choose one of {sorted(FAMILIES) + sorted(SMALL_BERTS)}")
    config_cls, models = FAMILIES[family]
    if task not in models:
        raise ValueError(f"student family {family!r} has no {task} classification model (has: {sorted(models)})")
    return models[task](config_cls(**config_kwargs))
