"""extract_answer / has_marked_answer / extract_boxed."""

from __future__ import annotations

import pytest

from svpo_harness.grading import extract_answer, extract_boxed, has_marked_answer


@pytest.mark.parametrize(
    ("text", "answer", "kind"),
    [
        # boxed: last one wins, nested braces, \fbox, brace-less form
        (r"so $\boxed{\frac{1}{2}}$.", r"\frac{1}{2}", "boxed"),
        ("\\boxed{1} then\n\\boxed{\\sqrt{x^{2}}}", r"\sqrt{x^{2}}", "boxed"),
        (r"our answer is $\boxed 2$.", "2", "boxed"),
        (r"\fbox{7}", "7", "boxed"),
        (r"\boxed{3} and later \boxed{", "3", "boxed"),  # unterminated last box ignored
        # GSM8K
        ("She pays 5.\n#### 1,000", "1,000", "gsm8k"),
        # "The answer is" / "Final Answer:"
        ("So the answer is 42.", "42", "the_answer_is"),
        ("The answer is: $3.5$.", "3.5", "the_answer_is"),
        ("Final Answer: The final answer is $5$. I hope it is correct.", "5", "the_answer_is"),
        ("Final Answer: (C)", "(C)", "final_answer"),
        ("<p>Final Answer: 12</p>", "12", "final_answer"),
        # GSM8K model solutions end with `A: x`
        ("She makes 9 * 2 = $<<9*2=18>>18\nA: 18", "18", "a_colon"),
        # the latest marker wins among text markers
        ("The answer is 3.\nFinal Answer: 4", "4", "final_answer"),
        # method.md 7.1: the answer marked last wins, whatever its marker
        (r"\boxed{9} The answer is 3.", "3", "the_answer_is"),
        (r"The answer is 3. Checking again: \boxed{9}", "9", "boxed"),
    ],
)
def test_marked(text: str, answer: str, kind: str) -> None:
    got = extract_answer(text)
    assert got is not None
    assert (got.answer, got.kind, got.is_fallback) == (answer, kind, False)
    assert has_marked_answer(text)


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("I think 3 + 4 = 7 apples", "7"),
        ("costs 1,250 dollars in total", "1,250"),
        ("x is -0.5", "-0.5"),
        ("ratio 3/4", "3/4"),
    ],
)
def test_last_number_fallback(text: str, answer: str) -> None:
    got = extract_answer(text, "flexible")
    assert got is not None and got.answer == answer
    assert got.kind == "last_number" and got.is_fallback
    assert extract_answer(text, "strict") is None
    assert not has_marked_answer(text)


def test_styles() -> None:
    text = "The answer is 5.\n#### 6"
    assert extract_answer(text, "gsm8k").answer == "6"
    assert extract_answer(r"The answer is 5", "boxed") is None
    assert extract_answer("no numbers here", "auto") is None
    assert extract_answer("", "auto") is None
    with pytest.raises(ValueError, match="unknown style"):
        extract_answer("1", "bogus")


def test_step_is_final_only_with_marker() -> None:
    # method.md section 2: an intermediate step with numbers is not final.
    assert not has_marked_answer("First, 3 * 4 = 12.\n\n")
    assert not has_marked_answer(r"Then \boxed{")  # unterminated
    assert has_marked_answer(r"Therefore \boxed{12}.")
    assert not has_marked_answer("A: maybe\nmore text follows")  # `A:` only on the last line


def test_extract_boxed() -> None:
    assert extract_boxed(r"a \boxed{x{y}} b") == "x{y}"
    assert extract_boxed("none") is None
    assert extract_boxed(r"\boxed{\{1,2\}}") == r"\{1,2\}"


def test_many_unterminated_boxes_is_linear() -> None:
    import time

    text = r"\boxed{" * 100_000
    t = time.perf_counter()
    assert extract_answer(text, "strict") is None
    assert time.perf_counter() - t < 2.0
