"""Window student (Hagström & Johansson 2021): embeddings of 2k+1 neighbours, concatenated, one linear layer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import StudentConfig, StudentPreTrainedModel, make_crf, make_embeddings, tagging_output
from .crf import LinearChainCRF  # noqa: F401  (trust_remote_code copies only direct relative imports)


class WindowConfig(StudentConfig):
    """Hyper-parameters of :class:`WindowForTokenClassification` (shared fields: :class:`StudentConfig`).

    Args:
        window_size: tokens seen per word, 2k+1 centred on it (odd).
    """

    model_type = "hfd_window"

    def __init__(self, vocab_size: int = 30522, embedding_dim: int = 100, window_size: int = 3, **kwargs):
        self.window_size = window_size
        super().__init__(vocab_size=vocab_size, embedding_dim=embedding_dim, **kwargs)
        self.require_positive("window_size")
        self.require_odd("window_size", "2k+1 tokens centred on each word")


class WindowForTokenClassification(StudentPreTrainedModel):
    config_class = WindowConfig

    def __init__(self, config: WindowConfig):
        super().__init__(config)
        self.embeddings = make_embeddings(config)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.embedding_dim * config.window_size, config.num_labels)
        self.crf = make_crf(config)
        self.post_init_with_embeddings()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        **kwargs,
    ):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        x = self.embeddings(input_ids) * attention_mask.unsqueeze(-1).to(self.dtype)  # padding reads as zeros
        k = self.config.window_size // 2
        padded = F.pad(x, (0, 0, k, k))
        windows = torch.cat([padded[:, i : i + x.shape[1]] for i in range(2 * k + 1)], dim=-1)
        logits = self.classifier(self.dropout(windows))
        return tagging_output(self.crf, logits, labels, (x,) if output_hidden_states else None)
