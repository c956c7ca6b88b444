"""Window student (Hagström & Johansson 2021): embeddings of 2k+1 neighbours, concatenated, one linear layer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig

from .common import StudentPreTrainedModel, check_positive, check_probability, make_crf, tagging_output
from .crf import LinearChainCRF  # noqa: F401  (trust_remote_code copies only direct relative imports)


class WindowConfig(PretrainedConfig):
    """Hyper-parameters of :class:`WindowForTokenClassification`."""

    model_type = "hfd_window"

    def __init__(
        self,
        vocab_size: int = 30522,
        embedding_dim: int = 100,
        window_size: int = 3,
        dropout: float = 0.0,
        freeze_embeddings: bool = False,
        initializer_range: float = 0.02,
        use_crf: bool = False,
        crf_constraints: bool = False,
        pad_token_id: int = 0,
        **kwargs,
    ):
        check_positive("WindowConfig", vocab_size=vocab_size, embedding_dim=embedding_dim, window_size=window_size)
        if window_size % 2 == 0:
            raise ValueError(
                f"WindowConfig: window_size must be odd (2k+1 tokens centred on each word), got {window_size}"
            )
        check_probability("WindowConfig", dropout=dropout)
        self.vocab_size, self.embedding_dim, self.window_size = vocab_size, embedding_dim, window_size
        self.dropout, self.freeze_embeddings, self.initializer_range = dropout, freeze_embeddings, initializer_range
        self.use_crf, self.crf_constraints = use_crf, crf_constraints  # CRF head (token models)
        super().__init__(pad_token_id=pad_token_id, **kwargs)


class WindowForTokenClassification(StudentPreTrainedModel):
    config_class = WindowConfig

    def __init__(self, config: WindowConfig):
        super().__init__(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=config.pad_token_id)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.embedding_dim * config.window_size, config.num_labels)
        self.crf = make_crf(config)
        self.post_init()
        self.embeddings.weight.requires_grad_(not config.freeze_embeddings)

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
