"""The arithmetic world written with tool-integrated steps (the ``tool`` step format).

The same problems, the same careless teacher (core/arith.py), another way to write a step: the
thought names the operation, a one-line program computes it, and the output shows the result,
as the reference's models write MATH solutions (method.md section 2)::

    <step>
    <p>
    Tom buys 3 more.
    </p>
    <code>
    print(12 + 3)
    </code>
    <output>
    15
    </output>
    </step>

and the last step is ``<step>\\n<p>\\nFinal Answer: 15\\n</p>\\n</step>\\n``. Division is written
``//`` (the world's divisions are exact, and ``//`` prints ``4``, not ``4.0``). A teacher's slip is
the same slip as in the ``arith`` layout: it writes ``12 - 3`` where the story divides, so the
tool computes the wrong operation correctly. What changes is who does the arithmetic: in ``arith``
the model writes ``12 + 3 = 15`` itself; here Python does, and the model only chooses the
operation and copies numbers. The outputs below are what Python prints for the program
(``expected_output``); in search they come from the sandbox (core.tool_policy), and
tests check the two agree.
"""

from __future__ import annotations

import re

from svpo_harness.core.arith import ArithProblem
from svpo_harness.core.step_format import TOOL
from svpo_harness.core.tool_policy import CODE_START, OUTPUT_CLOSE, OUTPUT_OPEN

# An ``arith`` step: "<lead>, so <a> <op> <b> = <c>." (core.arith._write_steps writes them).
_ARITH_STEP = re.compile(
    r"^(?P<lead>.*), so (?P<a>-?\d+) (?P<op>[-+*/]) (?P<b>\d+) = (?P<c>-?\d+)\.$"
)
_PYTHON_OP = {"+": "+", "-": "-", "*": "*", "/": "//"}


def _thought(text: str) -> str:
    return f"<step>\n<p>\n{text}\n</p>\n"


def code_step(lead: str, a: int, op: str, b: int) -> str:
    """One computing step, ending at the code end: what the policy writes before the tool runs."""
    return _thought(f"{lead}.") + f"{CODE_START}\nprint({a} {_PYTHON_OP[op]} {b})\n</code>"


def expected_output(a: int, op: str, b: int) -> str:
    """What Python prints for ``print(a op b)`` (``/`` written ``//``)."""
    if op == "/":
        return str(a // b)
    return str({"+": a + b, "-": a - b, "*": a * b}[op])


def final_step(answer: int | str) -> str:
    return _thought(f"Final Answer: {answer}") + TOOL.delimiter


def tool_steps(steps: tuple[str, ...] | list[str]) -> list[str]:
    """``arith`` steps (one operation each, then ``The answer is N.``) -> tool steps, each
    ending with the format's delimiter, the tool's output included."""
    out = []
    for step in steps[:-1]:
        match = _ARITH_STEP.match(step)
        if match is None:
            raise ValueError(f"not an arithmetic-world step: {step!r}")
        a, op, b = int(match["a"]), match["op"], int(match["b"])
        shown = expected_output(a, op, b)
        out.append(code_step(match["lead"], a, op, b) + OUTPUT_OPEN + shown + OUTPUT_CLOSE
                   + TOOL.delimiter)  # fmt: skip
    last = re.fullmatch(r"The answer is (-?\d+)\.", steps[-1])
    if last is None:
        raise ValueError(f"not an arithmetic-world final step: {steps[-1]!r}")
    out.append(final_step(last.group(1)))
    return out


def teacher_tool_solution(problem: ArithProblem) -> str:
    """The careless teacher's demonstration in the tool layout (what tool SFT learns from)."""
    return "".join(tool_steps(problem.teacher_steps or problem.solution_steps))


def gold_tool_solution(problem: ArithProblem) -> str:
    return "".join(tool_steps(problem.solution_steps))
