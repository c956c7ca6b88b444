"""CNN students: embeddings + sinusoidal positions, residual depthwise-separable 1-D convolution blocks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import (
    EncoderForSequenceClassification,
    EncoderForTokenClassification,
    StudentConfig,
    StudentPreTrainedModel,
    make_embeddings,
    sinusoidal_positions,
)
from .crf import LinearChainCRF  # noqa: F401  (trust_remote_code copies only direct relative imports)


class CNNConfig(StudentConfig):
    """Hyper-parameters of the CNN students (shared fields: :class:`StudentConfig`).

    Args:
        num_blocks: residual depthwise-separable convolution blocks.
        kernel_size: width of each convolution (odd, so positions stay aligned).
        max_position_embeddings: longest input (sinusoidal positions; ``embedding_dim`` must be even).
        pooling: ``"first"`` or ``"mean"`` position for sequence classification.
    """

    model_type = "hfd_cnn"

    def __init__(self, vocab_size: int = 30522, embedding_dim: int = 128, num_blocks: int = 4, kernel_size: int = 5,
                 dropout: float = 0.1, max_position_embeddings: int = 512, pooling: str = "mean", **kwargs):
        self.num_blocks = num_blocks
        self.kernel_size = kernel_size
        self.max_position_embeddings = max_position_embeddings
        self.pooling = pooling
        super().__init__(vocab_size=vocab_size, embedding_dim=embedding_dim, dropout=dropout, **kwargs)
        self.require_positive("num_blocks", "kernel_size", "max_position_embeddings")
        self.require_odd("kernel_size", "to keep positions aligned")
        if embedding_dim % 2:
            raise ValueError(f"CNNConfig: embedding_dim must be even (sinusoidal positions), got {embedding_dim}")
        self.require_choice("pooling", ("first", "mean"))

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
        self.embeddings = make_embeddings(config)
        self.register_buffer(
            "positions", sinusoidal_positions(config.max_position_embeddings, config.embedding_dim), persistent=False
        )
        self.blocks = nn.ModuleList(
            SeparableConvBlock(config.embedding_dim, config.kernel_size, config.dropout)
            for _ in range(config.num_blocks)
        )
        self.output_size = config.embedding_dim
        self.post_init_with_embeddings()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        mask = attention_mask.unsqueeze(-1).to(self.dtype)
        x = self.embeddings(input_ids) + self.positions[: input_ids.shape[1]]
        for block in self.blocks:
            x = block(x, mask)
        return x * mask


class CNNForTokenClassification(EncoderForTokenClassification):
    """CNN tagger: a linear (optionally CRF) head over each position's last convolution block."""

    config_class = CNNConfig
    encoder_class = CNNModel


class CNNForSequenceClassification(EncoderForSequenceClassification):
    """CNN classifier pooling the first position (``pooling="first"``) or the mean of real positions."""

    config_class = CNNConfig
    encoder_class = CNNModel
