"""One forward of a ``StepBatch`` -> per-row log-probs and values -> loss sums.

Works on both layouts (``collate``'s one row per row, ``packing.pack``'s shared prefixes): the
batch says, per scored id, which (physical row, column) predicts it and which logical row it
belongs to, and per logical row where its step's last token is (the value). A packed batch
carries a 4D additive block mask, which transformers hands to ``sdpa`` and ``eager`` attention
as it is (masking_utils._preprocess_mask_arguments); other implementations (flash, flex) cannot
take it, so a packed forward on them is refused (``require_block_mask_support``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from svpo_harness.engines.backends.hf_forward import final_hidden, plain_lm_head
from svpo_harness.engines.losses import (
    LossSums,
    LossWeights,
    dpo_loss,
    sft_nll,
    value_mse_loss,
    value_rank_loss,
)
from svpo_harness.engines.step_batch import StepBatch
from svpo_harness.engines.value_head import ValueHead

BLOCK_MASK_ATTENTION = ("sdpa", "eager")  # take a 4D float mask as it is


@dataclass(frozen=True)
class RowScores:
    """Per row: summed fp32 log-probs of the scored ids, and the value at the step's last token."""

    logps: torch.Tensor  # float32 [rows]
    values: torch.Tensor | None  # float32 [rows]; None without a head


def _base(model: Any) -> Any:
    get_base = getattr(model, "get_base_model", None)  # a PEFT wrapper: its base model
    return get_base() if callable(get_base) else model


def require_block_mask_support(model: Any) -> None:
    """Raise unless the model's attention takes a 4D additive mask (``sdpa`` or ``eager``)."""
    config = getattr(_base(model), "config", None)
    impl = getattr(config, "_attn_implementation", None)
    if impl not in BLOCK_MASK_ATTENTION:
        raise ValueError(
            "packed batches need attention that takes a 4D block mask (sdpa or eager); this model"
            f" uses {impl!r}: load it with attn_implementation='sdpa' or train unpacked"
        )


def _model_dtype(model: Any) -> torch.dtype:
    dtype = getattr(_base(model), "dtype", None)
    if isinstance(dtype, torch.dtype):
        return dtype
    return next(p.dtype for p in model.parameters() if p.is_floating_point())


def _additive_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The block mask in the attention's dtype: sdpa refuses a mask of another float dtype, and
    a cast of float32's finfo.min would overflow to -inf in float16."""
    if mask.dtype == dtype:
        return mask
    blocked = torch.finfo(dtype).min
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(mask < 0, blocked)


def score_rows(model: Any, batch: StepBatch, head: ValueHead | None = None) -> RowScores:
    """One forward of the batch: ``RowScores`` (differentiable unless run under no_grad).

    Modes are the caller's: the policy and reference forwards run with dropout off
    (``model.eval()`` still back-propagates); the head's dropout is on only in training. When the
    logits are plainly ``lm_head(final hidden)`` the LM head runs only at the positions that
    predict a scored id (``[scored, vocab]``, not ``[rows, width, vocab]``).
    """
    mask = batch.attention_mask
    if batch.packed:
        require_block_mask_support(model)
        mask = _additive_mask(mask, _model_dtype(model))
    inputs = {
        "input_ids": batch.input_ids,
        "attention_mask": mask,
        "position_ids": batch.position_ids,
        "use_cache": False,
    }
    rows, cols = batch.score_row, batch.score_col
    plain = plain_lm_head(model)
    if plain is not None:
        decoder, lm_head = plain
        hidden = decoder(**inputs).last_hidden_state
        logits = lm_head(hidden[rows, cols]).float()
    else:
        out = model(**inputs, output_hidden_states=True)
        hidden = final_hidden(out)
        logits = out.logits[rows, cols].float()
    targets = batch.score_target.to(logits.device)
    token_logps = torch.log_softmax(logits, dim=-1).gather(-1, targets[:, None]).squeeze(-1)
    logps = torch.zeros(batch.n_rows, dtype=torch.float32, device=token_logps.device)
    logps = logps.index_add(0, batch.score_owner.to(logps.device), token_logps)
    values = None
    if head is not None:
        last = hidden[batch.last_row.to(hidden.device), batch.last_col.to(hidden.device)]
        values = head(last)
    return RowScores(logps, values)


def batch_loss_sums(
    batch: StepBatch,
    policy: RowScores,
    ref_logps: torch.Tensor | None,
    weights: LossWeights,
) -> LossSums:
    """Sums of each loss term over this batch's rows; divide with ``combine_losses``.

    ``ref_logps``: the reference's ``score_rows(...).logps`` for the same rows (entries of rows
    that are not in a pair are ignored), computed under no_grad or read from a cache.
    MSE targets are the ``step_q`` rows only: pair steps are visited steps, already there.
    """
    sums = LossSums.zeros(policy.logps.device)
    values = policy.values
    if batch.chosen.numel():
        win, lose = batch.chosen, batch.rejected
        if weights.lambda_dpo > 0:
            if ref_logps is None:
                raise ValueError("DPO needs the reference log-probs of the pair rows")
            ref = ref_logps.to(policy.logps.device)
            out = dpo_loss(policy.logps[win], policy.logps[lose], ref[win], ref[lose], weights.beta)
            sums.dpo, sums.pref_correct = out.loss.sum(), float(out.correct().sum())
        if values is not None:
            rank = value_rank_loss(
                values[win], values[lose], kind=weights.rank_loss, margin=weights.margin
            )
            sums.rank = rank.sum()
            sums.rank_correct = float((values[win] > values[lose]).sum())
        elif weights.lambda_rank > 0:
            raise ValueError("the value ranking loss needs a value head (score_rows(head=...))")
    if batch.value_rows.numel():
        if values is not None:
            v = batch.value_rows
            sums.mse = value_mse_loss(values[v], batch.q.to(values.device)[v]).sum()
        elif weights.lambda_mse > 0:
            raise ValueError("the value regression needs a value head (score_rows(head=...))")
    if batch.sft_rows.numel():
        sums.sft = sft_nll(policy.logps[batch.sft_rows]).sum()
    return sums
