"""Student models; importing this package registers them with the Auto classes.

Each family is a ``PretrainedConfig`` + ``PreTrainedModel`` pair described by one :class:`StudentFamily`
record (``factory.py`` holds the built-in ones). ``register_family`` registers it with ``AutoConfig`` and the
matching ``AutoModelFor...`` class and marks it with ``register_for_auto_class``, so a saved folder carries its
modeling code and reloads with ``trust_remote_code=True`` where hf_distill is not installed.
"""

from .bert_crf import BertCRFConfig, BertCRFForTokenClassification
from .bilstm import BiLSTMConfig, BiLSTMForSequenceClassification, BiLSTMForTokenClassification, BiLSTMModel
from .char_lstm import CharCNNWordLSTMForTokenClassification, CharLSTMConfig
from .cnn import CNNConfig, CNNForSequenceClassification, CNNForTokenClassification, CNNModel
from .common import TrimmedEmbedding
from .factory import build_student, presets
from .family import FAMILIES, StudentFamily, family_for_model_type, register_family
from .mlp import MLPConfig, MLPForSequenceClassification
from .small_bert import (
    SMALL_BERTS,
    TrimmableBertConfig,
    TrimmableBertForSequenceClassification,
    TrimmableBertForTokenClassification,
    small_bert,
    small_bert_config,
)
from .trim import trim_vocabulary
from .truncated import count_parameters, freeze_word_embeddings, student_from_teacher
from .window import WindowConfig, WindowForTokenClassification

__all__ = [
    "FAMILIES",
    "StudentFamily",
    "family_for_model_type",
    "presets",
    "register_family",
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
