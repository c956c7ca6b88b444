"""BERT with a CRF head: loads ``BertForTokenClassification`` checkpoints; emissions are the ``logits``."""

from __future__ import annotations

import torch
from transformers import BertConfig, BertForTokenClassification

from .common import crf_decode_ids, init_crf, make_crf, tagging_output
from .crf import LinearChainCRF


class BertCRFConfig(BertConfig):
    """``BertConfig`` plus ``use_crf`` (always true here) and ``crf_constraints`` (IOB2 transitions)."""

    model_type = "hfd_bert_crf"

    def __init__(self, crf_constraints: bool = False, **kwargs):
        kwargs.pop("use_crf", None)
        super().__init__(**kwargs)
        self.use_crf = True
        self.crf_constraints = crf_constraints


class BertCRFForTokenClassification(BertForTokenClassification):
    """``BertForTokenClassification`` whose loss is the CRF NLL over labeled (first sub-word) positions."""

    config_class = BertCRFConfig

    def __init__(self, config: BertCRFConfig):
        super().__init__(config)
        self.crf = make_crf(config)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None,
                output_hidden_states=None, **kwargs):
        out = super().forward(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                              output_hidden_states=output_hidden_states, **kwargs)
        return tagging_output(self.crf, out.logits, labels, out.hidden_states)

    def _init_weights(self, module) -> None:
        if isinstance(module, LinearChainCRF):
            init_crf(module)
        else:
            super()._init_weights(module)

    def decode(self, emissions: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return crf_decode_ids(self.crf, emissions, positions)
