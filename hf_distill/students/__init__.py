"""Student models; importing this package registers them with the Auto classes.

Each family is a ``PretrainedConfig`` + ``PreTrainedModel`` pair registered with ``AutoConfig`` and the
matching ``AutoModelFor...`` class, and marked with ``register_for_auto_class`` so a saved folder
carries its modeling code and reloads with ``trust_remote_code=True`` where hf_distill is not installed.
"""

from transformers import AutoConfig, AutoModelForSequenceClassification, AutoModelForTokenClassification

from .bert_crf import BertCRFConfig, BertCRFForTokenClassification
from .bilstm import BiLSTMConfig, BiLSTMForSequenceClassification, BiLSTMForTokenClassification, BiLSTMModel
from .char_lstm import CharCNNWordLSTMForTokenClassification, CharLSTMConfig
from .cnn import CNNConfig, CNNForSequenceClassification, CNNForTokenClassification, CNNModel
from .common import TrimmedEmbedding, trim_vocabulary
from .factory import FAMILIES, build_student
from .mlp import MLPConfig, MLPForSequenceClassification
from .small_bert import (
    SMALL_BERTS,
    TrimmableBertConfig,
    TrimmableBertForSequenceClassification,
    TrimmableBertForTokenClassification,
    small_bert,
    small_bert_config,
)
from .truncated import count_parameters, freeze_word_embeddings, student_from_teacher
from .window import WindowConfig, WindowForTokenClassification

_AUTO = {"token": AutoModelForTokenClassification, "sequence": AutoModelForSequenceClassification}


def _register() -> None:
    trimmable_bert = (TrimmableBertConfig, {"token": TrimmableBertForTokenClassification,
                                            "sequence": TrimmableBertForSequenceClassification})
    for config_cls, models in [*FAMILIES.values(), trimmable_bert]:
        AutoConfig.register(config_cls.model_type, config_cls, exist_ok=True)
        config_cls.register_for_auto_class()
        for task, model_cls in models.items():
            _AUTO[task].register(config_cls, model_cls, exist_ok=True)
            model_cls.register_for_auto_class(_AUTO[task].__name__)


_register()

__all__ = [
    "TrimmedEmbedding",
    "trim_vocabulary",
    "SMALL_BERTS",
    "TrimmableBertConfig",
    "TrimmableBertForSequenceClassification",
    "TrimmableBertForTokenClassification",
    "BertCRFConfig",
    "BertCRFForTokenClassification",
    "BiLSTMConfig",
    "BiLSTMForSequenceClassification",
    "BiLSTMForTokenClassification",
    "BiLSTMModel",
    "CNNConfig",
    "CNNForSequenceClassification",
    "CNNForTokenClassification",
    "CNNModel",
    "CharCNNWordLSTMForTokenClassification",
    "CharLSTMConfig",
    "MLPConfig",
    "MLPForSequenceClassification",
    "WindowConfig",
    "WindowForTokenClassification",
    "build_student",
    "count_parameters",
    "freeze_word_embeddings",
    "small_bert",
    "small_bert_config",
    "student_from_teacher",
]
