"""Small training records for the collator and packing tests (ids by hand, texts empty)."""

from __future__ import annotations

from svpo_harness.core.schemas import PairRecord, PathRecord, StepQRecord

COMMON = {"tokenizer_fingerprint": "fp", "step_format": "arith"}


def pair(prefix, chosen, rejected, *, qc=1.0, qr=-1.0, cm=(), rm=(), qid="q0") -> PairRecord:
    return PairRecord(
        question_id=qid,
        prefix_ids=tuple(prefix),
        chosen_ids=tuple(chosen),
        rejected_ids=tuple(rejected),
        chosen_text="",
        rejected_text="",
        q_chosen=qc,
        q_rejected=qr,
        chosen_sampled_mask=tuple(cm),
        rejected_sampled_mask=tuple(rm),
        **COMMON,
    )


def step_q(prefix, step, q=0.5, mask=(), qid="q1") -> StepQRecord:
    return StepQRecord(
        question_id=qid,
        prefix_ids=tuple(prefix),
        step_ids=tuple(step),
        step_text="",
        q=q,
        n=3,
        step_sampled_mask=tuple(mask),
        **COMMON,
    )


def path(prompt, steps, masks=(), qid="q2") -> PathRecord:
    return PathRecord(
        question_id=qid,
        question="",
        prompt_ids=tuple(prompt),
        step_ids=tuple(tuple(s) for s in steps),
        step_texts=("",) * len(steps),
        answer="",
        step_sampled_masks=tuple(tuple(m) for m in masks),
        **COMMON,
    )
