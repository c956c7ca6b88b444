"""Layers shared by the student families. Imports only torch and transformers: saved model folders carry
this file (``register_for_auto_class``) so they load with ``trust_remote_code`` without hf_distill."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput, TokenClassifierOutput

from .crf import LinearChainCRF, iob2_allowed_transitions, select_positions

#: hf_distill.base.IGNORE_INDEX, repeated: a saved student carries this package's files as remote code, so
#: it imports nothing from outside hf_distill/students
IGNORE_INDEX = -100


def check_positive(name: str, **values) -> None:
    """Raise ``ValueError`` naming the config and field when a size is not a positive integer."""
    for key, value in values.items():
        if not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name}: {key} must be a positive integer, got {value!r}")


def check_probability(name: str, **values) -> None:
    for key, value in values.items():
        if not 0.0 <= float(value) < 1.0:
            raise ValueError(f"{name}: {key} must be in [0, 1), got {value!r}")


class StudentConfig(PretrainedConfig):
    """The fields every student family shares, checked once; each family adds its own.

    Args:
        vocab_size: rows of the input embedding table (the tokenizer's length).
        embedding_dim: width of the input embeddings.
        dropout: dropout probability inside the encoder, in [0, 1).
        freeze_embeddings: keep the input embeddings fixed (teacher embeddings or word vectors).
        initializer_range: standard deviation of the initial weights.
        use_crf: put a CRF head on token models (logits are emissions; the loss is the CRF NLL).
        crf_constraints: forbid IOB2-invalid transitions in that CRF.
        pad_token_id: id of padding; its embedding row stays zero.
        kept_tokens: rows of a trimmed embedding table (:func:`trim_vocabulary`): only these ids of the
            ``vocab_size`` vocabulary have their own row, the others share the unknown token's. None: all rows.
    """

    def __init__(
        self,
        vocab_size: int = 30522,
        embedding_dim: int = 128,
        dropout: float = 0.0,
        freeze_embeddings: bool = False,
        initializer_range: float = 0.02,
        use_crf: bool = False,
        crf_constraints: bool = False,
        pad_token_id: int = 0,
        kept_tokens: int | None = None,
        **kwargs,
    ):
        self.vocab_size = vocab_size
        self.kept_tokens = kept_tokens
        self.embedding_dim = embedding_dim
        self.dropout = dropout
        self.freeze_embeddings = freeze_embeddings
        self.initializer_range = initializer_range
        self.use_crf = use_crf
        self.crf_constraints = crf_constraints
        self.require_positive("vocab_size", "embedding_dim", *(("kept_tokens",) if kept_tokens is not None else ()))
        self.require_probability("dropout")
        super().__init__(pad_token_id=pad_token_id, **kwargs)

    def require_positive(self, *names: str) -> None:
        """Raise naming the config and field when one of ``names`` is not a positive integer."""
        check_positive(type(self).__name__, **{n: getattr(self, n) for n in names})

    def require_probability(self, *names: str) -> None:
        """Raise naming the config and field when one of ``names`` is not in [0, 1)."""
        check_probability(type(self).__name__, **{n: getattr(self, n) for n in names})

    def require_odd(self, name: str, why: str) -> None:
        if getattr(self, name) % 2 == 0:
            raise ValueError(f"{type(self).__name__}: {name} must be odd ({why}), got {getattr(self, name)}")

    def require_choice(self, name: str, choices: tuple[str, ...]) -> None:
        if getattr(self, name) not in choices:
            raise ValueError(f"{type(self).__name__}: {name} must be one of {choices}, got {getattr(self, name)!r}")


class TrimmedEmbedding(nn.Embedding):
    """An embedding table with rows for some ids of a larger vocabulary only (multilingual teachers have 250k
    sub-words; one language's data uses a few percent). ``id_map`` sends every id of the full vocabulary to
    its row; ids without a row share the unknown token's. Row 0 is padding. Both maps are buffers saved with
    the weights, so a saved student (and its ONNX export) reads the teacher tokenizer's ids unchanged."""

    def __init__(self, vocab_size: int, kept: int, embedding_dim: int):
        super().__init__(kept, embedding_dim, padding_idx=0)
        self.register_buffer("id_map", torch.zeros(vocab_size, dtype=torch.long))
        self.register_buffer("kept_ids", torch.zeros(kept, dtype=torch.long))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return super().forward(self.id_map[input_ids])


def make_embeddings(config) -> nn.Embedding:
    """The input embeddings of a student: the whole vocabulary, or its kept rows (``config.kept_tokens``)."""
    if getattr(config, "kept_tokens", None):
        return TrimmedEmbedding(config.vocab_size, config.kept_tokens, config.embedding_dim)
    return nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=config.pad_token_id)


def lengths_of(attention_mask: torch.Tensor) -> torch.Tensor:
    """Sequence lengths from a right-padded attention mask (at least 1, so empty rows stay defined)."""
    return attention_mask.long().sum(-1).clamp_min(1)


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each row of ``x`` (batch, time, dim) within its own length; padding stays at the end."""
    t = x.shape[1]
    pos = torch.arange(t, device=x.device).unsqueeze(0)
    idx = lengths.unsqueeze(1) - 1 - pos
    idx = torch.where(idx >= 0, idx, pos)  # padding positions map to themselves
    return x.gather(1, idx.unsqueeze(-1).expand_as(x))


class BiLSTMEncoder(nn.Module):
    """Stacked bidirectional LSTM whose output at real positions does not depend on right padding.

    The backward direction runs a forward LSTM over each sequence reversed within its length, so
    no packing is needed (and the graph exports to ONNX with dynamic axes).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, dropout: float = 0.0):
        super().__init__()
        self.forward_layers = nn.ModuleList()
        self.backward_layers = nn.ModuleList()
        for i in range(num_layers):
            size = input_size if i == 0 else 2 * hidden_size
            self.forward_layers.append(nn.LSTM(size, hidden_size, batch_first=True))
            self.backward_layers.append(nn.LSTM(size, hidden_size, batch_first=True))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        lengths = lengths_of(attention_mask)
        for i, (fwd, bwd) in enumerate(zip(self.forward_layers, self.backward_layers)):
            if i > 0:
                x = self.dropout(x)
            out_f, _ = fwd(x)
            out_b, _ = bwd(reverse_padded(x, lengths))
            x = torch.cat([out_f, reverse_padded(out_b, lengths)], dim=-1)
        return x * attention_mask.unsqueeze(-1).to(x.dtype)


class SelfAttentionBlock(nn.Module):
    """Multi-head self-attention over non-padding keys, residual connection and layer norm.

    Written out (not ``nn.MultiheadAttention``, whose fused inference path does not export to ONNX).
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // self.heads)
        keys = attention_mask.bool()[:, None, None, :]
        scores = scores.masked_fill(~keys, torch.finfo(scores.dtype).min)
        weights = self.dropout(scores.softmax(-1))
        context = (weights @ v).transpose(1, 2).reshape(b, t, d)
        return self.norm(x + self.out(context))


def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
    """The fixed sine/cosine position table of Vaswani et al., shape (length, dim)."""
    pos = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(pos * div)
    table[:, 1::2] = torch.cos(pos * div[: dim // 2])
    return table


def word_dropout(input_ids: torch.Tensor, p: float, unk_id: int, attention_mask: torch.Tensor) -> torch.Tensor:
    """Replace real tokens by ``unk_id`` with probability ``p`` (training only; the caller checks)."""
    if p <= 0:
        return input_ids
    drop = (torch.rand(input_ids.shape, device=input_ids.device) < p) & attention_mask.bool()
    return input_ids.masked_fill(drop, unk_id)


def masked_mean(x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean over the time axis of (batch, time, dim), counting only non-padding positions."""
    m = attention_mask.unsqueeze(-1).to(x.dtype)
    return (x * m).sum(1) / m.sum(1).clamp_min(1.0)


def masked_max(x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Maximum over the time axis of (batch, time, dim), over non-padding positions only (0 for an empty row)."""
    m = attention_mask.unsqueeze(-1).bool()
    out = x.masked_fill(~m, torch.finfo(x.dtype).min).amax(1)
    return torch.where(m.any(1), out, torch.zeros_like(out))


def token_output(logits: torch.Tensor, labels: torch.Tensor | None, hidden=None) -> TokenClassifierOutput:
    loss = None
    if labels is not None:
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX)
    return TokenClassifierOutput(loss=loss, logits=logits, hidden_states=hidden)


def sequence_output(logits: torch.Tensor, labels: torch.Tensor | None, hidden=None) -> SequenceClassifierOutput:
    loss = None
    if labels is not None:
        loss = F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX)
    return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=hidden)


class StudentPreTrainedModel(PreTrainedModel):
    """Weight initialization, embedding transfer and CRF decoding shared by the students."""

    def decode(self, emissions: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Label ids per position: Viterbi through the CRF head if there is one, else argmax."""
        crf = getattr(self, "crf", None)
        if crf is None:
            return emissions.argmax(-1) * positions.long()
        return crf_decode_ids(crf, emissions, positions)

    base_model_prefix = "student"
    main_input_name = "input_ids"

    def _init_weights(self, module: nn.Module) -> None:
        std = getattr(self.config, "initializer_range", 0.02)
        if isinstance(module, (nn.Linear, nn.Conv1d)):
            nn.init.normal_(module.weight, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=std)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, LinearChainCRF):
            init_crf(module)

    def post_init_with_embeddings(self) -> None:
        """``post_init`` for a model owning ``self.embeddings``, then freeze them if the config says so."""
        self.post_init()
        self.embeddings.weight.requires_grad_(not self.config.freeze_embeddings)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings = value

    def load_embeddings(self, matrix: torch.Tensor, freeze: bool = False) -> None:
        """Copy a (vocab, dim) matrix into the input embeddings (e.g. a teacher's sub-word embeddings); a
        trimmed table takes the rows of its kept ids."""
        emb = self.get_input_embeddings()
        if isinstance(emb, TrimmedEmbedding) and matrix.shape[0] == emb.id_map.shape[0]:
            matrix = matrix[emb.kept_ids.to(matrix.device)]
            matrix[0] = 0.0
        if tuple(matrix.shape) != tuple(emb.weight.shape):
            raise ValueError(f"embedding matrix {tuple(matrix.shape)} does not fit the student's "
                             f"{tuple(emb.weight.shape)} (set vocab_size and embedding_dim to match)")
        with torch.no_grad():
            emb.weight.copy_(matrix)
        emb.weight.requires_grad_(not freeze)
        self.config.freeze_embeddings = freeze


# ------------------------------------------------------------------ optional CRF head
def init_crf(crf: LinearChainCRF) -> None:
    """Zero transitions: a fresh CRF adds nothing to the emissions (from_pretrained leaves them unset)."""
    for p in (crf.transitions, crf.start_transitions, crf.end_transitions):
        nn.init.zeros_(p)


def make_crf(config):
    """A :class:`LinearChainCRF` when ``config.use_crf`` (IOB2 constraints with ``config.crf_constraints``)."""
    if not getattr(config, "use_crf", False):
        return None
    allowed = start = None
    if getattr(config, "crf_constraints", False):
        allowed, start = iob2_allowed_transitions([config.id2label[i] for i in range(config.num_labels)])
    return LinearChainCRF(config.num_labels, allowed, start)


def crf_nll(crf, emissions: torch.Tensor, labels: torch.Tensor, normalizer=None) -> torch.Tensor:
    """CRF negative log-likelihood over labeled positions (labels != -100) of rows that have any."""
    keep = labels != IGNORE_INDEX
    rows = keep.any(1)
    if not rows.any():
        return emissions.sum() * 0.0
    em, mask, order = select_positions(emissions[rows], keep[rows])
    tags = labels[rows].gather(1, order).clamp_min(0)
    nll = crf.nll(em, tags, mask).sum()
    return nll / (normalizer if normalizer is not None else rows.sum())


def crf_decode_ids(crf, emissions: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Viterbi label ids at ``positions`` (batch, time), 0 elsewhere; rows without positions stay 0."""
    out = torch.zeros(positions.shape, dtype=torch.long, device=emissions.device)
    rows = positions.bool().any(1)
    if not rows.any():
        return out
    em, mask, order = select_positions(emissions[rows], positions[rows])
    paths, _ = crf.kbest(em, mask, k=1)
    decoded = torch.where(mask, paths[:, 0], torch.zeros_like(paths[:, 0]))
    sub = torch.zeros(em.shape[0], positions.shape[1], dtype=torch.long, device=emissions.device)
    sub.scatter_(1, order, decoded)
    out[rows] = sub * positions[rows].long()
    return out


def tagging_output(crf, logits: torch.Tensor, labels: torch.Tensor | None, hidden=None) -> TokenClassifierOutput:
    """Token output: cross-entropy loss, or the CRF NLL when the model has a CRF head."""
    if crf is None:
        return token_output(logits, labels, hidden)
    loss = crf_nll(crf, logits, labels) if labels is not None else None
    return TokenClassifierOutput(loss=loss, logits=logits, hidden_states=hidden)


# ------------------------------------------------------------------ classification heads over an encoder
class _EncoderHead(StudentPreTrainedModel):
    """``encoder_class(config)`` (``output_size`` wide) under dropout and a linear classifier; a CRF on top when
    ``config.use_crf`` (token heads)."""

    encoder_class: type = None
    crf_head: bool = False

    def __init__(self, config):
        super().__init__(config)
        self.student = self.encoder_class(config)
        self.dropout = nn.Dropout(getattr(config, "output_dropout", 0.0))
        self.classifier = nn.Linear(self.student.output_size, config.num_labels)
        if self.crf_head:
            self.crf = make_crf(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.student.embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.student.embeddings = value


class EncoderForTokenClassification(_EncoderHead):
    """Linear (optionally CRF) tagging head over ``encoder_class(config)``."""

    crf_head = True

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, output_hidden_states: bool | None = None, **kwargs):
        h = self.student(input_ids, attention_mask)
        logits = self.classifier(self.dropout(h))
        return tagging_output(self.crf, logits, labels, (h,) if output_hidden_states else None)


class EncoderForSequenceClassification(_EncoderHead):
    """Classifier over ``encoder_class(config)``, pooling the first position or the mean (``config.pooling``)."""

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, output_hidden_states: bool | None = None, **kwargs):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        h = self.student(input_ids, attention_mask)
        pooled = h[:, 0] if self.config.pooling == "first" else masked_mean(h, attention_mask)
        logits = self.classifier(self.dropout(pooled))
        return sequence_output(logits, labels, (h,) if output_hidden_states else None)
