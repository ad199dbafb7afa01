"""The synthetic arithmetic world: GSM8K-like word problems a tiny model can learn on 2 CPU cores.

Why it exists: the whole SVPO loop (MCTS annotation -> step pairs -> step DPO + value head ->
value-guided beam search, method.md sections 3-6) must run end to end offline, in minutes, with a
model trained from scratch. Each problem is a short story with 2-6 operations (+, -, *, exact
integer division) on small non-negative integers. The gold solution uses the ``ARITH`` step format
(one step per line): every intermediate step shows exactly one operation with its result, so a
wrong step is a real arithmetic error a value head can learn to spot, and the last step carries a
marked answer ``The answer is N.``.

Two solutions per problem. ``solution_steps`` is the gold solution (always right: evaluation and
rewards use it). ``teacher_steps`` is what a careless teacher wrote, the demonstrations SFT
learns from: where the story divides ("splits the coins into 3 equal groups and keeps one"),
the teacher subtracts instead ("12 - 3 = 9") with probability ``teacher_slip`` and carries on
from the wrong number. This is the world's difficulty, on purpose: a policy that imitates the
teacher perfectly still answers every problem with a division wrong when it decodes greedily,
so its greedy accuracy is a property of the world (about the share of problems without a
division), not of how long it trained or of the CPU's float kernels; and the right step keeps
real probability, so sampling, search with a verifier, and preference training have something
to find (method.md sections 3-6). Other steps are right in the demonstrations.

Everything is deterministic: ``generate_problems(n, seed, difficulty)`` depends only on its
arguments, and the fixed ``train``/``dev``/``test`` splits are derived from ``WORLD_SEED`` and
``DEFAULT_DIFFICULTY``, are disjoint by question text, and are generated on the fly (never stored).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from svpo_harness.core.seeding import derive_seed

Op = Literal["+", "-", "*", "/"]
Split = Literal["train", "dev", "test"]


@dataclass(frozen=True)
class ArithDifficulty:
    """The difficulty knob: how many operations and how large the numbers are."""

    min_ops: int = 2
    max_ops: int = 4
    max_start: int = 20  # the story's starting amount is drawn from [2, max_start]
    max_addend: int = 10  # added / subtracted amounts are drawn from [1, max_addend]
    max_factor: int = 4  # multipliers / divisors are drawn from [2, max_factor]
    max_value: int = 100  # every intermediate value stays in [1, max_value]
    ops: tuple[str, ...] = ("+", "-", "*", "/")
    # probability that the teacher's demonstration of a division step subtracts instead
    teacher_slip: float = 0.0

    def __post_init__(self) -> None:
        if not 1 <= self.min_ops <= self.max_ops:
            raise ValueError(f"need 1 <= min_ops <= max_ops, got {self.min_ops}, {self.max_ops}")
        if not 2 <= self.max_start <= self.max_value:
            raise ValueError(f"need 2 <= max_start <= max_value, got {self.max_start}")
        if self.max_addend < 1 or self.max_factor < 2:
            raise ValueError("need max_addend >= 1 and max_factor >= 2")
        if not set(self.ops) <= {"+", "-", "*", "/"} or not ({"+", "-"} & set(self.ops)):
            raise ValueError(f"ops must be a subset of + - * / holding + or -, got {self.ops}")
        if not 0.0 <= self.teacher_slip <= 1.0:
            raise ValueError(f"teacher_slip must be in [0, 1], got {self.teacher_slip}")


# Fixed before any method is compared on it; do not tune afterwards (changing it changes every
# split, so every number reported on the arithmetic world would silently stop being comparable).
# Version 2 (2026-12): smaller numbers, so a tiny model learns the arithmetic itself to a plateau
# within its build budget, and the careless teacher (see the module doc) sets the difficulty.
DEFAULT_DIFFICULTY = ArithDifficulty(
    min_ops=2,
    max_ops=4,
    max_start=20,
    max_addend=9,
    max_factor=3,
    max_value=50,
    teacher_slip=0.65,
)
WORLD_VERSION = 2
WORLD_SEED = 20240615  # the seed of the fixed splits; same "do not change" rule as above
SPLIT_SIZES: dict[str, int] = {"test": 1000, "dev": 500, "train": 20000}
# Order in which splits claim question texts: a later split skips every text an earlier one holds.
_SPLIT_ORDER: tuple[str, ...] = ("test", "dev", "train")


@dataclass(frozen=True)
class ArithProblem:
    """One problem. ``solution_steps`` hold no delimiter; join them with ``"\\n"``.

    ``solution_steps``/``answer`` are the gold; ``teacher_steps``/``teacher_answer`` the careless
    teacher's demonstration (equal to the gold when the teacher made no slip).
    """

    question_id: str
    question: str
    solution_steps: tuple[str, ...]
    answer: int
    n_ops: int
    teacher_steps: tuple[str, ...] = ()
    teacher_answer: int | None = None

    @property
    def teacher_slipped(self) -> bool:
        return self.teacher_answer is not None and self.teacher_steps != self.solution_steps

    @property
    def n_divisions(self) -> int:
        return sum(" / " in step for step in self.solution_steps[:-1])

    @property
    def solution(self) -> str:
        return "\n".join(self.solution_steps)


# -- the story vocabulary (kept small on purpose: the tokenizer is trained on this world) ---------
_PEOPLE: tuple[tuple[str, str], ...] = (
    ("Tom", "he"),
    ("Anna", "she"),
    ("Ben", "he"),
    ("Lily", "she"),
    ("Sam", "he"),
    ("Mia", "she"),
    ("Max", "he"),
    ("Zoe", "she"),
)
_ITEMS = ("apples", "books", "coins", "cards", "pencils", "stickers", "marbles", "eggs")
_CONNECTORS = ("Then", "After that,", "Next,", "Later,")
_QUESTIONS = (
    "How many {item} does {name} have now?",
    "How many {item} does {name} have in the end?",
)
# op -> (question sentence, solution step lead); {s} subject, {k} amount, {item} the things,
# {s_has} "Tom has" / "he has".
_VERBS: dict[str, tuple[tuple[str, str], ...]] = {
    "+": (
        ("{s} buys {k} more {item}.", "{s} buys {k} more, so"),
        ("{s} finds {k} more {item}.", "{s} finds {k} more, so"),
        ("{s} gets {k} more {item} from a friend.", "{s} gets {k} more, so"),
    ),
    "-": (
        ("{s} gives away {k} {item}.", "{s} gives away {k}, so"),
        ("{s} loses {k} {item}.", "{s} loses {k}, so"),
        ("{s} sells {k} {item}.", "{s} sells {k}, so"),
    ),
    "*": (
        ("{s} ends up with {k} times as many {item}.", "{s} has {k} times as many, so"),
        ("The number of {item} {s_has} grows {k} times.", "The {item} grow {k} times, so"),
    ),
    "/": (
        (
            "{s} splits the {item} into {k} equal groups and keeps one group.",
            "{s} keeps one of {k} groups, so",
        ),
        (
            "{s} puts the {item} into {k} equal boxes and keeps one box.",
            "{s} keeps one of {k} boxes, so",
        ),
    ),
}


def _apply(op: str, x: int, k: int) -> int:
    if op == "+":
        return x + k
    if op == "-":
        return x - k
    if op == "*":
        return x * k
    return x // k


def _pick_step(rng: random.Random, x: int, diff: ArithDifficulty) -> tuple[str, int] | None:
    """One random operation on ``x`` keeping every value in [1, max_value], or None if none fits."""
    options: list[tuple[str, int]] = []
    for op in diff.ops:
        if op == "+":
            options += [(op, k) for k in range(1, min(diff.max_addend, diff.max_value - x) + 1)]
        elif op == "-":
            options += [(op, k) for k in range(1, min(diff.max_addend, x - 1) + 1)]
        elif op == "*":
            options += [(op, k) for k in range(2, diff.max_factor + 1) if x * k <= diff.max_value]
        else:
            options += [(op, k) for k in range(2, diff.max_factor + 1) if x % k == 0]
    if not options:
        return None
    # Choose the operation first (uniformly), then its amount, so * and / are not drowned out
    # by the many possible addends.
    ops = sorted({op for op, _ in options})
    op = rng.choice(ops)
    return rng.choice([item for item in options if item[0] == op])


def _make_problem(rng: random.Random, question_id: str, diff: ArithDifficulty) -> ArithProblem:
    name, pron = rng.choice(_PEOPLE)
    item = rng.choice(_ITEMS)
    n_ops = rng.randint(diff.min_ops, diff.max_ops)
    x = rng.randint(2, diff.max_start)
    sentences = [f"{name} has {x} {item}."]
    leads: list[tuple[str, str, int]] = []  # (step lead, op, amount) per operation
    start = x
    for i in range(n_ops):
        picked = _pick_step(rng, x, diff)
        if picked is None:  # cannot happen with a valid difficulty, but never loop forever
            break
        op, k = picked
        question_tpl, step_tpl = rng.choice(_VERBS[op])
        fill = {
            "k": k,
            "item": item,
            "s_has": f"{name} has" if i == 0 else ("he has" if pron == "he" else "she has"),
        }
        if i == 0:
            sentence = question_tpl.format(s=name, **fill)
        else:
            connector = rng.choice(_CONNECTORS)
            sentence = f"{connector} " + _lower_first(question_tpl.format(s=pron, **fill))
        sentences.append(sentence)
        subject = name if i == 0 else pron.capitalize()
        leads.append((step_tpl.format(s=subject, **fill), op, k))
        x = _apply(op, x, k)
    sentences.append(rng.choice(_QUESTIONS).format(item=item, name=name))
    gold, answer = _write_steps(start, leads, slips=[False] * len(leads))
    # The teacher's slips come from their own stream, drawn after the story, so the gold
    # problem does not depend on teacher_slip.
    teacher_rng = random.Random(rng.getrandbits(63))
    slips = [op == "/" and teacher_rng.random() < diff.teacher_slip for _, op, _ in leads]
    teacher, teacher_answer = _write_steps(start, leads, slips)
    return ArithProblem(
        question_id, " ".join(sentences), gold, answer, len(leads), teacher, teacher_answer
    )


def _write_steps(
    start: int, leads: Sequence[tuple[str, str, int]], slips: Sequence[bool]
) -> tuple[tuple[str, ...], int]:
    """The solution steps from ``start``; a slipped division subtracts and the chain goes on."""
    x, steps = start, []
    for (lead, op, k), slip in zip(leads, slips, strict=True):
        op = "-" if slip else op
        y = _apply(op, x, k)
        steps.append(f"{lead} {x} {op} {k} = {y}.")
        x = y
    steps.append(f"The answer is {x}.")
    return tuple(steps), x


def _lower_first(text: str) -> str:
    # Lower-case the story's first word only when it is a pronoun or "The" (never a name).
    head, _, rest = text.partition(" ")
    if head in {"He", "She", "The"}:
        head = head.lower()
    return f"{head} {rest}" if rest else head


def generate_problems(
    n: int, seed: int, difficulty: ArithDifficulty = DEFAULT_DIFFICULTY
) -> list[ArithProblem]:
    """``n`` problems that depend only on ``(n, seed, difficulty)``; problem i on ``(seed, i)``.

    Question texts may repeat (use ``arith_split`` for de-duplicated, disjoint splits).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    out = []
    for i in range(n):
        # The story knobs seed the problem; teacher_slip only changes the teacher's steps.
        story = replace(difficulty, teacher_slip=0.0)
        rng = random.Random(derive_seed("arith", seed, i, story))
        out.append(_make_problem(rng, f"arith-s{seed}-{i:05d}", difficulty))
    return out


@lru_cache(maxsize=8)
def _build_split(split: str, n: int) -> tuple[ArithProblem, ...]:
    """The first ``n`` problems of ``split``: unique texts, none held by an earlier split."""
    taken: set[str] = set()
    for earlier in _SPLIT_ORDER[: _SPLIT_ORDER.index(split)]:
        taken.update(p.question for p in _build_split(earlier, SPLIT_SIZES[earlier]))
    out: list[ArithProblem] = []
    index = 0
    while len(out) < n:
        rng = random.Random(derive_seed("arith-split", WORLD_SEED, split, index))
        index += 1
        problem = _make_problem(rng, f"arith-{split}-{len(out):05d}", DEFAULT_DIFFICULTY)
        if problem.question in taken:
            continue
        taken.add(problem.question)
        out.append(problem)
    return tuple(out)


def arith_split(split: Split, n: int | None = None) -> list[ArithProblem]:
    """The fixed split (sizes in ``SPLIT_SIZES``); ``n`` takes its first ``n`` problems.

    ``arith_split(s, n)`` is always a prefix of ``arith_split(s)``. ``dev`` and ``test`` cannot grow
    past their fixed sizes (later splits only avoid the fixed ones); ``train`` can.
    """
    if split not in SPLIT_SIZES:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(_SPLIT_ORDER)}")
    size = SPLIT_SIZES[split]
    if n is None:
        n = size
    if n < 0 or (split != "train" and n > size):
        raise ValueError(f"split {split!r}: n must be in [0, {size}], got {n}")
    if split != "train" or n <= size:
        return list(_build_split(split, size)[:n])
    return list(_build_split(split, n))


def to_record(problem: ArithProblem) -> dict[str, Any]:
    """The problem-loader record: question, answer (str int), solution text, question_id."""
    return {
        "question_id": problem.question_id,
        "question": problem.question,
        "answer": str(problem.answer),
        "solution": problem.solution,
    }


def write_jsonl(split: Split, path: str | Path, n: int | None = None) -> int:
    """Write a split as JSON Lines of ``to_record`` dicts; returns the number written."""
    problems = arith_split(split, n)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for problem in problems:
            fh.write(json.dumps(to_record(problem), ensure_ascii=False) + "\n")
    return len(problems)


def teacher_mode_answer(problem: ArithProblem) -> int:
    """The answer of the teacher's most likely solution: every division slipped to a subtraction.

    With ``teacher_slip > 0.5`` this is what a perfect imitator of the teacher decodes greedily,
    so the share of problems where it equals the gold is the greedy accuracy a model trained
    to a plateau on the demonstrations reaches (``greedy_ceiling``).
    """
    x = problem.answer
    for i, step in enumerate(problem.solution_steps[:-1]):
        a, op, k, _ = _EQUATION.findall(step)[0]
        x = int(a) if i == 0 else x
        x = _apply("-" if op == "/" else op, x, int(k))
    return x


def greedy_ceiling(split: Split = "test", n: int | None = None) -> float:
    """Share of ``split`` problems where ``teacher_mode_answer`` is right (0.56 on ``test``)."""
    problems = arith_split(split, n)
    return sum(teacher_mode_answer(p) == p.answer for p in problems) / len(problems)


# -- verification ------------------------------------------------------------------------------
_EQUATION = re.compile(r"(\d+) ([-+*/]) (\d+) = (\d+)")
_MARKED = re.compile(r"The answer is (-?\d+)\.?\s*$")


def check_solution_steps(steps: Sequence[str], answer: int | None = None) -> list[str]:
    """Recompute a solution's arithmetic; returns the problems found (empty list = correct).

    Rules: every step but the last shows exactly one ``a op b = c`` that is right (division
    exact) and starts from the previous step's result; the last step is ``The answer is N.``
    with N the last result (and ``answer`` when given). Works on model output too, so a
    step's error is located by index.
    """
    errors: list[str] = []
    if not steps:
        return ["no steps"]
    prev: int | None = None
    for i, step in enumerate(steps[:-1]):
        found = _EQUATION.findall(step)
        if len(found) != 1:
            errors.append(f"step {i}: expected one equation, found {len(found)}: {step!r}")
            continue
        a, op, b, c = int(found[0][0]), found[0][1], int(found[0][2]), int(found[0][3])
        if op == "/" and (b == 0 or a % b):
            errors.append(f"step {i}: {a} / {b} is not an exact division")
        elif _apply(op, a, b) != c:
            errors.append(f"step {i}: {a} {op} {b} = {c} is wrong ({_apply(op, a, b)})")
        if prev is not None and a != prev:
            errors.append(f"step {i}: starts from {a}, but the previous result was {prev}")
        prev = c
    marked = _MARKED.search(steps[-1])
    if marked is None:
        errors.append(f"last step has no 'The answer is N.': {steps[-1]!r}")
        return errors
    final = int(marked.group(1))
    if prev is not None and final != prev:
        errors.append(f"final answer {final} differs from the last result {prev}")
    if answer is not None and final != answer:
        errors.append(f"final answer {final} differs from the gold answer {answer}")
    return errors
