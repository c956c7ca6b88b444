"""Batched linear-chain CRF: log-partition, NLL, Viterbi, k-best Viterbi, unary and pairwise marginals.

The functional API works on potentials — ``emissions`` (batch, time, labels), ``transitions`` (labels,
labels) indexed [previous, next], ``start`` and ``end`` (labels,) — so a teacher's cached potentials and a
student's layer use the same code: :func:`log_partition`, :func:`sequence_score`, :func:`kbest`,
:func:`viterbi`, :func:`marginals`, :func:`check_mask`, and :func:`select_positions` (pack the word
positions). :class:`LinearChainCRF` holds trainable potentials
and delegates to these. Vectorized over batch and labels; loops run over positions only. Sequences are
left-aligned: ``mask`` (batch, time) is 1 on a prefix of each row. Marginals are the gradient of log Z
(as in torch-struct). Imports only torch, so saved CRF students carry this file as remote code.
"""

from __future__ import annotations

import torch
from torch import nn

#: score added to transitions a constraint forbids (finite, so gradients and logsumexp stay defined)
FORBIDDEN = -10000.0


def iob2_allowed_transitions(labels: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Allowed (from, to) transitions and start labels for IOB2: no ``O -> I-X`` and no ``B-X/I-X -> I-Y``."""
    n = len(labels)
    allowed = torch.ones(n, n, dtype=torch.bool)
    start = torch.ones(n, dtype=torch.bool)
    for j, to in enumerate(labels):
        if not to.startswith("I-"):
            continue
        start[j] = False
        for i, frm in enumerate(labels):
            allowed[i, j] = frm[2:] == to[2:] and frm[:2] in ("B-", "I-")
    return allowed, start


def full_precision(emissions: torch.Tensor) -> torch.Tensor:
    """Emissions in float32 when they come in a 16-bit type (bf16 autocast): the log-space dynamic programs
    lose too much precision in 16 bits."""
    return emissions.float() if emissions.dtype in (torch.float16, torch.bfloat16) else emissions


def check_mask(emissions: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """The boolean mask of ``emissions`` (all ones when None); raises on a shape that does not fit."""
    if emissions.dim() != 3:
        raise ValueError(f"emissions must be (batch, time, labels), got {tuple(emissions.shape)}")
    if mask is None:
        mask = torch.ones(emissions.shape[:2], dtype=torch.bool, device=emissions.device)
    if mask.shape != emissions.shape[:2]:
        raise ValueError(f"mask {tuple(mask.shape)} does not match emissions {tuple(emissions.shape[:2])}")
    if emissions.shape[1] and not mask[:, 0].all():
        raise ValueError("every sequence needs at least one position (mask[:, 0] must be 1)")
    return mask.bool()


def log_partition(emissions, transitions, start, end, mask):
    """log Z per sequence, shape (batch,): the forward (alpha) recursion in log space."""
    mask = mask.bool()
    alpha = start + emissions[:, 0]
    for t in range(1, emissions.shape[1]):
        step = torch.logsumexp(alpha.unsqueeze(2) + transitions, dim=1) + emissions[:, t]
        alpha = torch.where(mask[:, t : t + 1], step, alpha)
    return torch.logsumexp(alpha + end, dim=1)


def sequence_score(emissions, transitions, start, end, mask, tags) -> torch.Tensor:
    """Unnormalized score of ``tags`` (batch, time) under the given potentials; masked positions ignored."""
    tags = tags.clamp_min(0)
    m = mask.to(emissions.dtype)
    emit = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)
    total = start[tags[:, 0]] + (emit * m).sum(1)
    if tags.shape[1] > 1:
        total = total + (transitions[tags[:, :-1], tags[:, 1:]] * m[:, 1:]).sum(1)
    last = tags.gather(1, (mask.long().sum(1) - 1).unsqueeze(1)).squeeze(1)
    return total + end[last]


def kbest(emissions: torch.Tensor, transitions: torch.Tensor, start: torch.Tensor, end: torch.Tensor,
      mask: torch.Tensor, k: int = 3):
    """The ``k`` best sequences: tags (batch, k, time) and scores (batch, k), best first.

    Rows with fewer than ``k`` distinct sequences get ``-inf`` scores for the missing ones.
    Positions past a row's length hold 0.
    """
    mask = mask.bool()
    trans = transitions
    b, t_len, n = emissions.shape
    neg = torch.finfo(emissions.dtype).min
    # score[b, state, rank]
    score = torch.full((b, n, k), float("-inf"), dtype=emissions.dtype, device=emissions.device)
    score[:, :, 0] = start + emissions[:, 0]
    back_state, back_rank = [], []
    for t in range(1, t_len):
        cand = score.unsqueeze(3) + trans.view(1, n, 1, n)  # (b, prev, rank, next)
        cand = cand.reshape(b, n * k, n)
        top, idx = cand.topk(k, dim=1)  # (b, k, next)
        new = (top + emissions[:, t].unsqueeze(1)).transpose(1, 2)  # (b, next, k)
        keep = mask[:, t].view(b, 1, 1)
        identity = torch.arange(n, device=emissions.device).view(1, n, 1).expand(b, n, k)
        rank_id = torch.arange(k, device=emissions.device).view(1, 1, k).expand(b, n, k)
        back_state.append(torch.where(keep, (idx // k).transpose(1, 2), identity))
        back_rank.append(torch.where(keep, (idx % k).transpose(1, 2), rank_id))
        score = torch.where(keep, new, score)
    final = (score + end.view(1, n, 1)).reshape(b, n * k)
    best, flat = final.topk(k, dim=1)  # (b, k)
    state, rank = flat // k, flat % k
    lengths = mask.long().sum(1)
    paths = torch.zeros(b, k, t_len, dtype=torch.long, device=emissions.device)
    for t in range(t_len - 1, -1, -1):
        inside = (t < lengths).view(b, 1)
        paths[:, :, t] = torch.where(inside, state, torch.zeros_like(state))
        if t > 0:
            prev_state = back_state[t - 1].gather(1, state.unsqueeze(2).expand(b, k, k)).gather(
                2, rank.unsqueeze(2)).squeeze(2)
            prev_rank = back_rank[t - 1].gather(1, state.unsqueeze(2).expand(b, k, k)).gather(
                2, rank.unsqueeze(2)).squeeze(2)
            state, rank = prev_state, prev_rank
    best = torch.where(best <= neg / 2, torch.full_like(best, float("-inf")), best)
    return paths, best


def viterbi(emissions: torch.Tensor, transitions: torch.Tensor, start: torch.Tensor, end: torch.Tensor,
            mask: torch.Tensor) -> list[list[int]]:
    """The best tag sequence of each row (lists of its own length)."""
    paths, _ = kbest(emissions, transitions, start, end, mask, k=1)
    return [paths[b, 0, :n].tolist() for b, n in enumerate(mask.long().sum(1).tolist())]


def marginals(emissions: torch.Tensor, transitions: torch.Tensor, start: torch.Tensor, end: torch.Tensor,
          mask: torch.Tensor, create_graph: bool = False):
    """Unary (batch, time, labels) and pairwise (batch, time-1, labels, labels) posterior marginals.

    Computed as gradients of log Z with respect to the emissions and to per-position copies of the
    transitions. With ``create_graph`` the marginals stay differentiable (for posterior KD).
    """
    mask = mask.bool()
    trans = transitions
    with torch.enable_grad():
        e = emissions if create_graph else emissions.detach()
        e = e.requires_grad_() if not e.requires_grad else e
        b, t_len, n = e.shape
        pair = trans.expand(b, max(t_len - 1, 0), n, n)
        pair = pair if create_graph else pair.detach()
        pair = pair.clone().requires_grad_()
        alpha = start + e[:, 0]
        for t in range(1, t_len):
            step = torch.logsumexp(alpha.unsqueeze(2) + pair[:, t - 1], dim=1) + e[:, t]
            alpha = torch.where(mask[:, t : t + 1], step, alpha)
        log_z = torch.logsumexp(alpha + end, dim=1)
        unary, pairwise = torch.autograd.grad(log_z.sum(), (e, pair), create_graph=create_graph)
    pair_mask = mask[:, 1:].to(e.dtype).view(b, -1, 1, 1)
    return unary * mask.unsqueeze(2).to(e.dtype), pairwise * pair_mask


def select_positions(x: torch.Tensor, keep: torch.Tensor):
    """Left-align the positions where ``keep`` (batch, time) is true: (packed x, packed mask, index)."""
    keep = keep.bool()
    order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices
    width = max(int(keep.sum(1).max().item()) if keep.numel() else 0, 1)
    order = order[:, :width]
    packed_mask = keep.gather(1, order)
    if x.dim() == 3:
        packed = x.gather(1, order.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
    else:
        packed = x.gather(1, order)
    return packed, packed_mask, order


class LinearChainCRF(nn.Module):
    """CRF over ``num_labels`` tags with start/end transitions and optional forbidden transitions."""

    def __init__(self, num_labels: int, allowed: torch.Tensor | None = None, allowed_start: torch.Tensor | None = None):
        super().__init__()
        self.num_labels = num_labels
        self.transitions = nn.Parameter(torch.zeros(num_labels, num_labels))
        self.start_transitions = nn.Parameter(torch.zeros(num_labels))
        self.end_transitions = nn.Parameter(torch.zeros(num_labels))
        penalty = torch.zeros(num_labels, num_labels)
        start_penalty = torch.zeros(num_labels)
        if allowed is not None:
            penalty = penalty.masked_fill(~allowed.bool(), FORBIDDEN)
        if allowed_start is not None:
            start_penalty = start_penalty.masked_fill(~allowed_start.bool(), FORBIDDEN)
        self.register_buffer("transition_penalty", penalty, persistent=False)
        self.register_buffer("start_penalty", start_penalty, persistent=False)

    # --------------------------------------------------------------- parameters
    def potentials(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(transitions, start, end) with constraint penalties applied."""
        return (self.transitions + self.transition_penalty, self.start_transitions + self.start_penalty,
                self.end_transitions)

    # ------------------------------------------------------------------ scoring
    def log_partition(self, emissions: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """log Z(x) per sequence, shape (batch,)."""
        return log_partition(full_precision(emissions), *self.potentials(), check_mask(emissions, mask))

    def score(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Unnormalized score of ``tags`` (batch, time), shape (batch,); masked positions are ignored."""
        return sequence_score(full_precision(emissions), *self.potentials(), check_mask(emissions, mask), tags)

    def nll(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Negative log-likelihood per sequence, shape (batch,)."""
        return self.log_partition(emissions, mask) - self.score(emissions, tags, mask)

    # ----------------------------------------------------------------- decoding
    def viterbi(self, emissions: torch.Tensor, mask: torch.Tensor | None = None) -> list[list[int]]:
        """The best tag sequence of each row (lists of its own length)."""
        return viterbi(full_precision(emissions), *self.potentials(), check_mask(emissions, mask))

    def kbest(self, emissions: torch.Tensor, mask: torch.Tensor | None = None, k: int = 3):
        """The ``k`` best sequences: tags (batch, k, time) and scores (batch, k), best first (see :func:`kbest`)."""
        return kbest(full_precision(emissions), *self.potentials(), check_mask(emissions, mask), k)

    # ---------------------------------------------------------------- marginals
    def marginals(self, emissions: torch.Tensor, mask: torch.Tensor | None = None, create_graph: bool = False):
        """Unary and pairwise posterior marginals (see :func:`marginals`)."""
        return marginals(full_precision(emissions), *self.potentials(), check_mask(emissions, mask), create_graph)
