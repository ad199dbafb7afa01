"""Extraction from what models actually write (method.md 2 and 7.1), both directions."""

from __future__ import annotations

import pytest

from svpo_harness.grading import extract_answer, has_marked_answer

MINERVA = "Final Answer: The final answer is ${}$. I hope it is correct."


@pytest.mark.parametrize(
    ("text", "answer", "kind"),
    [
        # the last marked answer wins, whatever its marker
        ("\\boxed{9}\nThe answer is 3.", "3", "the_answer_is"),
        ("#### 7\nFinal Answer: 8", "8", "final_answer"),
        ("The answer is 3.\n\\boxed{4}", "4", "boxed"),
        ("Final Answer: 2\nA: 5", "5", "a_colon"),
        # ... but a words-only text answer does not override an earlier mathematical one
        ("\\boxed{5}. Our answer is correct.", "5", "boxed"),
        ("$\\boxed{1440}$.\n\nThe answer is yes! To form 18-41-41 triangles", "1440", "boxed"),
        # Minerva format (lm-eval's math tasks)
        (MINERVA.format("\\frac{1}{2}"), "\\frac{1}{2}", "the_answer_is"),
        (MINERVA.format("(3,2)"), "(3,2)", "the_answer_is"),
        (MINERVA.format("\\$18.90"), "\\$18.90", "the_answer_is"),
        (MINERVA.format("5.5"), "5.5", "the_answer_is"),
        # prose after an answer is not part of it
        ("The answer is $\\boxed{5}$. This is because of 3 steps.", "5", "boxed"),
        ("The final answer is $12$, since we have 3 boxes.", "12", "the_answer_is"),
        ("The answer is 5, since we have 3 boxes.", "5", "the_answer_is"),
        ("The answer is 42 because 6 times 7 is 42.", "42", "the_answer_is"),
        ("So the answer is 7. Then we double check 8.", "7", "the_answer_is"),
        # a sentence after a marker: what follows its last is / = / :
        ("Final Answer: The volume of $ABCD$ is 120.", "120", "final_answer"),
        ("Final Answer: The total cost = 45 dollars.", "45", "final_answer"),
        ("Final Answer: the area of the region: $\\frac{9}{2}$.", "\\frac{9}{2}", "final_answer"),
        ("Final Answer: We get the pair $(3,2)$.", "(3,2)", "final_answer"),
        # an answer that is text stays text
        ("The answer is Monday.", "Monday", "the_answer_is"),
        ("The answer is \\text{(C)}.", "\\text{(C)}", "the_answer_is"),
        ("The answer is x = 2 and y = 3.", "x = 2 and y = 3", "the_answer_is"),
        # several boxes on one line are one answer; equal elements collapse
        ("Therefore, the answers are $\\boxed{-2}$ and $\\boxed{1}$.", "-2, 1", "boxed"),
        ("$(200 + 500)/2 = \\boxed{350}$. Also $200 + 2d = \\boxed{350}$.", "350", "boxed"),
        ("\\boxed{1,000} or \\boxed{2,000}", "1000, 2000", "boxed"),
        ("\\boxed{3} first.\n\nThen \\boxed{5}", "5", "boxed"),
    ],
)  # fmt: skip
def test_marked_model_forms(text: str, answer: str, kind: str) -> None:
    got = extract_answer(text, "flexible")
    assert got is not None
    assert (got.answer, got.kind, got.is_fallback) == (answer, kind, False)
    assert has_marked_answer(text)


@pytest.mark.parametrize(
    ("text", "answer", "kind"),
    [
        # unmarked: the last math span, unless a number is written after it
        ("We simplify, so the pair is $(3,2)$.", "(3,2)", "math_span"),
        ("Hence \\(x = \\frac{1}{2}\\) and that is all.", "x = \\frac{1}{2}", "math_span"),
        ("We get $x=2$, so the area is 12.", "12", "last_number"),
        ("The roots are \\[x = 1 \\pm \\sqrt{2}\\]", "x = 1 \\pm \\sqrt{2}", "math_span"),
        ("After 7 rounds the winner is $\\text{Evelyn}$.", "\\text{Evelyn}", "math_span"),
        (
            "so 3 of them: $\\frac{270}7\\text{ degrees}$",
            "\\frac{270}7\\text{ degrees}",
            "math_span",
        ),
        # `$` as currency is not math
        ("She pays $5 and $6 in total", "6", "last_number"),
        ("It costs $18.", "18", "last_number"),
        # a number is never cut at a unit written without a space
        ("The rope is 12.5cm long", "12.5", "last_number"),
        ("It costs 3.50USD", "3.50", "last_number"),
        ("The floor is 1,000.99m^2", "1,000.99", "last_number"),
        ("So 10^{3} grams or 7", "7", "last_number"),
    ],
)
def test_fallback_model_forms(text: str, answer: str, kind: str) -> None:
    got = extract_answer(text, "flexible")
    assert got is not None
    assert (got.answer, got.kind, got.is_fallback) == (answer, kind, True)
    assert extract_answer(text, "strict") is None
    assert not has_marked_answer(text)


@pytest.mark.parametrize(
    ("text", "not_answer"),
    [
        ("\\boxed{9}\nThe answer is 3.", "9"),
        (MINERVA.format("5"), "5$. I hope it is correct"),
        ("The final answer is $12$, since we have 3 boxes.", "3"),
        ("Final Answer: The volume of $ABCD$ is 120.", "ABCD"),
        ("Therefore, the answers are $\\boxed{-2}$ and $\\boxed{1}$.", "1"),
        ("The rope is 12.5cm long", "12"),
        ("The floor is 1,000.99m^2", "2"),
        ("We simplify, so the pair is $(3,2)$.", "2"),
    ],
)
def test_what_is_not_the_answer(text: str, not_answer: str) -> None:
    got = extract_answer(text, "flexible")
    assert got is not None and got.answer != not_answer


def test_boxed_style_is_still_the_last_box() -> None:
    # Data sets define their gold as the last box: the `boxed` style keeps that definition.
    text = "$\\log_24=\\boxed{2}$, so $\\log_2(4^2) = \\boxed{4}$"
    assert extract_answer(text, "boxed").answer == "4"
    assert extract_answer(text).answer == "2, 4"
