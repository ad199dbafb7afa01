"""maj@k: k independently sampled complete solutions, majority vote over answer classes.

Voting (method.md 6): only finished solutions (final step with a marked answer) vote, with the
answer ``answer_fn`` extracts from the whole solution text. Answers are grouped into
equivalence classes in sample order: an answer joins the first class whose representative (its
first member) it is equivalent to, ``equiv_fn(answer, representative)`` (the checker's
``is_equiv(pred, gold)`` order), else it opens a new class.

- Winning class: the largest; ties go to the class whose first member was sampled earliest.
- Returned member: the highest-value member of that class when the policy has a value head
  (ties: earliest sample), else its first member in sample order.
- No vote at all (nothing finished): the best unfinished solution by ``best_of_n.pick_best``
  (highest value, else the first sample), with ``answer=None`` and ``votes=0``.

The default ``answer_fn``/``equiv_fn`` are the project's one checker
(``svpo_harness.grading``), imported lazily so this module stays import-light.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from svpo_harness.core.policy import StepPolicy
from svpo_harness.core.search.best_of_n import pick_best
from svpo_harness.core.search.frontier import build_result
from svpo_harness.core.search.rollout import rollout
from svpo_harness.core.search.types import Candidate, RootState, SearchOptions, SearchResult

AnswerFn = Callable[[str], str | None]
EquivFn = Callable[[str, str], bool]


def default_answer_fn(text: str) -> str | None:
    """The marked final answer of a solution (``grading.extract_answer``, strict style)."""
    from svpo_harness.grading import extract_answer

    found = extract_answer(text, "strict")
    return found.answer if found is not None else None


def default_equiv_fn(pred: str, gold: str) -> bool:
    """The project's answer checker (``grading.is_equiv``)."""
    from svpo_harness.grading import is_equiv

    return bool(is_equiv(pred, gold))


def answer_classes(answers: Sequence[str | None], equiv_fn: EquivFn) -> list[list[int]]:
    """Group the indices of non-None ``answers`` into equivalence classes (see module doc)."""
    classes: list[list[int]] = []
    for index, answer in enumerate(answers):
        if answer is None:
            continue
        for members in classes:
            if equiv_fn(answer, answers[members[0]]):  # type: ignore[arg-type]
                members.append(index)
                break
        else:
            classes.append([index])
    return classes


def majority(
    roots: Sequence[RootState],
    policy: StepPolicy,
    opts: SearchOptions | None = None,
    seed: int = 0,
    *,
    answer_fn: AnswerFn | None = None,
    equiv_fn: EquivFn | None = None,
) -> list[SearchResult]:
    """maj@``opts.n_samples`` for every root; one result per root, in order."""
    opts = opts or SearchOptions()
    answer_fn = answer_fn or default_answer_fn
    equiv_fn = equiv_fn or default_equiv_fn
    chains = rollout(
        roots,
        policy,
        opts,
        seed,
        n_solutions=opts.n_samples,
        temperature=opts.temperature,
        with_values=policy.has_value_head,
    )
    results = []
    for chain in chains:
        question, ends = chain.question, chain.ends
        answers = [
            answer_fn("".join(step.text for step in question.path(end.id)))
            if end.status == "finished"
            else None
            for end in ends
        ]
        classes = answer_classes(answers, equiv_fn)
        if not classes:
            results.append(build_result(question, pick_best(ends), "maj", votes=0))
            continue
        # Largest class; on equal size the one whose first member was sampled earliest.
        winner = max(classes, key=lambda members: (len(members), -members[0]))
        chosen = _pick_member([ends[i] for i in winner])
        results.append(
            build_result(question, chosen, "maj", answer=answers[winner[0]], votes=len(winner))
        )
    return results


def _pick_member(members: Sequence[Candidate]) -> Candidate:
    """Highest value (None last), then earliest sample; members are in sample order."""
    indexed = list(enumerate(members))
    best = min(indexed, key=lambda it: (it[1].value is None, -(it[1].value or 0.0), it[0]))
    return best[1]
