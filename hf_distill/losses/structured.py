"""Structured KD losses for CRF students (pure functions of CRF potentials).

Potentials are ``emissions`` (batch, time, labels), ``transitions`` (labels, labels) indexed
[previous, next], ``start`` and ``end`` (labels,). ``mask`` (batch, time) is 1 on a prefix of each row.
- :func:`substructure_l2`: efficient sub-structured KD (Lin et al. 2022, Eq. 9);
- :func:`kbest_loss`: teacher K-best sequences as weighted pseudo-labels (Eq. 7);
- :func:`structural_kd_loss`: factorized structural KD (Wang et al. 2021, Eq. 8);
- :func:`posterior_kd_loss`: KL between teacher and student unary marginals.
"""

from __future__ import annotations

import torch

from ..students.crf import log_partition, sequence_score


def _up(x: torch.Tensor) -> torch.Tensor:
    """Half precision to float32; float32 and float64 unchanged."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def substructure_l2(
    student_emissions: torch.Tensor,
    student_transitions: torch.Tensor,
    teacher_emissions: torch.Tensor,
    teacher_transitions: torch.Tensor,
    mask: torch.Tensor,
    student_start: torch.Tensor | None = None,
    teacher_start: torch.Tensor | None = None,
    emissions_only: bool = False,
    normalizer=None,
) -> torch.Tensor:
    """Squared difference of sub-structure scores s(y_{l-1}, y_l, x_l) = transition + emission.

    Every label pair at every unmasked position l >= 1 is one sub-structure; position 0 contributes
    start + emission per label (when both starts are given). The sum is divided by the number of
    sub-structures (or ``normalizer``). ``emissions_only`` compares emissions alone (per label).
    """
    mask = mask.bool()
    diff_e = _up(student_emissions) - _up(teacher_emissions)
    if emissions_only:
        per = diff_e.pow(2).sum(-1) * mask
        count = mask.sum() * diff_e.shape[-1]
        return per.sum() / (normalizer if normalizer is not None else count.clamp_min(1))
    diff_t = _up(student_transitions) - _up(teacher_transitions)
    # position l >= 1: (b, l, i, j) = diff_t[i, j] + diff_e[b, l, j]
    pair = diff_t.view(1, 1, *diff_t.shape) + diff_e[:, 1:].unsqueeze(2)
    pair_mask = mask[:, 1:]
    total = (pair.pow(2).sum((-1, -2)) * pair_mask).sum()
    n = diff_t.shape[0]
    count = pair_mask.sum() * n * n
    if student_start is not None and teacher_start is not None:
        first = (_up(student_start) - _up(teacher_start)) + diff_e[:, 0]
        total = total + (first.pow(2).sum(-1) * mask[:, 0]).sum()
        count = count + mask[:, 0].sum() * n
    return total / (normalizer if normalizer is not None else count.clamp_min(1))


def kbest_loss(
    emissions: torch.Tensor,
    transitions: torch.Tensor,
    start: torch.Tensor,
    end: torch.Tensor,
    mask: torch.Tensor,
    paths: torch.Tensor,
    path_scores: torch.Tensor,
    normalizer=None,
) -> torch.Tensor:
    """Σ_k w_k · (−log p_student(y_k | x)), with w = softmax of the teacher's K-best path scores.

    ``paths`` (batch, K, time) and ``path_scores`` (batch, K) come from the teacher's k-best Viterbi;
    paths with score ``-inf`` (fewer than K sequences) get weight 0. Averaged over rows.
    """
    mask = mask.bool()
    b, k, _ = paths.shape
    weights = torch.softmax(_up(path_scores), dim=1)
    weights = torch.nan_to_num(weights, nan=0.0)
    log_z = log_partition(emissions, transitions, start, end, mask)
    flat = paths.reshape(b * k, -1)
    rep = lambda x: x.repeat_interleave(k, dim=0)  # noqa: E731
    scores = sequence_score(rep(emissions), transitions, start, end, rep(mask), flat).view(b, k)
    nll = log_z.unsqueeze(1) - scores
    total = (weights * nll).sum()
    return total / (normalizer if normalizer is not None else b)


def structural_kd_loss(
    emissions: torch.Tensor,
    transitions: torch.Tensor,
    start: torch.Tensor,
    end: torch.Tensor,
    mask: torch.Tensor,
    teacher_unary: torch.Tensor,
    teacher_pairwise: torch.Tensor,
    normalizer=None,
) -> torch.Tensor:
    """Cross-entropy of the student CRF under the teacher's distribution, factorized over sub-structures:

    log Z_student − Σ_u p_teacher(u | x) · s_student(u, x), where u ranges over unary labels (emissions,
    start at the first and end at the last position) and adjacent label pairs (transitions).
    Equals −Σ_y p_teacher(y) log p_student(y). Averaged over rows.
    """
    mask = mask.bool()
    m = mask.to(emissions.dtype)
    log_z = log_partition(emissions, transitions, start, end, mask)
    expected = (teacher_unary * emissions * m.unsqueeze(-1)).sum((1, 2))
    if emissions.shape[1] > 1:
        expected = expected + (teacher_pairwise * transitions * m[:, 1:, None, None]).sum((1, 2, 3))
    expected = expected + (teacher_unary[:, 0] * start).sum(-1)
    last = (mask.long().sum(1) - 1).view(-1, 1, 1).expand(-1, 1, teacher_unary.shape[-1])
    expected = expected + (teacher_unary.gather(1, last).squeeze(1) * end).sum(-1)
    total = (log_z - expected).sum()
    return total / (normalizer if normalizer is not None else emissions.shape[0])


def posterior_kd_loss(
    student_unary: torch.Tensor, teacher_unary: torch.Tensor, mask: torch.Tensor, normalizer=None, eps: float = 1e-12
) -> torch.Tensor:
    """Σ_positions KL(teacher marginals ‖ student marginals) / number of positions (or ``normalizer``)."""
    mask = mask.bool()
    t = _up(teacher_unary).clamp_min(eps)
    s = _up(student_unary).clamp_min(eps)
    per = (_up(teacher_unary) * (t.log() - s.log())).sum(-1) * mask
    return per.sum() / (normalizer if normalizer is not None else mask.sum().clamp_min(1))
