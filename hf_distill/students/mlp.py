"""MLP text classifier (Intel's distillation into tiny MLPs): embedding, mean pooling, hidden layer, head."""

from __future__ import annotations

import torch
from torch import nn

from .common import StudentConfig, StudentPreTrainedModel, make_embeddings, masked_mean, sequence_output
from .crf import LinearChainCRF  # noqa: F401  (trust_remote_code copies only direct relative imports)


class MLPConfig(StudentConfig):
    """Hyper-parameters of :class:`MLPForSequenceClassification`, about 80k parameters at 16 dimensions
    (shared fields: :class:`StudentConfig`).

    Args:
        hidden_size: width of the hidden layer over the mean-pooled embeddings.
    """

    model_type = "hfd_mlp"

    def __init__(self, vocab_size: int = 5000, embedding_dim: int = 16, hidden_size: int = 16, **kwargs):
        self.hidden_size = hidden_size
        super().__init__(vocab_size=vocab_size, embedding_dim=embedding_dim, **kwargs)
        self.require_positive("hidden_size")


class MLPForSequenceClassification(StudentPreTrainedModel):
    config_class = MLPConfig

    def __init__(self, config: MLPConfig):
        super().__init__(config)
        self.embeddings = make_embeddings(config)
        self.hidden = nn.Linear(config.embedding_dim, config.hidden_size)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init_with_embeddings()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, output_hidden_states: bool | None = None, **kwargs):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        pooled = masked_mean(self.embeddings(input_ids), attention_mask)
        h = torch.relu(self.hidden(pooled))
        return sequence_output(self.classifier(self.dropout(h)), labels, (h,) if output_hidden_states else None)
