"""Greedy, best-of-N and maj@k on a scripted policy (method.md section 6, other decodings)."""

from __future__ import annotations

import pytest
from scripted_policy import FMT, ScriptedPolicy, Step, final

from svpo_harness.core.search import (
    RootState,
    SearchOptions,
    answer_classes,
    best_of_n,
    greedy,
    majority,
)
from svpo_harness.core.seeding import derive_seed


def roots(policy: ScriptedPolicy, *questions: str) -> list[RootState]:
    return [RootState(q, policy.encode_prompt(q)) for q in questions]


def loop_step(question: str, prefix: str, seed: int, j: int) -> Step:
    return Step("go on\n", 0.1)


# -- greedy ------------------------------------------------------------------------------------
@pytest.mark.parametrize("value_head", [True, False])
def test_greedy_continues_to_the_answer_at_temperature_zero_without_values(value_head):
    script = {
        ("q", ""): [Step("a\n")],
        ("q", "a\n"): [Step("b\n")],
        ("q", "a\nb\n"): [final("3")],
    }
    policy = ScriptedPolicy(script, value_head=value_head)
    [res] = greedy(roots(policy, "q"), policy, SearchOptions(temperature=0.9, b1=4, b2=4))

    assert res.text == "a\nb\nso \\boxed{3}" and res.finished and res.has_answer
    assert res.decoding == "greedy" and res.value is None
    assert len(policy.calls) == 3 and res.policy_calls == 3
    for requests, with_values in policy.calls:
        assert with_values is False
        assert [(r.n, r.temperature) for r in requests] == [(1, 0.0)]


@pytest.mark.parametrize(
    ("last", "reason"),
    [
        (Step("the end", finish="eos"), "eos_no_answer"),
        (Step("the end", finish="stop"), "stop_no_answer"),
        (Step("cut off mid", finish="length"), "truncated"),
        (Step(" \n"), "empty"),
    ],
)
def test_greedy_stops_at_a_dead_end_and_returns_the_text_unfinished(last, reason):
    policy = ScriptedPolicy({("q", ""): [Step("a\n")], ("q", "a\n"): [last]})
    [res] = greedy(roots(policy, "q"), policy)
    assert res.text == "a\n" + last.text  # exactly as sampled, dead step included
    assert not res.finished and not res.has_answer and res.end_reason == reason
    assert len(policy.calls) == 2


def test_greedy_stops_at_max_depth_and_token_budget():
    policy = ScriptedPolicy(default=loop_step)
    [res] = greedy(roots(policy, "q"), policy, SearchOptions(max_depth=4))
    assert res.text == "go on\n" * 4 and res.end_reason == "max_depth" and not res.finished

    policy = ScriptedPolicy(default=loop_step)
    [res] = greedy(roots(policy, "q"), policy, SearchOptions(max_new_tokens=13))
    assert res.text == "go on\n" * 3 and res.end_reason == "token_budget"
    # Without max_depth the step format's max_steps (6) applies.
    policy = ScriptedPolicy(default=loop_step)
    [res] = greedy(roots(policy, "q"), policy)
    assert res.num_steps == 6


# -- best-of-N ---------------------------------------------------------------------------------
BON_SCRIPT = {
    ("q", ""): [Step("a\n", 0.1), Step("b\n", 0.2), Step("c\n", 0.9), Step("d\n", 0.3)],
    ("q", "a\n"): [final("1", 0.2)],
    ("q", "b\n"): [final("2", 0.8)],
    ("q", "c\n"): [Step("dead end", 0.95, "eos")],
    ("q", "d\n"): [final("4", None)],
}


def test_best_of_n_picks_the_finished_solution_with_the_highest_final_value():
    policy = ScriptedPolicy(BON_SCRIPT)
    [res] = best_of_n(roots(policy, "q"), policy, SearchOptions(n_samples=4), seed=5)

    assert res.text == "b\nso \\boxed{2}" and res.value == 0.8 and res.finished
    # N chains, one n=1 request each, seeded per solution, all in one call per depth.
    assert [[r.n for r in reqs] for reqs, _ in policy.calls] == [[1, 1, 1, 1], [1, 1, 1, 1]]
    assert [r.seed for r in policy.calls[0][0]] == [derive_seed(5, "q", 0, i) for i in range(4)]
    assert [r.temperature for r in policy.calls[0][0]] == [0.6] * 4
    assert res.tokens_generated == 8 + 12 * 3 + len("dead end")


def test_best_of_n_without_finished_solutions_returns_the_best_unfinished():
    script = {
        ("q", ""): [Step("a\n", 0.1), Step("b\n", 0.2)],
        ("q", "a\n"): [Step("x", 0.7, "eos")],
        ("q", "b\n"): [Step("y", 0.4, "length")],
    }
    policy = ScriptedPolicy(script)
    [res] = best_of_n(roots(policy, "q"), policy, SearchOptions(n_samples=2))
    assert res.text == "a\nx" and not res.finished and res.end_reason == "eos_no_answer"


def test_best_of_n_ranks_missing_values_last_and_ties_by_solution_index():
    script = {("q", ""): [final("1", None), final("2", -0.5), final("3", -0.5)]}
    policy = ScriptedPolicy(script)
    [res] = best_of_n(roots(policy, "q"), policy, SearchOptions(n_samples=3))
    assert res.text == "so \\boxed{2}"


def test_best_of_n_needs_a_value_head_or_logprob_ranking():
    script = {("q", ""): [final("1", None, "eos"), Step("so \\boxed{2}", None, logprob=-0.1)]}
    policy = ScriptedPolicy(script, value_head=False)
    with pytest.raises(ValueError, match="value head"):
        best_of_n(roots(policy, "q"), policy, SearchOptions(n_samples=2))
    [res] = best_of_n(roots(policy, "q"), policy, SearchOptions(n_samples=2, rank_by="logprob"))
    assert res.text == "so \\boxed{2}" and res.score == pytest.approx(-0.1)


# -- maj@k -------------------------------------------------------------------------------------
def boxed(text: str) -> str | None:
    start = text.find("\\boxed{")
    return text[start + 7 : text.index("}", start)] if start >= 0 else None


NUMERIC = {"1/2": 0.5, "0.5": 0.5, "3": 3.0, "03": 3.0}


def numeric_equiv(pred: str, gold: str) -> bool:
    return NUMERIC[pred] == NUMERIC[gold]


def test_answer_classes_group_equivalent_answers_in_sample_order():
    classes = answer_classes(["3", "1/2", None, "0.5", "03"], numeric_equiv)
    assert classes == [[0, 4], [1, 3]]


@pytest.mark.parametrize(
    ("value_head", "chosen"), [(True, "so \\boxed{0.5}"), (False, "so \\boxed{1/2}")]
)
def test_majority_returns_a_member_of_the_largest_class(value_head, chosen):
    script = {
        ("q", ""): [
            final("1/2", 0.1),
            final("0.5", 0.2),
            final("3", 0.9),
            Step("\\boxed{3} but cut", 0.9, "length"),  # unfinished: no vote
        ]
    }
    policy = ScriptedPolicy(script, value_head=value_head)
    [res] = majority(
        roots(policy, "q"),
        policy,
        SearchOptions(n_samples=4),
        answer_fn=boxed,
        equiv_fn=numeric_equiv,
    )
    assert res.answer == "1/2" and res.votes == 2 and res.decoding == "maj"
    assert res.text == chosen and res.finished
    assert all(with_values is value_head for _, with_values in policy.calls)


def test_majority_ties_between_classes_go_to_the_earliest_class():
    script = {("q", ""): [final("3", 0.1), final("1/2", 0.9), final("0.5", 0.9), final("03", 0.0)]}
    policy = ScriptedPolicy(script)
    [res] = majority(
        roots(policy, "q"),
        policy,
        SearchOptions(n_samples=4),
        answer_fn=boxed,
        equiv_fn=numeric_equiv,
    )
    assert res.answer == "3" and res.votes == 2 and res.text == "so \\boxed{3}"


def test_majority_without_votes_falls_back_to_the_best_unfinished():
    script = {("q", ""): [Step("x", 0.1, "eos"), Step("y", 0.6, "eos")]}
    policy = ScriptedPolicy(script)
    [res] = majority(
        roots(policy, "q"),
        policy,
        SearchOptions(n_samples=2),
        answer_fn=boxed,
        equiv_fn=numeric_equiv,
    )
    assert res.text == "y" and res.answer is None and res.votes == 0 and not res.finished


def test_majority_default_checker_is_the_grading_module():
    script = {("q", ""): [final("1/2"), final("0.5"), final("3")]}
    policy = ScriptedPolicy(script)
    [res] = majority(roots(policy, "q"), policy, SearchOptions(n_samples=3))
    assert res.votes == 2 and res.text in ("so \\boxed{1/2}", "so \\boxed{0.5}")


def test_a_stop_string_step_with_an_answer_finishes_the_path():
    policy = ScriptedPolicy({("q", ""): [Step("a\n")], ("q", "a\n"): [final("3", finish="stop")]})
    [res] = greedy(roots(policy, "q"), policy)
    assert res.finished and res.end_reason == "answer" and res.text == "a\nso \\boxed{3}"


@pytest.mark.parametrize(
    ("stop", "sent"),
    [
        (None, ("Q:", "###")),  # default: the step format's stop sequences
        (("until", "\n", "Q:"), ("until", "Q:")),  # given (lm-eval's until); never the delimiter
        ((), ()),
    ],
)
def test_every_request_carries_the_stop_strings(stop, sent):
    fmt = FMT.with_overrides(stop_sequences=("Q:", "###"))
    policy = ScriptedPolicy({("q", ""): [final("3")]}, step_format=fmt)
    greedy(roots(policy, "q"), policy, SearchOptions(stop=stop))
    assert [r.stop for requests, _ in policy.calls for r in requests] == [sent]
