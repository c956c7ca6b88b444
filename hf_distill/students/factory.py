"""The built-in student families (one record each) and ``build_student``, the one entry point that builds any
registered family with vocabulary and label checks."""

from __future__ import annotations

import torch
from transformers import BertConfig, BertForSequenceClassification, BertForTokenClassification, PreTrainedModel

from .bert_crf import BertCRFConfig, BertCRFForTokenClassification
from .bilstm import BiLSTMConfig, BiLSTMForSequenceClassification, BiLSTMForTokenClassification
from .char_lstm import CharCNNWordLSTMForTokenClassification, CharLSTMConfig
from .cnn import CNNConfig, CNNForSequenceClassification, CNNForTokenClassification
from .family import FAMILIES, StudentFamily, register_family
from .mlp import MLPConfig, MLPForSequenceClassification
from .small_bert import (
    SMALL_BERTS,
    TrimmableBertConfig,
    TrimmableBertForSequenceClassification,
    TrimmableBertForTokenClassification,
    small_bert,
)
from .window import WindowConfig, WindowForTokenClassification


def _char_dummy(config) -> dict:
    """Example ONNX inputs of a word-level student: word ids, character ids per word, the word mask, and piece
    ids per word when it reads pieces (the unknown word id among the words, so that their path is traced)."""
    b, s, c = 2, 7, config.max_word_length
    out = {"input_ids": torch.randint(2, config.vocab_size, (b, s)),
           "char_ids": torch.randint(1, len(config.char_vocab), (b, s, c)),
           "attention_mask": torch.ones(b, s, dtype=torch.long)}
    if getattr(config, "piece_vocab", None):
        out["input_ids"][:, 0] = config.unk_token_id
        out["piece_ids"] = torch.randint(1, len(config.piece_vocab), (b, s, config.max_word_pieces))
    return out


def _from_teacher_only(config: dict, task: str):
    raise ValueError("a truncated student is built from its teacher: student_from_teacher(teacher, layers)")


#: word vectors kept frozen: with the zoo's --vector_words, words unseen in training keep vectors in the space the
#: trained ones live in (CoNLL-2003 dev F1 93.32 frozen against 92.79 fine-tuned, benchmarks/results/zoo/); the zoo
#: trains the table where the vectors are the teacher's sub-word embeddings (hf_distill.zoo.specs.implied_config)
_CHAR = {"hidden_size": 200, "word_vectors": True, "freeze_embeddings": True}
for _family in (
    StudentFamily("window", WindowConfig, {"token": WindowForTokenClassification}, trimmable=True,
                  presets={"window": ({"embedding_dim": 100, "window_size": 3}, 2e-3)}),
    StudentFamily("bilstm", BiLSTMConfig, {"token": BiLSTMForTokenClassification,
                                           "sequence": BiLSTMForSequenceClassification}, trimmable=True,
                  presets={"bilstm": ({"embedding_dim": 128, "hidden_size": 256}, 2e-3),
                           "bilstm-att": ({"embedding_dim": 128, "hidden_size": 256, "use_attention": True}, 2e-3),
                           "bilstm-B": ({"hidden_size": 256, "teacher_embeddings": True}, 2e-3),
                           "bilstm-att-B": ({"hidden_size": 128, "use_attention": True, "teacher_embeddings": True},
                                            2e-3)}),
    StudentFamily("cnn", CNNConfig, {"token": CNNForTokenClassification, "sequence": CNNForSequenceClassification},
                  trimmable=True, presets={"cnn": ({"embedding_dim": 128, "num_blocks": 4}, 2e-3)}),
    StudentFamily("mlp", MLPConfig, {"sequence": MLPForSequenceClassification}, trimmable=True),
    # word-level: a word table started from the zoo's word vectors (--word_vectors) plus case-aware characters
    StudentFamily("char_lstm", CharLSTMConfig, {"token": CharCNNWordLSTMForTokenClassification},
                  onnx_inputs=("input_ids", "char_ids", "attention_mask", "piece_ids"), onnx_dummy=_char_dummy,
                  word_level=True,
                  presets={"charcnn-wordlstm": (dict(_CHAR), 2e-3),
                           "charcnn-wordlstm-crf": ({**_CHAR, "use_crf": True, "crf_constraints": True}, 2e-3),
                           "charcnn-wordlstm-random": ({"embedding_dim": 100, "hidden_size": 200}, 2e-3)}),
    StudentFamily("bert_crf", BertCRFConfig, {"token": BertCRFForTokenClassification},
                  onnx_inputs=("input_ids", "attention_mask", "token_type_ids")),
    *(StudentFamily(name, TrimmableBertConfig, {"token": TrimmableBertForTokenClassification,
                                                "sequence": TrimmableBertForSequenceClassification},
                    trimmable=True, presets={name: ({}, lr)},
                    build=lambda config, task, _name=name: small_bert(_name, config.pop("vocab_size"), task=task,
                                                                       **config))
      for name, lr in (("bert-tiny", 1e-3), ("bert-mini", 5e-4), ("bert-small", 3e-4))),
    StudentFamily("truncated", BertConfig, {"token": BertForTokenClassification,
                                            "sequence": BertForSequenceClassification},
                  onnx_inputs=("input_ids", "attention_mask", "token_type_ids"), build=_from_teacher_only,
                  presets={"truncated-2": ({"layers": [0, 1]}, 2e-4)}, register_auto=False),
):
    register_family(_family)


def build_student(family: str, tokenizer=None, task: str = "token", labels: list[str] | None = None,
                  **config_kwargs) -> PreTrainedModel:
    """Build a student of a registered ``family`` (window, bilstm, char_lstm, cnn, mlp, bert_crf,
    bert-tiny/mini/small, or one added with ``register_family``).

    Args:
        family: the family's name.
        tokenizer: sets ``vocab_size`` (and pad/unk ids); a ``vocab_size`` given as well must match it.
        task: ``"token"`` (tagging) or ``"sequence"`` (text classification).
        labels: sets ``num_labels``, ``id2label`` and ``label2id``.
        **config_kwargs: the family config's fields.
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown student family {family!r}; choose one of {sorted(FAMILIES)}")
    record = FAMILIES[family]
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
    if task not in record.models:
        raise ValueError(f"student family {family!r} has no {task} classification model (has: {sorted(record.models)})")
    if record.build is not None:
        if family in SMALL_BERTS and "vocab_size" not in config_kwargs:
            raise ValueError(f"{family}: pass tokenizer= or vocab_size=")
        return record.build(config_kwargs, task)
    return record.models[task](record.config_class(**config_kwargs))


def presets() -> dict[str, tuple[str, dict, float]]:
    """Every registered family's zoo presets: ``name -> (family, config, learning rate)``."""
    return {name: (f.name, dict(config), lr) for f in FAMILIES.values() for name, (config, lr) in f.presets.items()}
