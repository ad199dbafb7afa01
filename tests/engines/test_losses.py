"""Step-level losses on small tensors: hand-computed values, log 2 at step 0, and the combiner's
global counts (micro-batches add up to the full batch's mean and gradient)."""

from __future__ import annotations

import math

import pytest
import torch

from svpo_harness.engines.losses import (
    LossCounts,
    LossSums,
    LossWeights,
    combine_losses,
    dpo_loss,
    loss_report,
    sft_nll,
    value_mse_loss,
    value_rank_loss,
)


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


def test_dpo_hand_computed() -> None:
    # pair 0: rewards 0.1 * (-1 - -2) = 0.1 and 0.1 * (-3 - -2) = -0.1 -> -log sigmoid(0.2)
    # pair 1: policy == reference -> -log sigmoid(0) = log 2
    # pair 2: rewards 0.1 * (-5 - -1) = -0.4 and 0 -> -log sigmoid(-0.4) = log(1 + e^0.4)
    out = dpo_loss(
        t(-1.0, -4.0, -5.0), t(-3.0, -6.0, -1.0), t(-2.0, -4.0, -1.0), t(-2.0, -6.0, -1.0)
    )
    expected = t(0.5981388693, 0.6931471806, 0.9130152524)
    assert torch.allclose(out.loss, expected, atol=1e-7)
    assert torch.allclose(out.chosen_reward, t(0.1, 0.0, -0.4), atol=1e-7)
    assert torch.allclose(out.rejected_reward, t(-0.1, 0.0, 0.0), atol=1e-7)
    assert out.correct().tolist() == [1.0, 0.0, 0.0]  # a tie counts as wrong


def test_dpo_beta_and_step_zero() -> None:
    out = dpo_loss(t(-1.0), t(-3.0), t(-2.0), t(-2.0), beta=0.5)  # margin 0.5 * 2 = 1
    assert out.loss.item() == pytest.approx(0.3132616875, abs=1e-7)  # log(1 + e^-1)
    logps = torch.randn(64) * 30 - 40
    same = dpo_loss(logps[:32], logps[32:], logps[:32], logps[32:])
    assert torch.allclose(same.loss, torch.full((32,), math.log(2.0)), atol=1e-6)


def test_dpo_gradient_reaches_the_policy_only() -> None:
    policy = t(-1.0, -2.0).requires_grad_()
    ref = t(-1.0, -2.0).requires_grad_()
    dpo_loss(policy[:1], policy[1:], ref[:1], ref[1:]).loss.sum().backward()
    # d/d(pi_w) = -beta * sigmoid(-0) = -0.05, d/d(pi_l) = +0.05
    assert torch.allclose(policy.grad, t(-0.05, 0.05))
    assert ref.grad is None
    big = dpo_loss(t(-1000.0), t(0.0), t(0.0), t(0.0)).loss  # far off: finite, ~ 100
    assert torch.isfinite(big).all() and big.item() == pytest.approx(100.0, rel=1e-6)


def test_rank_losses_hand_computed() -> None:
    vw, vl = t(0.5, 0.2, 0.3), t(0.2, 0.25, 0.3)  # differences 0.3, -0.05, 0
    hinge = value_rank_loss(vw, vl)  # margin 0.1: max(0, 0.1 - d)
    assert torch.allclose(hinge, t(0.0, 0.15, 0.1), atol=1e-7)
    logistic0 = value_rank_loss(vw, vl, kind="logistic", margin=0.0)  # log(1 + e^-d)
    assert torch.allclose(logistic0, t(0.5543552444, 0.7184596480, 0.6931471806), atol=1e-6)
    logistic = value_rank_loss(vw, vl, kind="logistic")  # log(1 + e^-(d - 0.1))
    assert torch.allclose(logistic, t(0.5981388693, 0.7709570478, 0.7443966600), atol=1e-6)
    with pytest.raises(ValueError, match="hinge"):
        value_rank_loss(vw, vl, kind="square")  # type: ignore[arg-type]


def test_mse_and_sft() -> None:
    assert torch.allclose(value_mse_loss(t(0.5, -0.2), t(1.0, -1.0)), t(0.25, 0.64))
    assert torch.allclose(sft_nll(t(-2.5, -0.5)), t(2.5, 0.5))


def test_combine_hand_computed() -> None:
    sums = LossSums(torch.tensor(2.0), torch.tensor(1.0), torch.tensor(0.5), torch.tensor(6.0))
    counts = LossCounts(pairs=4, values=5, sft_tokens=12)
    # 2/4 + 1.0 * 1/4 + 0.1 * 0.5/5 + 0 * 6/12
    assert combine_losses(sums, counts, LossWeights()).item() == pytest.approx(0.76)
    weights = LossWeights(lambda_rank=0.5, lambda_mse=1.0, lambda_sft=1.0, lambda_dpo=0.0)
    assert combine_losses(sums, counts, weights).item() == pytest.approx(0.125 + 0.1 + 0.5)
    # an empty term adds 0, not NaN
    only_sft = combine_losses(sums, LossCounts(sft_tokens=3), LossWeights(lambda_sft=1.0))
    assert only_sft.item() == pytest.approx(2.0)
    report = loss_report(sums, counts, LossWeights())
    assert report["dpo"] == pytest.approx(0.5) and report["loss"] == pytest.approx(0.76)


def test_weights_validation() -> None:
    with pytest.raises(ValueError, match="rank_loss"):
        LossWeights(rank_loss="square")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="beta"):
        LossWeights(beta=0.0)
    with pytest.raises(ValueError, match="lambda_mse"):
        LossWeights(lambda_mse=-1.0)


def _sums(p, r, v, s, pi_w, pi_l, vw, vl, values, q, sft_logps) -> LossSums:
    """Loss sums of one micro-batch holding pairs ``p``, value targets ``v``, SFT rows ``s``."""
    weights = LossWeights()
    dpo = dpo_loss(pi_w[p], pi_l[p], r[0][p], r[1][p])
    return LossSums(
        dpo=dpo.loss.sum(),
        rank=value_rank_loss(vw[p], vl[p], margin=weights.margin).sum(),
        mse=value_mse_loss(values[v], q[v]).sum(),
        sft=sft_nll(sft_logps[s]).sum(),
        pref_correct=float(dpo.correct().sum()),
    )


def test_micro_batches_with_global_counts_equal_the_full_batch() -> None:
    gen = torch.Generator().manual_seed(0)
    params = torch.randn(5, 8, generator=gen).requires_grad_()
    # stand-ins for model outputs, all functions of the same trainable parameters
    pi_w, pi_l = params[0] * 3 - 5, params[1] * 3 - 6
    vw, vl, values = params[2].tanh(), params[3].tanh(), params[4].tanh()
    ref = (torch.randn(8, generator=gen) - 5, torch.randn(8, generator=gen) - 6)
    q = torch.rand(8, generator=gen) * 2 - 1
    sft_logps = -torch.rand(8, generator=gen) * 10 - (params[0] ** 2)
    weights = LossWeights(lambda_sft=0.5)
    # uneven parts: micro-batch a holds 6 pairs, 1 value target, 2 SFT rows; b the rest
    idx = torch.arange(8)
    a = (idx[:6], idx[:1], idx[:2])
    b = (idx[6:], idx[1:], idx[2:])
    counts = LossCounts(pairs=8, values=8, sft_tokens=40)  # the window's totals
    args = (pi_w, pi_l, vw, vl, values, q, sft_logps)

    full = combine_losses(_sums(idx, ref, idx, idx, *args), counts, weights)
    (g_full,) = torch.autograd.grad(full, params, retain_graph=True)
    parts = [combine_losses(_sums(p, ref, v, s, *args), counts, weights) for p, v, s in (a, b)]
    g_parts = [torch.autograd.grad(part, params, retain_graph=True)[0] for part in parts]
    assert (parts[0] + parts[1]).item() == pytest.approx(full.item(), abs=1e-6)
    assert torch.allclose(g_parts[0] + g_parts[1], g_full, atol=1e-6)

    # whereas per-micro-batch means, averaged, are not the batch mean
    def local(p, v, s) -> LossCounts:
        return LossCounts(pairs=len(p), values=len(v), sft_tokens=5 * len(s))

    means = [
        combine_losses(_sums(p, ref, v, s, *args), local(p, v, s), weights) for p, v, s in (a, b)
    ]
    assert abs((means[0] + means[1]).item() / 2 - full.item()) > 1e-3
