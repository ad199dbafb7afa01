"""The step-level collator on the token contract (method.md sections 2.1 and 5): row layout and
masks, left truncation, dropped overlong steps, sampled masks, batch-independence of log-probs
and values, log 2 at step 0, gradients, and micro-batch accumulation on the tiny model."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from record_builders import pair, path, step_q

from svpo_harness.engines import step_scores
from svpo_harness.engines.collate import (
    batch_loss_sums,
    collate,
    prepare_examples,
    score_rows,
    window_counts,
)
from svpo_harness.engines.losses import LossCounts, LossWeights, combine_losses


def batch_of(records, pad_id=0, max_length=64):
    examples, stats = prepare_examples(records, max_length)
    return collate(examples, pad_id), examples, stats


# -- layout (no model) --------------------------------------------------------------------------
def test_rows_masks_and_metadata() -> None:
    records = [
        pair((5, 6, 7), (8, 9), (10, 11, 12)),
        step_q((5,), (7, 8, 9), q=0.25, mask=(1, 0, 1)),
        path((1, 2), ((3, 4), (5,)), masks=((1, 1), (0,))),
    ]
    batch, _, stats = batch_of(records)
    assert batch.input_ids.tolist() == [
        [5, 6, 7, 8, 9, 0],
        [5, 6, 7, 10, 11, 12],
        [5, 7, 8, 9, 0, 0],
        [1, 2, 3, 4, 5, 0],
    ]
    assert batch.attention_mask.tolist() == [
        [1] * 5 + [0],
        [1] * 6,
        [1] * 4 + [0] * 2,
        [1] * 5 + [0],
    ]
    assert batch.score_mask.int().tolist() == [
        [0, 0, 0, 1, 1, 0],  # the step's ids only, delimiter included
        [0, 0, 0, 1, 1, 1],
        [0, 1, 0, 1, 0, 0],  # sampled_mask zero excluded
        [0, 0, 1, 1, 0, 0],  # a path: all its steps, minus the unsampled one
    ]
    assert batch.position_ids.tolist() == [list(range(6))] * 4
    assert batch.last_col.tolist() == [4, 5, 3, 4]  # each step's last token
    assert batch.last_row.tolist() == [0, 1, 2, 3]
    # each scored id is predicted one column before it, in its own row
    assert batch.score_row.tolist() == [0, 0, 1, 1, 1, 2, 2, 3, 3]
    assert batch.score_col.tolist() == [2, 3, 2, 3, 4, 0, 2, 1, 2]
    assert batch.score_target.tolist() == [8, 9, 10, 11, 12, 7, 9, 3, 4]
    assert batch.score_owner.tolist() == batch.score_row.tolist()
    assert batch.kinds == ("chosen", "rejected", "step_q", "path")
    assert batch.question_ids == ("q0", "q0", "q1", "q2")
    assert batch.chosen.tolist() == [0] and batch.rejected.tolist() == [1]
    assert batch.value_rows.tolist() == [2] and batch.sft_rows.tolist() == [3]
    assert batch.q[:3].tolist() == [1.0, -1.0, 0.25] and math.isnan(batch.q[3])
    assert batch.counts == LossCounts(pairs=1, values=1, sft_tokens=2)
    assert dict(stats.kept) == {"pair": 1, "step_q": 1, "path": 1} and not stats.dropped


def test_pad_id_equal_to_a_real_id_does_not_change_masks() -> None:
    # 9 ends the chosen step (think EOS-as-pad, or a delimiter id) and pads the row after it
    records = [pair((5, 9, 7), (8, 9), (10, 11, 9)), step_q((9,), (9, 9))]
    base, _, _ = batch_of(records, pad_id=0)
    same, _, _ = batch_of(records, pad_id=9)
    for name in ("attention_mask", "score_mask", "position_ids", "last_col", "lengths"):
        assert torch.equal(getattr(base, name), getattr(same, name)), name
    assert same.score_mask[0].int().tolist() == [0, 0, 0, 1, 1, 0]
    assert same.attention_mask[0].tolist() == [1, 1, 1, 1, 1, 0]
    real = base.attention_mask.bool()
    assert torch.equal(base.input_ids[real], same.input_ids[real])


def test_left_truncation_keeps_the_step_and_drops_the_oldest_prefix_ids() -> None:
    prefix = tuple(range(1, 11))
    records = [pair(prefix, (20, 21, 22), (30, 31)), step_q(prefix, (40, 41))]
    batch, examples, stats = batch_of(records, max_length=6)
    chosen, rejected = examples[0].rows
    assert chosen.ids == (8, 9, 10, 20, 21, 22)  # cut to fit the longer step
    assert rejected.ids == (8, 9, 10, 30, 31)  # the same prefix ids for both
    assert chosen.truncated == rejected.truncated == 7
    assert examples[1].rows[0].ids == (7, 8, 9, 10, 40, 41)
    assert dict(stats.truncated) == {"pair": 1, "step_q": 1}
    assert batch.score_mask[0].int().tolist() == [0, 0, 0, 1, 1, 1]
    assert batch.input_ids.shape[1] == 6


def test_overlong_steps_are_dropped_and_counted() -> None:
    records = [
        pair((1, 2), (3, 4, 5, 6), (7,)),  # step of max_length: no id left to predict it from
        pair((1, 2), (3, 4, 5), (7,)),  # fits with one prefix id
        step_q((1,), (3, 4, 5, 6, 7)),
        path((1,), ((3, 4), (5, 6))),
    ]
    examples, stats = prepare_examples(records, max_length=4)
    assert dict(stats.dropped) == {"pair": 1, "step_q": 1, "path": 1}
    assert dict(stats.kept) == {"pair": 1}
    assert [row.ids for row in examples[0].rows] == [(2, 3, 4, 5), (2, 7)]
    assert window_counts(examples) == LossCounts(pairs=1)
    with pytest.raises(ValueError, match="max_length"):
        prepare_examples(records, max_length=1)
    with pytest.raises(ValueError, match="empty prefix"):
        prepare_examples([step_q((), (3,))], max_length=8)


# -- on the tiny model --------------------------------------------------------------------------
@pytest.fixture()
def ids(tiny_tokenizer):
    def enc(text: str, bos: bool = False) -> tuple[int, ...]:
        return tuple(tiny_tokenizer(text, add_special_tokens=bos)["input_ids"])

    return enc


@torch.no_grad()
def test_sampled_mask_zeros_are_excluded_from_the_log_prob_sum(tiny_model, ids, ref) -> None:
    prefix, step = ids("Tom has 3 + 4 apples.\n", bos=True), ids("3 + 4 = 7.\n\n")
    assert len(step) >= 4
    mask = [1] * len(step)
    mask[1] = mask[3] = 0
    batch, _, _ = batch_of([step_q(prefix, step), step_q(prefix, step, mask=mask)])
    logps = score_rows(tiny_model, batch).logps
    lps = ref.logprobs(tiny_model, prefix, step)
    assert logps[0].item() == pytest.approx(sum(lps), abs=1e-5)
    assert logps[1].item() == pytest.approx(
        sum(lp for lp, m in zip(lps, mask, strict=True) if m), abs=1e-5
    )


@torch.no_grad()
def test_alone_and_padded_next_to_longer_rows_agree(tiny_model, tiny_head, ids, ref) -> None:
    prefix, step = ids("Ann has 5 pens.\n", bos=True), ids("5 - 2 = 3.\n")
    target = step_q(prefix, step)
    long_prefix = ids("Bob has 12 + 30 = 42 coins.\n\nThe answer is 42.\nThen Bob gives", bos=True)
    others = [
        pair(long_prefix, ids(" away 30, so 42 - 30 = 12.\n"), ids(" 2.\n")),
        path(long_prefix, [ids(" away 2.\n"), ids("The answer is 40.\n\n")]),
    ]
    alone, _, _ = batch_of([target])
    mixed, _, _ = batch_of([others[0], target, others[1]], pad_id=int(step[-1]))
    row = mixed.kinds.index("step_q")
    assert mixed.input_ids.shape[1] > alone.input_ids.shape[1]  # really padded
    a = score_rows(tiny_model, alone, tiny_head)
    m = score_rows(tiny_model, mixed, tiny_head)
    assert m.logps[row].item() == pytest.approx(a.logps[0].item(), abs=1e-5)
    assert m.values[row].item() == pytest.approx(a.values[0].item(), abs=1e-5)
    value, lps = ref.scores(tiny_model, tiny_head, prefix, step)  # one plain forward
    assert a.logps[0].item() == pytest.approx(sum(lps), abs=1e-5)
    assert a.values[0].item() == pytest.approx(value, abs=1e-5)
    # the path row scores every step, and its value is read at its last token
    p = mixed.kinds.index("path")
    steps = others[1].step_ids[0] + others[1].step_ids[1]
    assert m.logps[p].item() == pytest.approx(
        sum(ref.logprobs(tiny_model, long_prefix, steps)), abs=1e-4
    )
    assert m.values[p].item() == pytest.approx(
        ref.value(tiny_model, tiny_head, long_prefix + steps), abs=1e-5
    )


@torch.no_grad()
def test_the_full_logits_fallback_agrees(tiny_model, tiny_head, ids, monkeypatch) -> None:
    prefix = ids("Sue has 7 cards.\n", bos=True)
    batch, _, _ = batch_of(
        [pair(prefix, ids("7 + 1 = 8.\n"), ids("7.\n")), step_q(prefix, ids("8"))]
    )
    fast = score_rows(tiny_model, batch, tiny_head)
    monkeypatch.setattr(step_scores, "plain_lm_head", lambda model: None)
    slow = score_rows(tiny_model, batch, tiny_head)
    assert torch.allclose(fast.logps, slow.logps, atol=1e-5)
    assert torch.allclose(fast.values, slow.values, atol=1e-6)


def _records(ids) -> list:
    p1, p2 = ids("Tom has 3 + 4 apples.\n", bos=True), ids("Max has 9 - 1 coins.\n", bos=True)
    return [
        pair(p1, ids("3 + 4 = 7.\n"), ids("3 + 4 = 8.\n")),
        pair(p2, ids("9 - 1 = 8.\n"), ids("The answer is 10.\n"), qr=-0.5),
        pair(p1 + ids("3 + 4 = 7.\n"), ids("The answer is 7.\n"), ids("7 + 1 = 9.\n"), qr=0.0),
        step_q(p1, ids("3 + 4 = 7.\n"), q=0.8),
        step_q(p2, ids("9 - 1 = 10.\n"), q=-0.6),
        path(p2, [ids("9 - 1 = 8.\n"), ids("The answer is 8.\n")]),
    ]


def test_dpo_is_log2_at_step_zero(tiny_model, tiny_head, ids) -> None:
    from peft import LoraConfig, get_peft_model

    batch, _, _ = batch_of(_records(ids))
    weights = LossWeights()
    with torch.no_grad():
        scores = score_rows(tiny_model, batch, tiny_head)
        sums = batch_loss_sums(batch, scores, scores.logps, weights)
    assert (sums.dpo / batch.counts.pairs).item() == pytest.approx(math.log(2), abs=1e-6)
    assert sums.pref_correct == 0.0  # ties are not preferences
    # LoRA at init (B = 0) against the same model with its adapter disabled (the reference)
    lora = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"])
    policy = get_peft_model(copy.deepcopy(tiny_model), lora).eval()
    with torch.no_grad():
        with policy.disable_adapter():
            ref_logps = score_rows(policy, batch).logps
        sums = batch_loss_sums(batch, score_rows(policy, batch, tiny_head), ref_logps, weights)
    assert (sums.dpo / batch.counts.pairs).item() == pytest.approx(math.log(2), abs=1e-6)


def _params(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("mode", ["lora", "full"])
def test_gradients_reach_head_and_trainable_weights_only(tiny_model, ids, mode) -> None:
    from peft import LoraConfig, get_peft_model

    from svpo_harness.engines.value_head import ValueHead

    batch, _, _ = batch_of(_records(ids))
    head = ValueHead(tiny_model.config.hidden_size, generator=torch.Generator().manual_seed(0))
    if mode == "lora":  # random B: every LoRA weight gets a gradient on the first step
        cfg = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
        policy = get_peft_model(copy.deepcopy(tiny_model), cfg).eval()
        reference = policy  # with its adapter disabled
    else:
        policy = copy.deepcopy(tiny_model).eval()
        policy.get_input_embeddings().weight.requires_grad_(False)  # a frozen part
        reference = copy.deepcopy(tiny_model).eval().requires_grad_(False)
    ref_before = _params(reference)

    def ref_logps() -> torch.Tensor:
        with torch.no_grad():
            if mode == "lora":
                with policy.disable_adapter():
                    return score_rows(policy, batch).logps
            return score_rows(reference, batch).logps

    before = ref_logps()
    weights = LossWeights(lambda_sft=1.0)
    head.train()
    scores = score_rows(policy, batch, head)
    sums = batch_loss_sums(batch, scores, before, weights)
    combine_losses(sums, batch.counts, weights).backward()
    for name, p in head.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    trainable = {n for n, p in policy.named_parameters() if p.requires_grad}
    assert trainable and (mode == "full" or all("lora_" in n for n in trainable))
    for name, p in policy.named_parameters():
        if name in trainable:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert p.grad is None, name
    if mode == "full":
        assert all(p.grad is None for p in reference.parameters())
    params = [p for p in policy.parameters() if p.requires_grad] + list(head.parameters())
    torch.optim.SGD(params, lr=0.5).step()
    if mode == "full":
        after = _params(reference)
        assert all(torch.equal(ref_before[n], after[n]) for n in ref_before)
    assert torch.equal(ref_logps(), before)  # the reference did not move...
    with torch.no_grad():
        assert not torch.allclose(score_rows(policy, batch).logps, before)  # ...the policy did


def test_micro_batches_accumulate_to_the_full_batch_gradient(tiny_model, tiny_head, ids) -> None:
    examples, _ = prepare_examples(_records(ids), max_length=64)
    policy = copy.deepcopy(tiny_model).eval()
    with torch.no_grad():
        full = collate(examples, 0)
        ref = {q: lp for q, lp in zip(_keys(full), score_rows(tiny_model, full).logps, strict=True)}
    weights = LossWeights(lambda_sft=0.5)
    counts = window_counts(examples)
    assert counts == full.counts

    def grads(batches, local: bool = False) -> list[torch.Tensor]:
        policy.zero_grad()
        tiny_head.zero_grad()
        for batch in batches:
            ref_logps = torch.stack([ref[k] for k in _keys(batch)])
            sums = batch_loss_sums(batch, score_rows(policy, batch, tiny_head), ref_logps, weights)
            # local=True: the mistake, each micro-batch divided by its own counts
            combine_losses(sums, batch.counts if local else counts, weights).backward()
        return [p.grad.clone() for p in [*policy.parameters(), *tiny_head.parameters()]]

    def worst(xs, ys) -> float:  # largest difference relative to each tensor's scale
        return max(
            ((x - y).abs().max() / x.abs().max().clamp(min=1e-12)).item()
            for x, y in zip(xs, ys, strict=True)
        )

    whole = grads([full])
    # uneven parts: 2 pairs in one, 1 pair + 2 step_q + 1 path in the other
    parts = [collate(examples[:2], 0), collate(examples[2:], 0)]
    assert worst(whole, grads(parts)) < 1e-4  # fp32 rounding (other widths, other order)
    assert worst(whole, grads(parts, local=True)) > 1e-2


def _keys(batch) -> list[tuple]:
    """A row's identity for a reference log-prob cache: its ids and kind."""
    return [
        (tuple(batch.input_ids[r, :n].tolist()), batch.kinds[r])
        for r, n in enumerate(batch.lengths.tolist())
    ]


def test_missing_reference_or_head_is_a_clear_error(tiny_model, ids) -> None:
    batch, _, _ = batch_of(_records(ids))
    with torch.no_grad():
        scores = score_rows(tiny_model, batch)
    with pytest.raises(ValueError, match="reference"):
        batch_loss_sums(batch, scores, None, LossWeights())
    with pytest.raises(ValueError, match="value head"):
        batch_loss_sums(batch, scores, scores.logps, LossWeights())
    # an SFT-only objective needs neither
    sums = batch_loss_sums(
        batch, scores, None, LossWeights(lambda_dpo=0, lambda_rank=0, lambda_mse=0, lambda_sft=1)
    )
    assert sums.sft.item() == pytest.approx(-scores.logps[batch.sft_rows].sum().item())
