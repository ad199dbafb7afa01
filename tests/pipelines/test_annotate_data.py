"""Questions for `svpo annotate`: named splits, field auto-detection, bad lines as warnings, ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from svpo_harness.core.arith import arith_split
from svpo_harness.pipelines.annotate.annotate_data import (
    AnnotationDataError,
    InputWarning,
    load_annotation_questions,
    normalise_question,
    question_hash,
)


def write(path: Path, lines: list) -> Path:
    """Objects become JSON lines; strings are written as they are (broken lines)."""
    text = "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines)
    path.write_text(text, encoding="utf-8")
    return path


GSM = [
    {"question": "Tom has 3 apples and buys 4. How many?", "answer": "3+4=<<3+4=7>>7\n#### 7"},
    {"question": "A farm sells 1,200 eggs. How many?", "answer": "It sells 1,234.\n#### 1,234"},
]


def test_gsm8k_style_file(tmp_path: Path) -> None:
    path = write(tmp_path / "mine.jsonl", GSM)
    questions, warns = load_annotation_questions(str(path))
    assert warns == []
    assert [q.gold_answer for q in questions] == ["7", "1234"]  # thousands commas stripped
    assert questions[0].question == GSM[0]["question"]
    assert questions[0].source == str(path)
    expected = f"mine-{question_hash(GSM[0]['question'])[:12]}"
    assert questions[0].question_id == expected


def test_math_style_file_uses_boxed_answer_and_own_ids(tmp_path: Path) -> None:
    path = write(
        tmp_path / "m.jsonl",
        [
            {
                "problem": "Compute $\\frac{1}{4}+\\frac{1}{4}$.",
                "solution": "We add: $\\boxed{\\frac{1}{2}}$. Done \\boxed{\\frac{1}{2}}",
                "unique_id": "test/algebra/12.json",
            },
            {"problem": "Find $x$.", "solution": "So $x=\\boxed{3}$.", "answer": "3", "id": 17},
        ],
    )
    questions, warns = load_annotation_questions(str(path))
    assert warns == []
    assert [q.gold_answer for q in questions] == ["\\frac{1}{2}", "3"]
    assert [q.question_id for q in questions] == ["test/algebra/12.json", "17"]
    assert questions[0].unique_id == "test/algebra/12.json"


def test_plain_records_and_field_overrides(tmp_path: Path) -> None:
    plain = write(
        tmp_path / "p.jsonl",
        [
            {"question": "What is 2+3?", "answer": 5.0, "question_id": "a"},
            {"question": "What is 7-9?", "answer": -2},
            {"question": "Simplify $x+x$.", "answer": " $2x$ "},
        ],
    )
    questions, warns = load_annotation_questions(str(plain))
    assert warns == []
    assert [q.gold_answer for q in questions] == ["5", "-2", "$2x$"]
    assert questions[0].question_id == "a"
    custom = write(tmp_path / "c.jsonl", [{"prompt": "What is 1+1?", "target": "#### 2"}])
    questions, warns = load_annotation_questions(
        str(custom), question_field="prompt", answer_field="target"
    )
    assert (questions[0].question, questions[0].gold_answer, warns) == ("What is 1+1?", "2", [])
    # Without the overrides the same file names the missing field, it does not crash.
    questions, warns = load_annotation_questions(str(custom))
    assert questions == [] and (warns[0].line, warns[0].field) == (1, "question")


def test_bad_lines_are_skipped_and_reported_with_file_line_field(tmp_path: Path) -> None:
    path = write(
        tmp_path / "bad.jsonl",
        [
            {"question": "Good one?", "answer": "#### 4"},
            '{"question": "torn',  # line 2: not JSON
            {"answer": "#### 1"},  # line 3: no question
            {"question": "No gold?"},  # line 4
            {"question": "Empty gold?", "answer": "work\n#### "},  # line 5
            {"problem": "No box?", "solution": "It is 4."},  # line 6
            "",  # line 7: blank, not a warning
            "[1, 2]",  # line 8: not an object
            {"question": "   ", "answer": "1"},  # line 9: empty question
            {"question": "List gold?", "answer": [1]},  # line 10
            {"question": "Last good?", "answer": "5"},  # line 11
        ],
    )
    questions, warns = load_annotation_questions(str(path))
    assert [q.question for q in questions] == ["Good one?", "Last good?"]
    got = [(w.file, w.line, w.field) for w in warns]
    assert got == [
        (str(path), 2, "(line)"),
        (str(path), 3, "question"),
        (str(path), 4, "answer"),
        (str(path), 5, "answer"),
        (str(path), 6, "solution"),
        (str(path), 8, "(line)"),
        (str(path), 9, "question"),
        (str(path), 10, "answer"),
    ]
    assert str(warns[0]).startswith(f"{path}:2: field '(line)': not valid JSON")
    line = json.loads(warns[1].to_json())  # one warnings.jsonl line
    assert line == {
        "file": str(path),
        "line": 3,
        "field": "question",
        "message": warns[1].message,
        "kind": "input",
    }
    assert InputWarning(**line) == warns[1]


def test_question_ids_are_deterministic_unique_and_order_free(tmp_path: Path) -> None:
    records = [{"question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(6)]
    a, _ = load_annotation_questions(str(write(tmp_path / "set.jsonl", records)))
    b, _ = load_annotation_questions(str(write(tmp_path / "set.jsonl", records[::-1])))
    assert [q.question_id for q in a] == [q.question_id for q in b][::-1]  # text decides the id
    again, _ = load_annotation_questions(str(tmp_path / "set.jsonl"))
    assert [q.question_id for q in again] == [q.question_id for q in b]
    limited, _ = load_annotation_questions(str(tmp_path / "set.jsonl"), limit=2)
    assert limited == b[:2]
    # Duplicates: same text (however spaced/cased) or same own id: the first is kept, warned.
    dup = write(
        tmp_path / "dup.jsonl",
        [
            {"question": "What is 1 + 1?", "answer": "2"},
            {"question": "what is  1 + 1", "answer": "2"},
            {"question": "Other?", "answer": "3", "id": "x"},
            {"question": "Another?", "answer": "4", "id": "x"},
        ],
    )
    questions, warns = load_annotation_questions(str(dup))
    assert [q.question for q in questions] == ["What is 1 + 1?", "Other?"]
    assert [(w.line, w.field) for w in warns] == [(2, "question"), (4, "question_id")]


def test_normalised_text_keeps_math_but_not_case_spacing_or_sentence_punctuation() -> None:
    assert normalise_question("  What IS 2+3? ") == normalise_question("what is 2+3")
    assert normalise_question("Is x > 5?") != normalise_question("Is x < 5?")
    assert normalise_question("Tom has 3 apples.\n\nHow many?") == "tom has 3 apples how many"


def test_arith_train_is_the_synthetic_world() -> None:
    questions, warns = load_annotation_questions("arith:train", limit=5)
    problems = arith_split("train", 5)
    assert warns == []
    assert [(q.question_id, q.question, q.gold_answer) for q in questions] == [
        (p.question_id, p.question, str(p.answer)) for p in problems
    ]
    assert {q.source for q in questions} == {"arith:train"}


def test_bad_specs_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(AnnotationDataError, match="unknown data set 'nope'"):
        load_annotation_questions("nope:train", data_dir=tmp_path)
    with pytest.raises(AnnotationDataError, match="neither a file nor a data set"):
        load_annotation_questions(str(tmp_path / "missing.jsonl"))
    with pytest.raises(AnnotationDataError, match="FILE.jsonl only"):
        load_annotation_questions("arith:train", question_field="q")
    with pytest.raises(AnnotationDataError, match="no split"):
        load_annotation_questions("math500:train", data_dir=tmp_path)


def test_named_local_split_tolerates_a_bad_line(tmp_path: Path) -> None:
    (tmp_path / "gsm8k").mkdir()
    write(tmp_path / "gsm8k" / "train.jsonl", [GSM[0], "{oops", {"question": "no answer"}, GSM[1]])
    questions, warns = load_annotation_questions("gsm8k:train", data_dir=tmp_path)
    # ids count every line, so a broken line does not shift the ids after it
    assert [q.question_id for q in questions] == ["gsm8k/train/0", "gsm8k/train/3"]
    assert [(w.line, w.field) for w in warns] == [(2, "(line)"), (3, "answer")]


def test_shared_gsm8k_and_math_files_auto_detected(shared_data: Path) -> None:
    from svpo_harness.data.problems import load_problems

    for name in ("gsm8k", "math"):
        sample = shared_data / name / "sample.jsonl"
        questions, warns = load_annotation_questions(str(sample))
        reference = load_problems(name, "test", shared_data)[:20]  # sample = first 20 test lines
        assert warns == []
        assert [q.question for q in questions] == [p["question"] for p in reference]
        assert [q.gold_answer for q in questions] == [p["answer"] for p in reference]
    test_file, _ = load_annotation_questions(str(shared_data / "gsm8k" / "test.jsonl"))
    assert len(test_file) == 1319
    assert len({q.question_id for q in test_file}) == 1319


def test_shared_named_splits(shared_data: Path) -> None:
    questions, warns = load_annotation_questions("gsm8k:train", data_dir=shared_data)
    assert len(questions) == 7473 and warns == []
    assert (questions[0].question_id, questions[0].gold_answer) == ("gsm8k/train/0", "72")
    questions, warns = load_annotation_questions("math:train", data_dir=shared_data, limit=3)
    assert [q.unique_id for q in questions] == [f"train/algebra/{i}.json" for i in (0, 3, 4)]
    assert all(q.question_id == f"math/train/{q.unique_id}" for q in questions)
