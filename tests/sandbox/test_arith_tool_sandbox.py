"""The tool layout's demonstrated outputs are what the sandbox prints for the same programs."""

from __future__ import annotations

import re

from svpo_harness.core.arith import arith_split
from svpo_harness.core.arith_tool import teacher_tool_solution
from svpo_harness.core.step_format import TOOL
from svpo_harness.core.tool_policy import as_program, format_output, step_code
from svpo_harness.sandbox import sandbox_runner


def test_demonstrated_outputs_equal_the_sandbox_runs(sandbox_ready) -> None:
    codes, shown = [], []
    for problem in arith_split("train", 40):
        for step in TOOL.split_steps(teacher_tool_solution(problem))[:-1]:
            written = step[: step.index("</code>") + len("</code>")]
            codes.append(as_program(step_code(written, "</code>")))
            shown.append(re.search(r"<output>\n(.*?)\n</output>", step).group(1))
    ran = sandbox_runner(codes, 5.0)
    assert len(codes) > 80
    assert [format_output(out, err, 500) for out, err in ran] == shown
