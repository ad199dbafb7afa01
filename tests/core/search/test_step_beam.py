"""SBS(B1, B2) on a scripted policy (method.md section 6): widths, dead ends, ranking, costs."""

from __future__ import annotations

import random

import pytest
from scripted_policy import ScriptedPolicy, Step, final

from svpo_harness.core.search import ROOT_ID, RootState, SearchOptions, step_beam
from svpo_harness.core.seeding import derive_seed


def roots(policy: ScriptedPolicy, *questions: str) -> list[RootState]:
    return [RootState(q, policy.encode_prompt(q)) for q in questions]


def never_final(question: str, prefix: str, seed: int, j: int) -> Step:
    """Distinct non-final siblings with seed-dependent values in [-1, 1]."""
    value = round(random.Random(f"{seed}/{j}").uniform(-1, 1), 3)
    return Step(f"d{prefix.count(chr(10))}s{j}\n", value)


def statuses(result) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for cand in result.tree:
        out.setdefault(cand.status, []).append(cand.text)
    return out


def test_root_gets_b1_times_b2_then_b2_per_kept_beam_and_at_most_b1_kept():
    policy = ScriptedPolicy(default=never_final)
    opts = SearchOptions(b1=3, b2=5, max_depth=3)
    [res] = step_beam(roots(policy, "q"), policy, opts, seed=1)

    assert [[r.n for r in reqs] for reqs, _ in policy.calls] == [[15], [5, 5, 5], [5, 5, 5]]
    for depth in (1, 2, 3):
        level = [c for c in res.tree if c.depth == depth]
        assert len(level) == 15
        assert sum(c.status != "pruned" for c in level) == 3
    # Nothing finishes: every beam is dropped at max_depth and the best one comes back.
    assert {c.reason for c in res.tree if c.depth == 3 and c.status == "dropped"} == {"max_depth"}
    assert max(c.depth for c in res.tree) == 3
    assert res.policy_calls == 3 and not res.finished and res.end_reason == "max_depth"
    best = min((c for c in res.tree if c.status == "dropped"), key=lambda c: (-c.value, c.id))
    assert res.chosen_id == best.id and res.value == best.value


def shrinking_script(last_final_value: float) -> dict[tuple[str, str], list[Step]]:
    return {
        ("q", ""): [
            final("1", 0.9),
            Step("a\n", 0.8),
            Step("b\n", 0.7),
            Step("c\n", 0.1),
            Step("d\n", 0.0),
            Step("e\n", -0.5),
        ],
        ("q", "a\n"): [final("2", 0.3), Step("aa\n", 0.6)],
        ("q", "b\n"): [Step("ba\n", 0.2), Step("bb\n", -0.2)],
        ("q", "a\naa\n"): [final("3", last_final_value), Step("y\n", 0.1)],
    }


@pytest.mark.parametrize(
    ("last", "expected"), [(0.95, "a\naa\nso \\boxed{3}"), (0.5, "so \\boxed{1}")]
)
def test_width_shrinks_on_final_answers_and_best_finished_value_wins(last, expected):
    policy = ScriptedPolicy(shrinking_script(last))
    [res] = step_beam(roots(policy, "q"), policy, SearchOptions(b1=3, b2=2), seed=0)

    # w: 3 -> 2 (final "1") -> 1 (final "2") -> 0 (final "3"): three levels, then stop.
    assert [[r.n for r in reqs] for reqs, _ in policy.calls] == [[6], [2, 2], [2]]
    by_status = statuses(res)
    assert by_status["finished"] == ["so \\boxed{1}", "so \\boxed{2}", "so \\boxed{3}"]
    assert by_status["pruned"] == ["c\n", "d\n", "e\n", "ba\n", "bb\n", "y\n"]
    assert res.finished and res.has_answer and res.end_reason == "answer"
    assert res.text == expected
    assert res.value == max(last, 0.9)


def test_dead_ends_are_dropped_and_unfinished_fallback_is_the_best_dropped():
    script = {
        ("q", ""): [
            Step("so \\boxed{4} and mo", 0.9, "length"),  # truncated, answer or not
            Step("  \n", 0.8),  # whitespace only
            Step("the end", 0.7, "eos"),  # EOS without a marked answer
            Step("ok\n", 0.6),
            Step("z\n", 0.5),
            Step("zz\n", 0.4),
        ]
    }
    policy = ScriptedPolicy(script)
    [res] = step_beam(roots(policy, "q"), policy, SearchOptions(b1=3, b2=2), seed=0)

    assert [(c.status, c.reason) for c in res.tree[:3]] == [
        ("dropped", "truncated"),
        ("dropped", "empty"),
        ("dropped", "eos_no_answer"),
    ]
    assert statuses(res)["pruned"] == ["ok\n", "z\n", "zz\n"]
    assert len(policy.calls) == 1  # w reached 0 after the first level
    assert not res.finished and res.has_answer and res.end_reason == "truncated"
    assert res.text == "so \\boxed{4} and mo" and res.value == 0.9


def test_ties_go_to_the_earlier_candidate():
    script = {("q", ""): [final(str(i), 0.5) for i in range(4)]}
    policy = ScriptedPolicy(script)
    [res] = step_beam(roots(policy, "q"), policy, SearchOptions(b1=2, b2=2), seed=0)
    assert [c.status for c in res.tree] == ["finished", "finished", "pruned", "pruned"]
    assert res.chosen_id == 1 and res.text == "so \\boxed{0}"


def test_exact_duplicate_siblings_are_dropped_but_still_cost_tokens():
    script = {("q", ""): [Step("a\n", 0.9), Step("a\n", 0.9), Step("b\n", 0.1), Step("c\n", 0.0)]}
    opts = SearchOptions(b1=2, b2=2, max_depth=1)

    policy = ScriptedPolicy(script)
    [res] = step_beam(roots(policy, "q"), policy, opts, seed=0)
    assert [c.status for c in res.tree] == ["dropped", "duplicate", "dropped", "pruned"]
    assert res.tokens_generated == 8

    policy = ScriptedPolicy(script)
    opts = SearchOptions(b1=2, b2=2, max_depth=1, drop_duplicates=False)
    [res] = step_beam(roots(policy, "q"), policy, opts, seed=0)
    assert [c.status for c in res.tree] == ["dropped", "dropped", "pruned", "pruned"]
    assert res.tokens_generated == 8


def test_duplicates_are_only_checked_among_siblings():
    script = {
        ("q", ""): [Step("a\n", 0.9), Step("b\n", 0.8)],
        ("q", "a\n"): [final("1", 0.5)],
        ("q", "b\n"): [final("1", 0.4)],
    }
    policy = ScriptedPolicy(script)
    [res] = step_beam(roots(policy, "q"), policy, SearchOptions(b1=2, b2=1), seed=0)
    assert [c.status for c in res.tree] == ["kept", "kept", "finished", "finished"]


def test_token_budget_ends_a_path_as_unfinished():
    policy = ScriptedPolicy({("q", ""): [Step("ab\n")], ("q", "ab\n"): [Step("cd\n")]})
    opts = SearchOptions(b1=1, b2=1, max_new_tokens=4)
    [res] = step_beam(roots(policy, "q"), policy, opts, seed=0)
    assert len(policy.calls) == 2
    assert res.text == "ab\ncd\n" and not res.finished and res.end_reason == "token_budget"


def test_text_ids_states_and_costs_are_exact():
    policy = ScriptedPolicy(shrinking_script(0.95))
    [root] = roots(policy, "q")
    [res] = step_beam([root], policy, SearchOptions(b1=3, b2=2), seed=0)

    assert res.token_ids == tuple(ord(ch) for ch in res.text)
    assert [len(s) for s in res.step_token_ids] == [2, 3, 12]
    # A deeper request's state is prompt ids + stored step ids, never re-encoded text.
    level2 = policy.calls[1][0]
    assert level2[0].state_ids == root.prompt_ids + tuple(ord(ch) for ch in "a\n")
    assert res.tokens_generated == sum(len(c.text) for c in res.tree) == 57
    assert res.policy_calls == 3 and res.seconds >= 0


def test_request_seeds_derive_from_question_depth_and_beam():
    policy = ScriptedPolicy(shrinking_script(0.95))
    step_beam(roots(policy, "q"), policy, SearchOptions(b1=3, b2=2), seed=11)
    seeds = [[r.seed for r in reqs] for reqs, _ in policy.calls]
    # Beams "a" and "b" are candidates 2 and 3; "aa" is candidate 8.
    assert seeds == [
        [derive_seed(11, "q", 0, ROOT_ID)],
        [derive_seed(11, "q", 1, 2), derive_seed(11, "q", 1, 3)],
        [derive_seed(11, "q", 2, 8)],
    ]


def test_all_questions_share_one_call_per_level():
    script = {("done", ""): [final("1", 0.9)]}
    policy = ScriptedPolicy(script, default=never_final)
    opts = SearchOptions(b1=2, b2=2, max_depth=3)
    results = step_beam(roots(policy, "q1", "done", "q2"), policy, opts)
    assert [len(reqs) for reqs, _ in policy.calls] == [3, 4, 4]
    assert [r.policy_calls for r in results] == [3, 1, 3]
    assert [r.key for r in results] == ["q1", "done", "q2"]
    assert results[1].finished and not results[0].finished


def test_rank_by_logprob_needs_no_value_head():
    script = {
        ("q", ""): [Step("a\n", None, logprob=-2.0), Step("b\n", None, logprob=-0.5)],
        ("q", "b\n"): [final("1", None), Step("bb\n", None, logprob=-0.1)],
        ("q", "b\nbb\n"): [final("2", None), final("3", None)],
    }
    policy = ScriptedPolicy(script, value_head=False)
    opts = SearchOptions(b1=1, b2=2, rank_by="logprob")
    [res] = step_beam(roots(policy, "q"), policy, opts, seed=0)

    assert all(with_values is False for _, with_values in policy.calls)
    # Path means: "b" -0.5; "b,bb" (-1 - 0.3) / 5 = -0.26 beats "b,final" (-1 - 12) / 14.
    assert res.text == "b\nbb\nso \\boxed{2}" and res.finished and res.value is None
    assert res.score == pytest.approx((-1.0 - 0.3 - 12.0) / 17)


def test_sbs_without_value_head_is_a_clear_error():
    policy = ScriptedPolicy(default=never_final, value_head=False)
    with pytest.raises(ValueError, match="rank_by='logprob'"):
        step_beam(roots(policy, "q"), policy, SearchOptions())
    assert policy.calls == []


@pytest.mark.parametrize("hook", ["short_by", "lists_short_by"])
def test_wrong_sample_counts_raise(hook):
    policy = ScriptedPolicy(default=never_final, **{hook: 1})
    with pytest.raises(ValueError, match="policy returned"):
        step_beam(roots(policy, "q"), policy, SearchOptions(b1=2, b2=2))
