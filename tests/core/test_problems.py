"""Problem loaders: every shared data set normalises, bad input names file:line:field."""

from __future__ import annotations

import json

import pytest

from svpo_harness.data.problems import (
    DATASETS,
    DataUnavailableError,
    ProblemFormatError,
    load_problems,
)

# Line counts from ../shared/data/README.md.
EXPECTED = {
    ("gsm8k", "train"): 7473,
    ("gsm8k", "test"): 1319,
    ("math", "train"): 7498,  # two empty \\boxed{} golds (number_theory 7115, 7117) skipped
    ("math", "test"): 5000,
    ("math500", "test"): 500,
    ("gaokao2023en", "test"): 385,
    ("ocw", "test"): 272,
    ("svamp", "test"): 1000,
    ("asdiv", "test"): 2215,
    ("mawps", "test"): 2065,
    ("tabmwp", "test"): 1000,
    ("gsm_hard", "test"): 1319,
    ("college_math", "test"): 2818,
}


@pytest.mark.parametrize(("name", "split"), sorted(EXPECTED))
def test_every_shared_set_loads_and_normalises(shared_data, name, split):
    rows = load_problems(name, split, data_dir=shared_data)
    assert len(rows) == EXPECTED[(name, split)]
    assert len({r["question_id"] for r in rows}) == len(rows), "question ids must be unique"
    for row in rows:
        assert row["question"].strip() and row["answer"].strip(), row["question_id"]
        assert row["dataset"] == name


def test_known_gold_answers(shared_data):
    gsm = load_problems("gsm8k", "test", data_dir=shared_data)
    assert gsm[0]["answer"] == "18"
    asdiv = load_problems("asdiv", "test", data_dir=shared_data)
    assert all(not r["answer"].endswith(")") or "(" not in r["answer"] for r in asdiv[:50])
    svamp = load_problems("svamp", "test", data_dir=shared_data)
    assert all(not r["answer"].endswith(".0") for r in svamp)
    math = load_problems("math", "test", data_dir=shared_data)
    assert math[0]["answer"] == "2" and math[0]["question_id"] == "math/test/test/algebra/1.json"


def test_every_set_is_declared():
    assert {name for name, _ in EXPECTED} == set(DATASETS)


def test_missing_local_file_is_one_clear_line(tmp_path):
    with pytest.raises(DataUnavailableError) as err:
        load_problems("gsm8k", "test", data_dir=tmp_path)
    message = str(err.value)
    assert "gsm8k/test.jsonl" in message and "svpo data" in message and "\n" not in message


def test_offline_hub_is_one_clear_line(monkeypatch):
    monkeypatch.delenv("SVPO_DATA_DIR", raising=False)
    with pytest.raises(DataUnavailableError) as err:
        load_problems("math500", "test")
    assert "SVPO_DATA_DIR" in str(err.value) and "HuggingFaceH4/MATH-500" in str(err.value)


def test_bad_record_names_file_line_and_field(tmp_path):
    folder = tmp_path / "gsm8k"
    folder.mkdir()
    good = {"question": "1+1?", "answer": "1+1=2\n#### 2"}
    (folder / "test.jsonl").write_text(
        json.dumps(good) + "\n" + json.dumps({"question": "no answer"}) + "\n"
    )
    with pytest.raises(ProblemFormatError, match=r"test\.jsonl:2: field 'answer'"):
        load_problems("gsm8k", "test", data_dir=tmp_path)


def test_bad_json_names_file_and_line(tmp_path):
    folder = tmp_path / "svamp"
    folder.mkdir()
    (folder / "test.jsonl").write_text('{"Body": "a", "Question": "b", "Answer": 1}\n{oops\n')
    with pytest.raises(ProblemFormatError, match=r"test\.jsonl:2: not valid JSON"):
        load_problems("svamp", "test", data_dir=tmp_path)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="gsm8k"):
        load_problems("gsm9k")
    with pytest.raises(ValueError, match="has no split"):
        load_problems("math500", "train")


def test_gaokao_answers_hidden_in_the_question_are_recovered_and_removed(shared_data):
    rows = {
        r["question_id"]: r for r in load_problems("gaokao2023en", "test", data_dir=shared_data)
    }
    saddle = next(r for q, r in rows.items() if q.endswith("HMMT2023General_9"))
    assert saddle["answer"] == "$\\frac{3}{10}$"
    assert "answers:" not in saddle["question"] and "3}{10}" not in saddle["question"]
