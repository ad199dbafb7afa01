"""Tool-integrated steps (core.tool_policy) on the scripted policy, with the real sandbox."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest
from scripted_policy import MarkedFormat, ScriptedPolicy, Step

from svpo_harness.core.mcts import MCTSOptions, MCTSQuestion, grow_trees
from svpo_harness.core.pairs import train_mask
from svpo_harness.core.policy import StepRequest
from svpo_harness.core.step_format import ARITH, COT, TOOL, get_step_format
from svpo_harness.core.tool_policy import (
    ToolStepPolicy,
    as_program,
    format_output,
    step_code,
    with_tools,
)
from svpo_harness.sandbox import sandbox_runner

FMT = MarkedFormat(
    name="tooltest",
    delimiter="</step>\n",
    prompt_template="Q: {question}\n",
    max_steps=6,
    extra={"code_end": "</code>"},
)


def code_step(code: str, value: float = 0.1, logprob: float = -0.5) -> Step:
    return Step(f"<step><p>compute</p><code>\n{code}\n</code>", value, "delimiter", logprob)


class StateValues(ScriptedPolicy):
    """A scripted policy whose whole-state value depends on the state (and records the states)."""

    def values(self, states: Sequence[Sequence[int]]) -> list[float]:
        self.value_states = [tuple(s) for s in states]
        return [len(s) / 1000 for s in states]


def tool(policy: ScriptedPolicy, **kwargs) -> ToolStepPolicy:
    kwargs.setdefault("run", sandbox_runner)
    return ToolStepPolicy(policy, timeout=kwargs.pop("timeout", 5.0), **kwargs)


def test_the_tool_format_is_registered_and_round_trips():
    assert get_step_format("tool") is TOOL
    assert TOOL.step_ends == ("</step>\n", "</code>")
    assert get_step_format(TOOL.to_dict()).code_end == "</code>"
    assert COT.code_end is None and ARITH.step_ends == ("\n",)  # other formats unchanged
    assert "{question}" not in TOOL.prompt("What is 2+2?")
    assert TOOL.is_final_step("<step>\n<p>\nFinal Answer: $\\frac{1}{2}$\n</p>\n</step>\n")
    assert not TOOL.is_final_step("<step>\n<p>\nadd\n</p>\n<code>\nprint(1+1)\n</code>")
    with pytest.raises(ValueError, match="code_end"):
        TOOL.with_overrides(extra={"code_end": "</step>\n"})
    with pytest.raises(ValueError, match="not a tool format"):
        ToolStepPolicy(ScriptedPolicy(), run=sandbox_runner)

    class NoContinuation(ScriptedPolicy):  # e.g. a backend without tool support (vLLM today)
        encode_continuation = None

    with pytest.raises(ValueError, match="not supported by NoContinuation"):
        ToolStepPolicy(NoContinuation(step_format=FMT), run=sandbox_runner)
    # other formats: unwrapped
    assert with_tools(ScriptedPolicy(), sandbox_runner).__class__ is ScriptedPolicy
    wrapped = with_tools(ScriptedPolicy(step_format=FMT), sandbox_runner)
    assert isinstance(wrapped, ToolStepPolicy) and with_tools(wrapped, sandbox_runner) is wrapped


def test_code_and_output_helpers():
    assert step_code("<p>x</p><code>\nprint(1)\n</code>", "</code>") == "print(1)"
    assert step_code("no code here</code>", "</code>") == ""
    assert format_output("42\n", None, 512) == "42"
    err = 'Traceback (most recent call last):\n  File "<sandbox>"\nZeroDivisionError: division'
    assert format_output("", err, 512) == "ZeroDivisionError: division"
    assert format_output("ab" * 300, None, 500) == "ab" * 125 + "..." + "ab" * 125
    assert format_output("0.3333333333333333\n", None, 500) == "0.3333"
    assert format_output("2.5\n", None, 500) == "2.5" and format_output("1e400", None, 9) == "1e400"
    assert (
        as_program("x = 2\nx * 3")
        == "x = 2\n__value = (x * 3)\nif __value is not None:\n    print(__value)\n"
    )
    for unchanged in ("print(1)\n2", "x = 1", "if x:\n    print(x)\nx", "def f(:"):
        assert as_program(unchanged) == unchanged


def test_output_is_inserted_unsampled_and_the_value_is_read_after_it():
    policy = StateValues(step_format=FMT, script={("q", ""): [code_step("print(6 * 7)")]})
    wrapped = tool(policy)
    req = StepRequest(state_ids=policy.encode_prompt("q"), n=2, seed=1)
    inner = ScriptedPolicy(step_format=FMT, script=policy.script)
    inner.encode_prompt("q")
    plain = inner.sample_steps([req])[0][0]
    got = wrapped.sample_steps([req])[0][0]
    added = "\n<output>\n42\n</output>\n</step>\n"
    assert got.text == plain.text + added
    assert got.token_ids[: len(plain.token_ids)] == plain.token_ids
    assert got.sampled_mask == (1,) * len(plain.token_ids) + (0,) * len(added)
    assert got.sampled_count == len(plain.token_ids)
    # the prior counts the sampled ids only: the same with and without the output appended
    assert (got.logprob_sum, got.logprob_mean) == (plain.logprob_sum, plain.logprob_mean)
    state = req.state_ids + got.token_ids
    assert policy.value_states == [state, state]  # read after the output (one batch, 2 samples)
    assert got.value == pytest.approx(len(state) / 1000) and got.value != plain.value
    assert wrapped.programs_run == 1  # identical siblings' programs run once


def test_steps_that_end_without_code_are_left_alone():
    answer = Step("<step><p>The answer is 3</p></step>\n", 0.7)
    policy = StateValues(step_format=FMT, script={("q", ""): [answer]})
    wrapped = tool(policy, run=lambda codes, t: pytest.fail("nothing to run"))
    got = wrapped.sample_steps([StepRequest(policy.encode_prompt("q"), n=1, seed=0)])[0][0]
    assert got.text == answer.text and got.sampled_mask == () and got.value == 0.7


def grade(items):
    return [pred == gold for pred, gold in items]


def tool_steps(question: str, prefix: str, seed: int, j: int) -> Step:
    """Seeded steps: code that works, fails or loops, then an answer after two steps."""
    rng = random.Random(f"{seed}/{j}")
    depth = prefix.count("</step>")
    if depth >= 2:
        return Step(f"<step><p>The answer is {rng.randint(1, 3)}</p></step>\n", 0.5)
    code = rng.choice(["x = 1\nx + 2", "1 / 0", "while True:\n    pass", "print(undefined)"])
    return code_step(code, value=0.0, logprob=rng.uniform(-2, -0.1))


def grow(policy, texts, **kw):
    qs = [MCTSQuestion(t, policy.encode_prompt(t), "3") for t in texts]
    opts = MCTSOptions(simulations=6, children=3, leaf_value="head", max_depth=4)
    return list(grow_trees(qs, policy, opts, seed=3, grade=grade, **kw))


def test_errors_and_timeouts_become_output_and_the_search_goes_on():
    policy = ToolStepPolicy(
        StateValues(step_format=FMT, default=tool_steps, mode="seeded"),
        run=sandbox_runner,
        timeout=0.5,
    )
    (tree,) = grow(policy, ["q"])
    texts = [n.sample.text for n in tree.nodes[1:]]
    assert any("<output>\n3\n</output>" in t for t in texts)
    assert any("<output>\nZeroDivisionError: division by zero\n</output>" in t for t in texts)
    assert any("<output>\nNameError: name 'undefined'" in t for t in texts)
    assert any("<output>\ntimed out after 0.5 s\n</output>" in t for t in texts)
    assert any(n.terminal_reason == "answer" and n.depth == 3 for n in tree.nodes)
    # the tree records which ids were sampled; training drops the rest
    for node in tree.to_nodes()[1:]:
        if "<output>" in node.text:
            cut = node.text.index("\n<output>")
            assert node.sampled_mask == (1,) * cut + (0,) * (len(node.text) - cut)
            assert train_mask(node) == node.sampled_mask
        else:
            assert node.sampled_mask == () and train_mask(node) == ()


def test_a_tool_tree_does_not_depend_on_the_trees_beside_it():
    """What resuming an annotation relies on: a tree regrown alone equals the same tree grown
    beside others (outputs come from running the same programs again)."""
    fast = ["print(1 + 2)", "1 / 0", "print(undefined)"]

    def steps(question: str, prefix: str, seed: int, j: int) -> Step:
        step = tool_steps(question, prefix, seed, j)
        if "while True" in step.text:
            return code_step(fast[j % 3])
        return step

    def run(texts):
        policy = ToolStepPolicy(
            StateValues(step_format=FMT, default=steps, mode="seeded"), run=sandbox_runner
        )
        return {t.question.question_id: t.to_nodes() for t in grow(policy, texts)}

    together = run(["q", "r"])
    assert run(["r"])["r"] == together["r"]
    assert any(0 in n.sampled_mask for n in together["r"])
