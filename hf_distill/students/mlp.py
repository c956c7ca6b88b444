"""MLP text classifier (Intel's distillation into tiny MLPs): embedding, mean (or mean and max) pooling, hidden
layer, head."""

from __future__ import annotations

import torch
from torch import nn

from .common import StudentConfig, StudentPreTrainedModel, make_embeddings, masked_max, masked_mean, sequence_output
from .crf import LinearChainCRF  # noqa: F401  (trust_remote_code copies only direct relative imports)


class MLPConfig(StudentConfig):
    """Hyper-parameters of :class:`MLPForSequenceClassification`, about 80k parameters at 16 dimensions
    (shared fields: :class:`StudentConfig`).

    Args:
        hidden_size: width of the hidden layer over the pooled embeddings.
        pooling: ``"mean"`` over the words, or ``"mean_max"``: the mean and the per-dimension maximum concatenated
            (the strongest word per dimension survives averaging; ``embedding_dim x hidden_size`` more weights).
    """

    model_type = "hfd_mlp"
    POOLINGS = ("mean", "mean_max")

    def __init__(self, vocab_size: int = 5000, embedding_dim: int = 16, hidden_size: int = 16, pooling: str = "mean",
                 **kwargs):
        self.hidden_size = hidden_size
        self.pooling = pooling
        super().__init__(vocab_size=vocab_size, embedding_dim=embedding_dim, **kwargs)
        self.require_positive("hidden_size")
        self.require_choice("pooling", self.POOLINGS)


class MLPForSequenceClassification(StudentPreTrainedModel):
    config_class = MLPConfig

    def __init__(self, config: MLPConfig):
        super().__init__(config)
        self.embeddings = make_embeddings(config)
        pooled = config.embedding_dim * (2 if config.pooling == "mean_max" else 1)
        self.hidden = nn.Linear(pooled, config.hidden_size)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init_with_embeddings()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, output_hidden_states: bool | None = None, **kwargs):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        x = self.embeddings(input_ids)
        pooled = masked_mean(x, attention_mask)
        if self.config.pooling == "mean_max":
            pooled = torch.cat([pooled, masked_max(x, attention_mask)], dim=-1)
        h = torch.relu(self.hidden(pooled))
        return sequence_output(self.classifier(self.dropout(h)), labels, (h,) if output_hidden_states else None)
