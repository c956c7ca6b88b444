"""BiLSTM students (Hagström & Johansson 2021; Nityasya et al. 2022) for token and sequence classification."""

from __future__ import annotations

import torch

from .common import (
    BiLSTMEncoder,
    EncoderForSequenceClassification,
    EncoderForTokenClassification,
    SelfAttentionBlock,
    StudentConfig,
    StudentPreTrainedModel,
    make_embeddings,
    word_dropout,
)
from .crf import LinearChainCRF  # noqa: F401  (trust_remote_code copies only direct relative imports)


class BiLSTMConfig(StudentConfig):
    """Hyper-parameters of the BiLSTM students (shared fields: :class:`StudentConfig`).

    Args:
        hidden_size: LSTM width per direction (the encoder's output is 2 x this).
        num_layers: stacked BiLSTM layers.
        output_dropout: dropout on the encoder's output, before the head.
        word_dropout: probability of replacing a word by ``unk_token_id`` while training.
        use_attention: a self-attention block over the BiLSTM states.
        num_attention_heads: heads of that block (must divide 2 x ``hidden_size``).
        pooling: ``"first"`` or ``"mean"`` position for sequence classification.
        unk_token_id: the id word dropout substitutes.
    """

    model_type = "hfd_bilstm"

    def __init__(self, vocab_size: int = 30522, embedding_dim: int = 128, hidden_size: int = 256, num_layers: int = 1,
                 output_dropout: float = 0.0, word_dropout: float = 0.0, use_attention: bool = False,
                 num_attention_heads: int = 4, pooling: str = "first", unk_token_id: int = 100, **kwargs):
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.output_dropout = output_dropout
        self.word_dropout = word_dropout
        self.use_attention = use_attention
        self.num_attention_heads = num_attention_heads
        self.pooling = pooling
        self.unk_token_id = unk_token_id
        super().__init__(vocab_size=vocab_size, embedding_dim=embedding_dim, **kwargs)
        self.require_positive("hidden_size", "num_layers", "num_attention_heads")
        self.require_probability("output_dropout", "word_dropout")
        if use_attention and (2 * hidden_size) % num_attention_heads:
            raise ValueError(f"BiLSTMConfig: attention width 2*hidden_size={2 * hidden_size} is not divisible by "
                             f"num_attention_heads={num_attention_heads}")
        self.require_choice("pooling", ("first", "mean"))
        if not 0 <= unk_token_id < vocab_size:
            raise ValueError(f"BiLSTMConfig: unk_token_id={unk_token_id} outside the vocabulary ({vocab_size})")

class BiLSTMModel(StudentPreTrainedModel):
    """Embeddings, word dropout, stacked BiLSTM and optional self-attention: (batch, time, 2*hidden)."""

    config_class = BiLSTMConfig

    def __init__(self, config: BiLSTMConfig):
        super().__init__(config)
        self.embeddings = make_embeddings(config)
        self.encoder = BiLSTMEncoder(config.embedding_dim, config.hidden_size, config.num_layers, config.dropout)
        self.attention = (
            SelfAttentionBlock(2 * config.hidden_size, config.num_attention_heads, config.dropout)
            if config.use_attention
            else None
        )
        self.output_size = 2 * config.hidden_size
        self.post_init_with_embeddings()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if self.training:
            input_ids = word_dropout(input_ids, self.config.word_dropout, self.config.unk_token_id, attention_mask)
        x = self.encoder(self.embeddings(input_ids), attention_mask)
        if self.attention is not None:
            x = self.attention(x, attention_mask)
        return x


class BiLSTMForTokenClassification(EncoderForTokenClassification):
    """BiLSTM tagger: a linear (optionally CRF) head over each position's BiLSTM state."""

    config_class = BiLSTMConfig
    encoder_class = BiLSTMModel


class BiLSTMForSequenceClassification(EncoderForSequenceClassification):
    """BiLSTM classifier pooling the first position (``pooling="first"``) or the mean of real positions."""

    config_class = BiLSTMConfig
    encoder_class = BiLSTMModel
