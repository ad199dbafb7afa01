"""The arithmetic world in the tool layout: the same problems and teacher, Python doing the sums."""

from __future__ import annotations

import re

import pytest

from svpo_harness.core.arith import arith_split
from svpo_harness.core.arith_tool import (
    expected_output,
    gold_tool_solution,
    teacher_tool_solution,
    tool_steps,
)
from svpo_harness.core.step_format import TOOL
from svpo_harness.core.tool_policy import as_program, step_code
from svpo_harness.grading import extract_answer

PROBLEMS = arith_split("train", 300)


def _outputs(solution: str) -> list[str]:
    return re.findall(r"<output>\n(.*?)\n</output>", solution)


def test_layout_of_one_problem() -> None:
    problem = next(p for p in PROBLEMS if p.n_ops == 2 and not p.teacher_slipped)
    steps = tool_steps(problem.solution_steps)
    assert len(steps) == 3
    assert all(step.endswith(TOOL.delimiter) for step in steps)
    first = steps[0]
    assert first.startswith("<step>\n<p>\n") and "\n</p>\n<code>\nprint(" in first
    assert first.endswith("\n</code>\n<output>\n" + _outputs(first)[0] + "\n</output>\n</step>\n")
    assert steps[-1] == f"<step>\n<p>\nFinal Answer: {problem.answer}\n</p>\n</step>\n"


@pytest.mark.parametrize("render", [gold_tool_solution, teacher_tool_solution])
def test_the_format_cuts_solutions_back_into_the_same_steps(render) -> None:
    for problem in PROBLEMS:
        solution = render(problem)
        steps = TOOL.split_steps(solution)
        assert "".join(steps) == solution
        assert len(steps) == problem.n_ops + 1
        assert not any(TOOL.is_final_step(s) for s in steps[:-1])
        assert TOOL.is_final_step(steps[-1])


def test_gold_answers_and_teacher_slips_carry_over() -> None:
    slipped = 0
    for problem in PROBLEMS:
        gold = extract_answer(gold_tool_solution(problem))
        assert gold.kind == "final_answer" and gold.answer == str(problem.answer)
        teacher = extract_answer(teacher_tool_solution(problem)).answer
        assert teacher == str(problem.teacher_answer)
        if problem.teacher_slipped:
            slipped += 1
            # each slip subtracts where the gold divides
            gold_divisions = gold_tool_solution(problem).count("//")
            assert teacher_tool_solution(problem).count("//") < gold_divisions
    assert slipped > 20  # the teacher is careless here too


def test_each_program_starts_from_the_previous_output() -> None:
    for problem in PROBLEMS[:100]:
        steps = TOOL.split_steps(teacher_tool_solution(problem))
        previous = None
        for step in steps[:-1]:
            first_operand = re.search(r"print\((-?\d+) ", step).group(1)
            if previous is not None:
                assert first_operand == previous
            previous = _outputs(step)[0]


def test_expected_outputs_are_what_python_prints() -> None:
    """The demonstrations' outputs are computed without running code; they equal Python's
    arithmetic on each step's program (tests/sandbox/test_arith_tool_sandbox.py runs them)."""
    for problem in PROBLEMS:
        for step in TOOL.split_steps(gold_tool_solution(problem))[:-1]:
            code = as_program(step_code(step[: step.index("</code>") + 7], "</code>"))
            a, op, b = re.fullmatch(r"print\((-?\d+) (//|[-+*]) (\d+)\)", code).groups()
            value = {"+": int.__add__, "-": int.__sub__, "*": int.__mul__, "//": int.__floordiv__}
            assert _outputs(step)[0] == str(value[op](int(a), int(b)))
    assert expected_output(12, "/", 3) == "4" and expected_output(0, "-", 3) == "-3"


def test_a_step_from_elsewhere_is_refused_by_text() -> None:
    with pytest.raises(ValueError, match="not an arithmetic-world step: 'Tom thinks.'"):
        tool_steps(["Tom thinks.", "The answer is 3."])
    with pytest.raises(ValueError, match="final step"):
        tool_steps(["Tom buys 2 more, so 1 + 2 = 3.", "So 3."])
