"""Small BERTs (Turc et al. 2019 sizes): BERT-Tiny/Mini/Small, random or initialized from a teacher."""

from __future__ import annotations

from transformers import BertConfig, BertForSequenceClassification, BertForTokenClassification, PreTrainedModel

from .common import TrimmedEmbedding
from .crf import LinearChainCRF  # noqa: F401  (trust_remote_code copies only direct relative imports)
from .truncated import student_from_teacher

#: name -> (layers, hidden, heads)
SMALL_BERTS = {"bert-tiny": (2, 128, 2), "bert-mini": (4, 256, 4), "bert-small": (4, 512, 8)}


def small_bert_config(name: str, vocab_size: int, **kwargs) -> BertConfig:
    """The ``BertConfig`` of a named small BERT (intermediate size 4x hidden)."""
    if name not in SMALL_BERTS:
        raise ValueError(f"unknown small BERT {name!r}; choose one of {sorted(SMALL_BERTS)}")
    layers, hidden, heads = SMALL_BERTS[name]
    kwargs.setdefault("num_hidden_layers", layers)
    kwargs.setdefault("hidden_size", hidden)
    kwargs.setdefault("num_attention_heads", heads)
    kwargs.setdefault("intermediate_size", 4 * kwargs["hidden_size"])
    if kwargs["hidden_size"] % kwargs["num_attention_heads"]:
        raise ValueError(f"{name}: hidden_size={kwargs['hidden_size']} is not divisible by "
                         f"num_attention_heads={kwargs['num_attention_heads']}")
    return BertConfig(vocab_size=vocab_size, **kwargs)


class TrimmableBertConfig(BertConfig):
    """A small BERT whose word embeddings may keep rows for some sub-words only (``kept_tokens``, set by
    ``trim_vocabulary``): with a multilingual teacher's 250k-entry vocabulary, BERT-Small's table alone would
    hold 128M parameters. Shared fields: ``BertConfig``."""

    model_type = "hfd_trimmable_bert"

    def __init__(self, kept_tokens: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.kept_tokens = kept_tokens


def _trim_word_embeddings(model: PreTrainedModel) -> None:
    config = model.config
    if config.kept_tokens:
        model.bert.embeddings.word_embeddings = TrimmedEmbedding(config.vocab_size, config.kept_tokens,
                                                                 config.hidden_size)
        model.post_init()


class TrimmableBertForTokenClassification(BertForTokenClassification):
    config_class = TrimmableBertConfig

    def __init__(self, config: TrimmableBertConfig):
        super().__init__(config)
        _trim_word_embeddings(self)


class TrimmableBertForSequenceClassification(BertForSequenceClassification):
    config_class = TrimmableBertConfig

    def __init__(self, config: TrimmableBertConfig):
        super().__init__(config)
        _trim_word_embeddings(self)


def small_bert(name: str, vocab_size: int, task: str = "token", teacher: PreTrainedModel | None = None,
               trimmable: bool = False, **kwargs) -> PreTrainedModel:
    """A randomly initialized small BERT, or (``teacher=``) one built from the teacher's first layers.

    Initializing from a teacher needs the teacher's hidden size and heads; the layer count comes from ``name``.
    ``trimmable=True`` builds the same model as a class whose vocabulary ``trim_vocabulary`` can trim (and
    ``from_pretrained`` rebuilds trimmed).
    """
    if teacher is not None:
        layers, hidden, _ = SMALL_BERTS[name]
        if teacher.config.hidden_size != hidden:
            raise ValueError(f"{name} has hidden size {hidden}; the teacher has {teacher.config.hidden_size}: "
                             "use student_from_teacher(teacher, layers) for a truncated teacher instead")
        return student_from_teacher(teacher, list(range(layers)))
    config = small_bert_config(name, vocab_size, **kwargs)
    if trimmable:
        cls = {"token": TrimmableBertForTokenClassification, "sequence": TrimmableBertForSequenceClassification}
        fields = {k: v for k, v in config.to_dict().items() if k not in ("model_type", "transformers_version")}
        return cls[task](TrimmableBertConfig(**fields))
    cls = {"token": BertForTokenClassification, "sequence": BertForSequenceClassification}[task]
    return cls(config)
