"""BiLSTM students (Hagström & Johansson 2021; Nityasya et al. 2022) for token and sequence classification."""

from __future__ import annotations

import torch
from torch import nn
from transformers import PretrainedConfig

from .common import (
    BiLSTMEncoder,
    EncoderForSequenceClassification,
    EncoderForTokenClassification,
    SelfAttentionBlock,
    StudentPreTrainedModel,
    check_positive,
    check_probability,
    word_dropout,
)
from .crf import LinearChainCRF  # noqa: F401  (trust_remote_code copies only direct relative imports)


class BiLSTMConfig(PretrainedConfig):
    """Hyper-parameters of the BiLSTM students. ``hidden_size`` is per direction."""

    model_type = "hfd_bilstm"

    def __init__(
        self,
        vocab_size: int = 30522,
        embedding_dim: int = 128,
        hidden_size: int = 256,
        num_layers: int = 1,
        dropout: float = 0.0,
        output_dropout: float = 0.0,
        word_dropout: float = 0.0,
        use_attention: bool = False,
        num_attention_heads: int = 4,
        pooling: str = "first",
        freeze_embeddings: bool = False,
        initializer_range: float = 0.02,
        use_crf: bool = False,
        crf_constraints: bool = False,
        pad_token_id: int = 0,
        unk_token_id: int = 100,
        **kwargs,
    ):
        check_positive(
            "BiLSTMConfig",
            vocab_size=vocab_size,
            embedding_dim=embedding_dim,
            hidden_size=hidden_size,
            num_layers=num_layers,
            num_attention_heads=num_attention_heads,
        )
        check_probability("BiLSTMConfig", dropout=dropout, output_dropout=output_dropout, word_dropout=word_dropout)
        if use_attention and (2 * hidden_size) % num_attention_heads:
            raise ValueError(
                f"BiLSTMConfig: attention width 2*hidden_size={2 * hidden_size} is not divisible by "
                f"num_attention_heads={num_attention_heads}"
            )
        if pooling not in ("first", "mean"):
            raise ValueError(f"BiLSTMConfig: pooling must be 'first' or 'mean', got {pooling!r}")
        if not 0 <= unk_token_id < vocab_size:
            raise ValueError(f"BiLSTMConfig: unk_token_id={unk_token_id} outside the vocabulary ({vocab_size})")
        self.vocab_size, self.embedding_dim, self.hidden_size, self.num_layers = (
            vocab_size,
            embedding_dim,
            hidden_size,
            num_layers,
        )
        self.dropout, self.output_dropout, self.word_dropout = dropout, output_dropout, word_dropout
        self.use_attention, self.num_attention_heads, self.pooling = use_attention, num_attention_heads, pooling
        self.freeze_embeddings, self.initializer_range, self.unk_token_id = (
            freeze_embeddings,
            initializer_range,
            unk_token_id,
        )
        self.use_crf, self.crf_constraints = use_crf, crf_constraints  # CRF head (token models)
        super().__init__(pad_token_id=pad_token_id, **kwargs)


class BiLSTMModel(StudentPreTrainedModel):
    """Embeddings, word dropout, stacked BiLSTM and optional self-attention: (batch, time, 2*hidden)."""

    config_class = BiLSTMConfig

    def __init__(self, config: BiLSTMConfig):
        super().__init__(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=config.pad_token_id)
        self.encoder = BiLSTMEncoder(config.embedding_dim, config.hidden_size, config.num_layers, config.dropout)
        self.attention = (
            SelfAttentionBlock(2 * config.hidden_size, config.num_attention_heads, config.dropout)
            if config.use_attention
            else None
        )
        self.output_size = 2 * config.hidden_size
        self.post_init()
        self.embeddings.weight.requires_grad_(not config.freeze_embeddings)

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
    config_class = BiLSTMConfig
    encoder_class = BiLSTMModel


class BiLSTMForSequenceClassification(EncoderForSequenceClassification):
    """BiLSTM classifier pooling the first position (``pooling="first"``) or the mean of real positions."""

    config_class = BiLSTMConfig
    encoder_class = BiLSTMModel
