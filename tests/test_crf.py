"""The CRF against brute-force enumeration of every label sequence (float64, small random cases)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from hf_distill.students.crf import LinearChainCRF, iob2_allowed_transitions


def _crf(n, seed, allowed=None, start=None):
    torch.manual_seed(seed)
    crf = LinearChainCRF(n, allowed, start).double()
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_(0, 1)
    return crf


def _case(seed, b=3, t=5, n=4):
    g = torch.Generator().manual_seed(seed)
    emissions = torch.randn(b, t, n, generator=g, dtype=torch.float64) * 2
    lengths = torch.randint(1, t + 1, (b,), generator=g)
    lengths[0] = t
    lengths[-1] = 1  # always one length-1 row
    mask = torch.arange(t).unsqueeze(0) < lengths.unsqueeze(1)
    return emissions, mask


def _brute(crf, emissions, length):
    """Every sequence of one row with its score (explicit loops, constraint penalties included)."""
    trans, start, end = (x.detach() for x in crf.potentials())
    n = emissions.shape[-1]
    out = {}
    for seq in itertools.product(range(n), repeat=length):
        s = start[seq[0]] + sum(emissions[i, y] for i, y in enumerate(seq))
        s = s + sum(trans[a, b] for a, b in zip(seq, seq[1:])) + end[seq[-1]]
        out[seq] = float(s)
    return out


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("constrained", [False, True])
def test_crf_matches_enumeration(seed, constrained):
    labels = ["O", "B-X", "I-X", "B-Y"]
    allowed, start = iob2_allowed_transitions(labels) if constrained else (None, None)
    crf = _crf(4, seed, allowed, start)
    emissions, mask = _case(seed)
    log_z = crf.log_partition(emissions, mask)
    paths, scores = crf.kbest(emissions, mask, k=3)
    viterbi = crf.viterbi(emissions, mask)
    unary, pairwise = crf.marginals(emissions, mask)
    for b in range(emissions.shape[0]):
        length = int(mask[b].sum())
        table = _brute(crf, emissions[b], length)
        z = torch.logsumexp(torch.tensor(list(table.values()), dtype=torch.float64), 0).item()
        assert log_z[b].item() == pytest.approx(z, abs=1e-9)
        ranked = sorted(table.items(), key=lambda kv: -kv[1])
        assert tuple(viterbi[b]) == ranked[0][0]
        for r in range(min(3, len(ranked))):
            assert tuple(paths[b, r, :length].tolist()) == ranked[r][0]
            assert scores[b, r].item() == pytest.approx(ranked[r][1], abs=1e-9)
        probs = {seq: math.exp(s - z) for seq, s in table.items()}
        for i in range(length):
            for y in range(4):
                ref = sum(p for seq, p in probs.items() if seq[i] == y)
                assert unary[b, i, y].item() == pytest.approx(ref, abs=1e-9)
        for i in range(1, length):
            for y0, y1 in itertools.product(range(4), repeat=2):
                ref = sum(p for seq, p in probs.items() if seq[i - 1] == y0 and seq[i] == y1)
                assert pairwise[b, i - 1, y0, y1].item() == pytest.approx(ref, abs=1e-9)
        assert unary[b, length:].abs().sum() == 0  # masked positions carry no mass
        gold = torch.tensor(ranked[1][0] + (0,) * (emissions.shape[1] - length)).unsqueeze(0)
        nll = crf.nll(emissions[b : b + 1], gold, mask[b : b + 1])
        assert nll.item() == pytest.approx(z - ranked[1][1], abs=1e-9)
        if constrained:  # the best path never opens with I-X nor puts I-X after O or B-Y
            tags = [labels[y] for y in viterbi[b]]
            assert tags[0] != "I-X"
            assert all(cur != "I-X" or prev in ("B-X", "I-X") for prev, cur in zip(tags, tags[1:]))


def test_kbest_with_fewer_sequences_than_k():
    crf = _crf(2, 0)
    emissions = torch.randn(1, 1, 2, dtype=torch.float64)
    paths, scores = crf.kbest(emissions, k=3)
    assert torch.isfinite(scores[0, :2]).all() and scores[0, 2] == float("-inf")


def test_bad_shapes_are_named():
    crf = LinearChainCRF(3)
    with pytest.raises(ValueError, match="batch, time, labels"):
        crf.log_partition(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="mask"):
        crf.log_partition(torch.zeros(2, 3, 3), torch.ones(2, 4))
    with pytest.raises(ValueError, match="at least one position"):
        crf.log_partition(torch.zeros(1, 3, 3), torch.tensor([[0, 1, 1]]))


def test_bf16_emissions_run_the_dynamic_programs_in_float32():
    """Under bf16 autocast the emissions arrive in bfloat16; log Z, scores and marginals are computed in float32."""
    crf = LinearChainCRF(4)
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_(0, 1)
    g = torch.Generator().manual_seed(0)
    emissions = (torch.randn(2, 30, 4, generator=g) * 8).to(torch.bfloat16)
    mask = torch.ones(2, 30, dtype=torch.bool)
    reference = emissions.float()
    log_z = crf.log_partition(emissions, mask)
    assert log_z.dtype == torch.float32
    assert torch.allclose(log_z, crf.log_partition(reference, mask))
    tags = torch.randint(0, 4, (2, 30), generator=g)
    assert torch.allclose(crf.nll(emissions, tags, mask), crf.nll(reference, tags, mask))
    unary, _ = crf.marginals(emissions, mask)
    assert unary.dtype == torch.float32 and torch.allclose(unary, crf.marginals(reference, mask)[0])
    assert crf.viterbi(emissions, mask) == crf.viterbi(reference, mask)
