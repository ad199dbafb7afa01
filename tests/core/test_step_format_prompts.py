"""The rendered prompt of every shipped step format is exactly what the model should read."""

from __future__ import annotations

import pytest

from svpo_harness.core.step_format import STEP_FORMATS, get_step_format

EXPECTED = {
    "cot": (
        "Solve the following math problem step by step. Put each step in its own paragraph, "
        "separated by a blank line, and finish with the final answer in the form \\boxed{ANSWER}."
        "\n\nProblem: What is 2 + {3}?\n\nSolution:\n"
    ),
    "arith": "Question: What is 2 + {3}?\nAnswer:\n",
    "tool": "<question> What is 2 + {3}? </question>\n",
}


@pytest.mark.parametrize("name", sorted(STEP_FORMATS))
def test_rendered_prompt_text(name: str) -> None:
    """No doubled braces from str.format escaping; the question's own braces stay as written."""
    fmt = get_step_format(name)
    prompt = fmt.prompt("  What is 2 + {3}?  ")
    assert prompt == EXPECTED[name]
    assert "{{" not in prompt and "}}" not in prompt


def test_every_shipped_format_has_an_expected_prompt() -> None:
    assert set(EXPECTED) == set(STEP_FORMATS)


def test_a_recorded_format_keeps_its_own_template() -> None:
    """Checkpoints record their template; loading one renders it unchanged."""
    fmt = get_step_format("cot")
    recorded = {**fmt.to_dict(), "prompt_template": "Q: {question}\nA:"}
    assert get_step_format(recorded).prompt("1+1?") == "Q: 1+1?\nA:"
