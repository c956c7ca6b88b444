"""Batched linear-chain CRF (the implementation lives in ``hf_distill.students.crf`` so that saved CRF
students carry it as remote code)."""

from .students.crf import FORBIDDEN, LinearChainCRF, iob2_allowed_transitions

__all__ = ["FORBIDDEN", "LinearChainCRF", "iob2_allowed_transitions"]
