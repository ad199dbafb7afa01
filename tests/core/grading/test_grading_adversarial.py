"""Adversarial suite: hostile or malformed answers never execute, never hang, grade False.

Over 200 strings, hand-written and generated: code injection, huge powers and factorials,
deep nesting, megabyte strings, NUL bytes, unicode junk, unbalanced braces, macro bombs.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from svpo_harness.grading import extract_answer, grade_many, has_marked_answer, is_equiv

GOLD = "12345"  # no hostile string below is worth 12345


def hostile_strings(marker: Path) -> list[str]:
    m = str(marker)
    code = [
        f"__import__('os').system('touch {m}')",
        f'__import__("os").system("touch {m}")',
        f"exec(\"open('{m}','w').write('x')\")",
        f"eval(\"__import__('os').system('touch {m}')\")",
        f"(lambda: __import__('os').system('touch {m}'))()",
        f"lambda x: open('{m}', 'w')",
        f"compile('import os; os.system(\"touch {m}\")', 's', 'exec')",
        f"\\boxed{{__import__('os').system('touch {m}')}}",
        f"$__import__('subprocess').call(['touch', '{m}'])$",
        f"{{}}.__class__.__base__.__subclasses__()  # touch {m}",
        f"Symbol('x').__class__.__init__.__globals__['os'].system('touch {m}')",
        f"\\text{{{m}}}\\input{{{m}}}\\write18{{touch {m}}}",
        f"\\immediate\\write18{{touch {m}}}",
        f"import os; os.system('touch {m}')",
        f"open('{m}', 'w').close()",
        "globals()['__builtins__']",
        "().__class__.__bases__[0].__subclasses__()",
        "getattr(__builtins__, 'exec')('1')",
    ]
    huge = [
        "9^{9^{9^9}}",
        "9^9^9^9",
        "10**10**10",
        "2**2**2**2**2**2",
        "100000!",
        "(10!)!",
        "10^{10^{10}}",
        "\\binom{10^9}{5 \\cdot 10^8}",
        "1e999999",
        "10^{-10^{10}}",
        "(1+10^{-20})^{10^{30}}",
        "\\sqrt{2}^{10^{12}}",
        "2^{3^{4^{5}}}",
        "x^{10^{10}}",
        "(x+y+z)^{10^6}",
        "\\sqrt{10^{9000}+1}",
        "\\sqrt[3]{10^{9000}+1}",
        "99999999!",
        "(2^{1000})^{(2^{1000})}",
        "\\frac{1}{3}^{10^{9}}",
        "(-7)^{10^{12}}",
        "1" + "0" * 900 + "^{" + "9" * 50 + "}",
        "e^{e^{e^{e^{e^{e^{10}}}}}}",
        "\\lfloor 10^{10^{6}} \\rfloor",
        "10^{9999} \\cdot " * 30 + "1",
    ]
    nesting = [
        "(" * 10_000 + "1" + ")" * 10_000,
        "{" * 10_000 + "1" + "}" * 10_000,
        "[" * 5_000,
        "\\frac{" * 3_000 + "1",
        "\\sqrt{" * 2_000 + "2" + "}" * 2_000,
        "-" * 5_000 + "1",
        "2^" * 3_000 + "2",
        "((((((((((x))))))))))" * 40,
        "|" * 1_000,
        "!" * 1_000,
        "\\left(" * 2_000,
    ]
    junk = [
        "1" * 1_000_000,
        "\\boxed{" + "1" * 1_000_000 + "}",
        "x\x00y",
        "\x00" * 100,
        "\\boxed{",
        "\\boxed{\\boxed{\\boxed{",
        "}}}}{{{",
        "\\frac{1}{",
        "\\frac}{",
        "$$$$",
        "\\def\\a{\\a\\a}\\a",
        "\\newcommand{\\b}{\\b\\b}\\b",
        "\\def\\x{\\x}\\x",
        "\\begin{pmatrix}" * 200,
        "\\end{pmatrix}",
        "&&&&\\\\\\\\",
        "\\\\" * 10_000,
        "\ud800",
        "\U0001f4a9" * 1_000,
        "\u202e1\u202c",
        "１２３４５６",
        "\u0000\u0001\u0002",
        "NaN",
        "inf",
        "-inf",
        "nan",
        "None",
        "True",
        "\\infty - \\infty",
        "0^0",
        "0/0",
        "\\frac{0}{0}",
        "\\log(0)",
        "1/0",
        "\\sqrt{-1}^{\\sqrt{-1}}",
        "\\text{" * 500,
        "1" + "a" * 1000 + "!",  # regex backtracking bait for unit stripping
        "1 " + "ab " * 300 + "!",
        "1" + "a." * 500 + "!",
        "A:" + " " * 100_000 + "x",
        "A: " + "a " * 100_000,
        "The answer is " + "(" * 100_000,
        "_" * 1000,
        "^" * 1000,
        "x_{" * 500,
        "\\" * 5000,
        "=" * 1000,
        "," * 10_000,
        "\\pm\\pm\\pm\\pm",
        "\\cup" * 1000,
        "(1,2" + ",3" * 10_000 + ")",
        "\\{" + ",".join(["1"] * 5_000) + "\\}",
        # model-written forms (method.md 7.1): sentences, spans, boxes on one line
        "The answer is " + "$x$ is " * 20_000,
        "Final Answer: " + "a = " * 50_000,
        "$" * 100_000,
        "$a" * 100_000,
        "\\$" * 100_000 + "$",
        "\\(" * 50_000,
        " ".join(f"\\boxed{{{i}}}" for i in range(20_000)),
        "\\boxed{1} " * 50_000,
        "The answer is " + "1, since " * 20_000,
        "12.5" + "cm" * 50_000,
        "1,000" * 50_000 + ".99m^2",
        # relations, labels, joined lists, decimal commas (method.md 7.1)
        "x<" * 300 + "1",
        "1 < x < 2 < y < 3",
        "x \\ge " * 100 + "1",
        "1 and " * 150 + "1",
        "1 or " * 150 + "1",
        "1;" * 400,
        "(p,q)=" * 100 + "(1,2)",
        "x \\approx " * 100 + "1",
        "12345,6" + "7" * 900,
        "\\pm" * 10 + "x = 1 or x \\ne 2",
        "x^{200} + y^{200} = 9^{9^9}",
    ]
    rng = random.Random(20240601)
    alphabet = "0123456789+-*/^_{}()[]\\!|,.=xyeiπ√ abcdefrac sqrt boxed left right text"
    generated = []
    for _ in range(60):
        n = rng.randint(1, 400)
        generated.append("".join(rng.choice(alphabet) for _ in range(n)))
    for _ in range(30):
        generated.append("".join(chr(rng.randint(1, 0x10FFFF)) for _ in range(rng.randint(1, 50))))
    for _ in range(30):
        depth = rng.randint(2, 6)
        base = rng.randint(2, 99)
        generated.append("^".join([str(base)] * depth))
        generated.append("{" * depth + str(rng.randint(10**5, 10**6)) + "!" + "}" * depth)
    strings = code + huge + nesting + junk + generated
    return [s for s in strings if s.strip() != GOLD]


@pytest.fixture()
def hostile(tmp_path: Path) -> tuple[Path, list[str]]:
    marker = tmp_path / "MARKER"
    strings = hostile_strings(marker)
    assert len(strings) >= 200
    return marker, strings


def test_in_process_is_equiv_is_false_and_fast(hostile: tuple[Path, list[str]]) -> None:
    marker, strings = hostile
    slow = []
    for s in strings:
        t = time.perf_counter()
        assert is_equiv(s, GOLD) is False
        assert is_equiv(GOLD, s) is False
        if time.perf_counter() - t > 2.0:
            slow.append(s[:60])
    assert slow == []  # pre-checks make every hostile input fail fast in-process
    assert not marker.exists()


def test_extraction_survives_hostile_text(hostile: tuple[Path, list[str]]) -> None:
    marker, strings = hostile
    t = time.perf_counter()
    for s in strings:
        got = extract_answer(s)
        assert got is None or isinstance(got.answer, str)
        has_marked_answer(s)
    assert time.perf_counter() - t < 30
    assert not marker.exists()


def test_pool_kills_nothing_runs_and_keeps_working(hostile: tuple[Path, list[str]]) -> None:
    marker, strings = hostile
    pairs = [(s, GOLD) for s in strings] + [(GOLD, s) for s in strings]
    t = time.perf_counter()
    verdicts = grade_many(pairs, timeout=2.0, processes=2)
    elapsed = time.perf_counter() - t
    assert verdicts == [False] * len(pairs)
    assert elapsed < 120  # generous: even a few 2 s kills and restarts fit easily
    assert grade_many([("1/2", "0.5")], timeout=2.0, processes=2) == [True]
    assert not marker.exists()
