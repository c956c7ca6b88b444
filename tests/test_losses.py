"""Losses against references written differently: float64, explicit loops over positions and labels."""

from __future__ import annotations

import math

import pytest
import torch

from hf_distill.losses import cross_entropy, hard_loss, hidden_cosine, hidden_mse, kl_loss, mse_loss


def _case(seed=0, b=3, length=5, c=4):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(b, length, c, generator=g) * 2
    t = torch.randn(b, length, c, generator=g) * 2
    mask = torch.rand(b, length, generator=g) > 0.3
    return s, t, mask


def _softmax(row, temp):
    m = max(row)
    e = [math.exp((x - m) / temp) for x in row]
    z = sum(e)
    return [x / z for x in e]


def test_kl_matches_a_loop_reference_with_t_squared():
    s, t, mask = _case()
    for temp in (1.0, 2.0, 4.0):
        total, n = 0.0, 0
        for i in range(s.shape[0]):
            for j in range(s.shape[1]):
                if not mask[i, j]:
                    continue
                p = _softmax(t[i, j].double().tolist(), temp)
                q = _softmax(s[i, j].double().tolist(), temp)
                total += sum(pk * (math.log(pk) - math.log(qk)) for pk, qk in zip(p, q))
                n += 1
        ref = temp * temp * total / n
        assert kl_loss(s, t, mask, temperature=temp).item() == pytest.approx(ref, rel=1e-5)
        assert kl_loss(s, t, mask, temperature=temp, normalizer=7).item() == pytest.approx(ref * n / 7, rel=1e-5)


def test_kl_softmax_runs_over_the_label_axis():
    s, t, _ = _case(b=2, length=3, c=5)
    per_pos = kl_loss(s[0, 0], t[0, 0]).item()
    manual = torch.nn.functional.kl_div(
        torch.log_softmax(s[0, 0].double(), -1), torch.log_softmax(t[0, 0].double(), -1), log_target=True,
        reduction="sum")
    assert per_pos == pytest.approx(manual.item(), rel=1e-6)


def test_kl_is_zero_for_identical_logits_and_ignores_minus_inf_teacher_labels():
    s, _, mask = _case()
    assert kl_loss(s, s.clone(), mask).item() == pytest.approx(0.0, abs=1e-6)
    t = s.clone()
    t[..., 3] = float("-inf")  # teacher puts no mass on label 3
    got = kl_loss(s, t, mask).item()
    p = torch.softmax(t.double(), -1)
    logq = torch.log_softmax(s.double(), -1)
    ref = sum((p[i, j, :3] * (torch.log(p[i, j, :3]) - logq[i, j, :3])).sum().item()
              for i in range(s.shape[0]) for j in range(s.shape[1]) if mask[i, j]) / mask.sum().item()
    assert math.isfinite(got) and got == pytest.approx(ref, rel=1e-5)


def test_mse_hard_and_cross_entropy_references():
    s, t, mask = _case(seed=1)
    sq = [((s[i, j].double() - t[i, j].double()) ** 2).mean().item()
          for i in range(3) for j in range(5) if mask[i, j]]
    assert mse_loss(s, t, mask).item() == pytest.approx(sum(sq) / len(sq), rel=1e-6)
    with pytest.raises(ValueError, match="full teacher logits"):
        mse_loss(s, torch.full_like(t, float("-inf")), mask)
    nll = [-(torch.log_softmax(s[i, j].double(), -1)[t[i, j].argmax()]).item()
           for i in range(3) for j in range(5) if mask[i, j]]
    assert hard_loss(s, t, mask).item() == pytest.approx(sum(nll) / len(nll), rel=1e-6)
    labels = t.argmax(-1).masked_fill(~mask, -100)
    assert cross_entropy(s, labels).item() == pytest.approx(sum(nll) / len(nll), rel=1e-6)
    assert cross_entropy(s, torch.full_like(labels, -100)).item() == 0.0


def test_sequence_level_logits_without_mask():
    s, t, _ = _case(seed=2)
    s2, t2 = s[:, 0], t[:, 0]  # (batch, labels)
    ref = sum(kl_loss(s2[i], t2[i], temperature=2.0).item() for i in range(3)) / 3
    assert kl_loss(s2, t2, temperature=2.0).item() == pytest.approx(ref, rel=1e-6)


def test_hidden_losses():
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(2, 4, 6, generator=g), torch.randn(2, 4, 6, generator=g)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    pos = [(i, j) for i in range(2) for j in range(4) if mask[i, j]]
    mse = sum(((a[i, j].double() - b[i, j].double()) ** 2).mean().item() for i, j in pos) / len(pos)
    cos = sum(1 - (a[i, j].double() @ b[i, j].double() / (a[i, j].double().norm() * b[i, j].double().norm())).item()
              for i, j in pos) / len(pos)
    assert hidden_mse(a, b, mask).item() == pytest.approx(mse, rel=1e-5)
    assert hidden_cosine(a, b, mask).item() == pytest.approx(cos, rel=1e-5)
    with pytest.raises(ValueError, match="differ in shape"):
        hidden_mse(a, b[..., :3])
