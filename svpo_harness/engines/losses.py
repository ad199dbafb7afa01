"""Training losses, each a small pure function on tensors (torchtune's one-module-per-loss habit).

All reductions happen in fp32 whatever the model's dtype (method.md section 2.1).

Step-level objectives (method.md section 5) come as *per-item* losses (one per pair, one per
value target) plus a combiner. The combiner takes the sums of a micro-batch and the counts of the
whole accumulation window (one optimizer step), so that summing the micro-batches' totals gives
exactly the full batch's mean: ``sum_i (s_i / N) = (sum_i s_i) / N``. A mean of per-micro-batch
means would weight a pair in a small micro-batch more than one in a large micro-batch, and
mixed record types (pairs, value targets, SFT tokens) make micro-batch sizes differ per term.

Values: ``ValueHead`` already returns ``tanh(Linear(dropout(h)))`` in (-1, 1), so AlphaMath's
value term "MSE of tanh(value) against Q" is ``value_mse_loss(head_output, q)`` with no second
tanh.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

import torch
import torch.nn.functional as F

RankLoss = Literal["hinge", "logistic"]
RANK_LOSSES: tuple[str, ...] = ("hinge", "logistic")


def token_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over positions whose label is not -100 (SFT)."""
    shift_logits = logits[:, :-1].float()
    shift_labels = labels[:, 1:]
    return F.cross_entropy(
        shift_logits.reshape(-1, shift_logits.size(-1)), shift_labels.reshape(-1), ignore_index=-100
    )


# -- per-item losses ----------------------------------------------------------------------------
@dataclass(frozen=True)
class DPOOutput:
    """Per pair: the loss, and the implicit rewards ``beta * (logp - ref_logp)`` (detached)."""

    loss: torch.Tensor  # [pairs]
    chosen_reward: torch.Tensor  # [pairs], no grad
    rejected_reward: torch.Tensor  # [pairs], no grad

    def correct(self) -> torch.Tensor:
        """1 where the implicit reward prefers the chosen step (ties count as wrong)."""
        return (self.chosen_reward > self.rejected_reward).float()


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float = 0.1,
) -> DPOOutput:
    """Step-level DPO (sigmoid): ``-log sigmoid(beta * [(pi_w - ref_w) - (pi_l - ref_l)])``.

    Inputs are the summed log-probs of each pair's chosen / rejected step ``[pairs]``. With
    policy == reference the margin is 0 and the loss is exactly ``log 2``.
    """
    chosen = (policy_chosen.float() - ref_chosen.float().detach()) * beta
    rejected = (policy_rejected.float() - ref_rejected.float().detach()) * beta
    # logsigmoid, not log(sigmoid()): stays finite for large negative margins
    loss = -F.logsigmoid(chosen - rejected)
    return DPOOutput(loss, chosen.detach(), rejected.detach())


def value_rank_loss(
    v_chosen: torch.Tensor,
    v_rejected: torch.Tensor,
    *,
    kind: RankLoss = "hinge",
    margin: float = 0.1,
) -> torch.Tensor:
    """Value ranking loss per pair on ``V(s+a_w)``, ``V(s+a_l)`` (method.md section 5).

    ``hinge``: ``max(0, margin - (v_w - v_l))``; ``logistic``: ``-log sigmoid(v_w - v_l - margin)``
    (rStar-Math's pairwise loss is ``logistic`` with margin 0).
    """
    diff = v_chosen.float() - v_rejected.float()
    if kind == "hinge":
        return F.relu(margin - diff)
    if kind == "logistic":
        return -F.logsigmoid(diff - margin)
    raise ValueError(f"rank loss must be one of {list(RANK_LOSSES)}, got {kind!r}")


def value_mse_loss(values: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``(V - Q)^2`` per value target; ``values`` are the head's tanh outputs (module doc)."""
    return (values.float() - q.to(values.device, torch.float32)) ** 2


def sft_nll(row_logps: torch.Tensor) -> torch.Tensor:
    """SFT cross-entropy per row: minus the row's summed log-probs of its scored tokens.

    Divided by the window's scored-token count in ``combine_losses``, this is the usual
    token-mean cross-entropy (``token_cross_entropy``) over the whole window.
    """
    return -row_logps.float()


# -- combining over an accumulation window ------------------------------------------------------
@dataclass(frozen=True)
class LossWeights:
    """``L = lambda_dpo L_dpo + lambda_rank L_rank + lambda_mse L_mse + lambda_sft L_sft``.

    Defaults are the svpo objective's (method.md section 5); AlphaMath's recipe is
    ``lambda_dpo=0, lambda_rank=0, lambda_mse=0.1, lambda_sft=1``.
    """

    beta: float = 0.1
    lambda_dpo: float = 1.0
    lambda_rank: float = 1.0
    lambda_mse: float = 0.1
    lambda_sft: float = 0.0
    rank_loss: RankLoss = "hinge"
    margin: float = 0.1

    def __post_init__(self) -> None:
        if self.rank_loss not in RANK_LOSSES:
            raise ValueError(
                f"rank_loss must be one of {list(RANK_LOSSES)}, got {self.rank_loss!r}"
            )
        if self.beta <= 0:
            raise ValueError(f"beta must be > 0, got {self.beta}")
        for name in ("lambda_dpo", "lambda_rank", "lambda_mse", "lambda_sft", "margin"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class LossCounts:
    """Denominators over the whole accumulation window (never over one micro-batch)."""

    # counts, or expected counts (floats) under mixed records: collate.window_denominators
    pairs: float = 0  # preference pairs (DPO and ranking terms)
    values: float = 0  # value regression targets (step_q rows)
    sft_tokens: float = 0  # scored tokens of SFT rows

    def __add__(self, other: LossCounts) -> LossCounts:
        return LossCounts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


@dataclass
class LossSums:
    """Sums of per-item losses over one micro-batch (tensors, with grad), plus metric sums.

    ``pref_correct``: pairs whose implicit reward prefers the chosen step; ``rank_correct``:
    pairs whose value prefers it. Micro-batches add up with ``+`` for logging.
    """

    dpo: torch.Tensor
    rank: torch.Tensor
    mse: torch.Tensor
    sft: torch.Tensor
    pref_correct: float = 0.0
    rank_correct: float = 0.0

    @classmethod
    def zeros(cls, device: torch.device | str = "cpu") -> LossSums:
        z = torch.zeros((), device=device)
        return cls(z, z, z, z)

    def __add__(self, other: LossSums) -> LossSums:
        return LossSums(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def detach(self) -> LossSums:
        return LossSums(
            self.dpo.detach(),
            self.rank.detach(),
            self.mse.detach(),
            self.sft.detach(),
            self.pref_correct,
            self.rank_correct,
        )


def _mean(total: torch.Tensor, count: int) -> torch.Tensor:
    # an empty term contributes 0 (e.g. no SFT rows in the svpo objective), not 0/0
    return total / count if count > 0 else total * 0.0


def combine_losses(sums: LossSums, counts: LossCounts, weights: LossWeights) -> torch.Tensor:
    """This micro-batch's share of the window's loss: each term's sum over the window's count.

    Call ``.backward()`` on it per micro-batch; the accumulated gradient is the full batch's.
    """
    return (
        weights.lambda_dpo * _mean(sums.dpo, counts.pairs)
        + weights.lambda_rank * _mean(sums.rank, counts.pairs)
        + weights.lambda_mse * _mean(sums.mse, counts.values)
        + weights.lambda_sft * _mean(sums.sft, counts.sft_tokens)
    )


def loss_report(
    sums: LossSums,
    counts: LossCounts,
    weights: LossWeights,
    denominators: LossCounts | None = None,
) -> dict[str, float]:
    """Each term's window mean and the accuracies, as floats (progress bar, logs).

    ``sums`` should be the window's total (micro-batch sums added with ``+``); ``counts`` what
    the window holds; ``denominators`` what the optimised loss divided by (default ``counts``).
    """
    out = {
        "loss": float(combine_losses(sums.detach(), denominators or counts, weights)),
        "dpo": float(_mean(sums.dpo.detach(), counts.pairs)),
        "rank": float(_mean(sums.rank.detach(), counts.pairs)),
        "mse": float(_mean(sums.mse.detach(), counts.values)),
        "sft": float(_mean(sums.sft.detach(), counts.sft_tokens)),
    }
    if counts.pairs:
        out["pref_acc"] = sums.pref_correct / counts.pairs
        out["rank_acc"] = sums.rank_correct / counts.pairs
    return out
