"""Structured KD losses against enumeration over every label sequence (float64) and explicit loops."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from hf_distill.losses.structured import kbest_loss, posterior_kd_loss, structural_kd_loss, substructure_l2
from hf_distill.students.crf import LinearChainCRF


def _crf(seed, n=3):
    torch.manual_seed(seed)
    crf = LinearChainCRF(n).double()
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_(0, 1)
    return crf


def _case(seed, b=2, t=4, n=3):
    g = torch.Generator().manual_seed(seed)
    em = torch.randn(b, t, n, generator=g, dtype=torch.float64)
    mask = torch.ones(b, t, dtype=torch.bool)
    mask[1, 2:] = False
    return em, mask


def _log_probs(crf, em, length):
    trans, start, end = (x.detach() for x in crf.potentials())
    n = em.shape[-1]
    scores = {}
    for seq in itertools.product(range(n), repeat=length):
        s = start[seq[0]] + sum(em[i, y] for i, y in enumerate(seq)) + end[seq[-1]]
        scores[seq] = float(s + sum(trans[a, b] for a, b in zip(seq, seq[1:])))
    z = math.log(sum(math.exp(v) for v in scores.values()))
    return {k: v - z for k, v in scores.items()}


@pytest.mark.parametrize("seed", range(3))
def test_structural_kd_is_cross_entropy_over_sequences(seed):
    student, teacher = _crf(seed), _crf(seed + 10)
    s_em, mask = _case(seed)
    t_em, _ = _case(seed + 20)
    unary, pairwise = teacher.marginals(t_em, mask)
    got = structural_kd_loss(s_em, *student.potentials(), mask, unary, pairwise)
    ref = 0.0
    for b in range(2):
        length = int(mask[b].sum())
        lp_t, lp_s = _log_probs(teacher, t_em[b], length), _log_probs(student, s_em[b], length)
        ref += -sum(math.exp(lp_t[y]) * lp_s[y] for y in lp_t)
    assert got.item() == pytest.approx(ref / 2, abs=1e-8)


@pytest.mark.parametrize("seed", range(3))
def test_kbest_loss_weights_teacher_paths(seed):
    student, teacher = _crf(seed), _crf(seed + 10)
    s_em, mask = _case(seed)
    t_em, _ = _case(seed + 20)
    paths, scores = teacher.kbest(t_em, mask, k=3)
    got = kbest_loss(s_em, *student.potentials(), mask, paths, scores)
    ref = 0.0
    for b in range(2):
        length = int(mask[b].sum())
        lp_t, lp_s = _log_probs(teacher, t_em[b], length), _log_probs(student, s_em[b], length)
        top = sorted(lp_t, key=lambda y: -lp_t[y])[:3]
        w = [math.exp(lp_t[y]) for y in top]
        ref += -sum(wi / sum(w) * lp_s[y] for wi, y in zip(w, top))
    assert got.item() == pytest.approx(ref / 2, abs=1e-8)


def test_substructure_l2_loop_reference():
    student, teacher = _crf(1), _crf(2)
    s_em, mask = _case(3)
    t_em, _ = _case(4)
    st, ss, _ = student.potentials()
    tt, ts, _ = teacher.potentials()
    total, count = 0.0, 0
    for b in range(2):
        for pos in range(4):
            if not mask[b, pos]:
                continue
            for j in range(3):
                if pos == 0:
                    total += ((ss[j] + s_em[b, 0, j]) - (ts[j] + t_em[b, 0, j])).item() ** 2
                    count += 1
                    continue
                for i in range(3):
                    total += ((st[i, j] + s_em[b, pos, j]) - (tt[i, j] + t_em[b, pos, j])).item() ** 2
                    count += 1
    got = substructure_l2(s_em, st, t_em, tt, mask, ss, ts)
    assert got.item() == pytest.approx(total / count, rel=1e-9)
    em_only = sum(((s_em[b, p] - t_em[b, p]) ** 2).sum().item() for b in range(2) for p in range(4) if mask[b, p])
    assert substructure_l2(s_em, st, t_em, tt, mask, emissions_only=True).item() == pytest.approx(
        em_only / (int(mask.sum()) * 3), rel=1e-9)
    assert substructure_l2(t_em, tt, t_em, tt, mask, ts, ts).item() == 0.0


def test_posterior_kd_and_its_gradient():
    student, teacher = _crf(5), _crf(6)
    s_em, mask = _case(7)
    s_em.requires_grad_()
    t_unary, _ = teacher.marginals(_case(8)[0], mask)
    s_unary, _ = student.marginals(s_em, mask, create_graph=True)
    loss = posterior_kd_loss(s_unary, t_unary, mask)
    ref = sum((t_unary[b, p] * (t_unary[b, p].log() - s_unary[b, p].log())).sum().item()
              for b in range(2) for p in range(4) if mask[b, p]) / int(mask.sum())
    assert loss.item() == pytest.approx(ref, rel=1e-9)
    loss.backward()
    assert s_em.grad.abs().sum() > 0 and student.transitions.grad.abs().sum() > 0
    assert posterior_kd_loss(t_unary, t_unary, mask).item() == pytest.approx(0.0, abs=1e-12)
