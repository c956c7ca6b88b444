"""CNN students: embeddings + sinusoidal positions, residual depthwise-separable 1-D convolution blocks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig

from .common import (
    EncoderForSequenceClassification,
    EncoderForTokenClassification,
    StudentPreTrainedModel,
    check_positive,
    check_probability,
    sinusoidal_positions,
)
from .crf import LinearChainCRF  # noqa: F401  (trust_remote_code copies only direct relative imports)


class CNNConfig(PretrainedConfig):
    """Hyper-parameters of the CNN students."""

    model_type = "hfd_cnn"

    def __init__(
        self,
        vocab_size: int = 30522,
        embedding_dim: int = 128,
        num_blocks: int = 4,
        kernel_size: int = 5,
        dropout: float = 0.1,
        max_position_embeddings: int = 512,
        pooling: str = "mean",
        freeze_embeddings: bool = False,
        initializer_range: float = 0.02,
        use_crf: bool = False,
        crf_constraints: bool = False,
        pad_token_id: int = 0,
        **kwargs,
    ):
        check_positive(
            "CNNConfig",
            vocab_size=vocab_size,
            embedding_dim=embedding_dim,
            num_blocks=num_blocks,
            kernel_size=kernel_size,
            max_position_embeddings=max_position_embeddings,
        )
        if kernel_size % 2 == 0:
            raise ValueError(f"CNNConfig: kernel_size must be odd to keep positions aligned, got {kernel_size}")
        if embedding_dim % 2:
            raise ValueError(f"CNNConfig: embedding_dim must be even (sinusoidal positions), got {embedding_dim}")
        if pooling not in ("first", "mean"):
            raise ValueError(f"CNNConfig: pooling must be 'first' or 'mean', got {pooling!r}")
        check_probability("CNNConfig", dropout=dropout)
        self.vocab_size, self.embedding_dim, self.num_blocks, self.kernel_size = (
            vocab_size,
            embedding_dim,
            num_blocks,
            kernel_size,
        )
        self.dropout, self.max_position_embeddings, self.pooling = dropout, max_position_embeddings, pooling
        self.freeze_embeddings, self.initializer_range = freeze_embeddings, initializer_range
        self.use_crf, self.crf_constraints = use_crf, crf_constraints  # CRF head (token models)
        super().__init__(pad_token_id=pad_token_id, **kwargs)


class SeparableConvBlock(nn.Module):
    """Depthwise conv, pointwise conv, GELU, dropout, residual, layer norm; padding is zeroed first."""

    def __init__(self, dim: int, kernel_size: int, dropout: float):
        super().__init__()
        self.depthwise = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.pointwise = nn.Conv1d(dim, dim, 1)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        y = (x * mask).transpose(1, 2)
        y = F.gelu(self.pointwise(self.depthwise(y))).transpose(1, 2)
        return self.norm(x + self.dropout(y))


class CNNModel(StudentPreTrainedModel):
    config_class = CNNConfig

    def __init__(self, config: CNNConfig):
        super().__init__(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=config.pad_token_id)
        self.register_buffer(
            "positions", sinusoidal_positions(config.max_position_embeddings, config.embedding_dim), persistent=False
        )
        self.blocks = nn.ModuleList(
            SeparableConvBlock(config.embedding_dim, config.kernel_size, config.dropout)
            for _ in range(config.num_blocks)
        )
        self.output_size = config.embedding_dim
        self.post_init()
        self.embeddings.weight.requires_grad_(not config.freeze_embeddings)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        mask = attention_mask.unsqueeze(-1).to(self.dtype)
        x = self.embeddings(input_ids) + self.positions[: input_ids.shape[1]]
        for block in self.blocks:
            x = block(x, mask)
        return x * mask


class CNNForTokenClassification(EncoderForTokenClassification):
    config_class = CNNConfig
    encoder_class = CNNModel


class CNNForSequenceClassification(EncoderForSequenceClassification):
    config_class = CNNConfig
    encoder_class = CNNModel
