"""Hand-made inputs of `svpo view` with known numbers (used by conftest.py's fixtures and the
tests): tree, pair and search log records, the hostile strings of issue 30."""

from __future__ import annotations

from svpo_harness.core.step_format import ARITH

FP = "sha256:test"
# The strings of issue 30: each would set window.__pwned if it ran.
HOSTILE = (
    "<script>window.__pwned = 1</script>"
    "</script><script>window.__pwned = 2</script>"
    '<img src="x" onerror="window.__pwned = 3">'
    " javascript:window.__pwned = 4 \u2028 <!-- & &amp; "
)


def node(i, parent, depth, text, N, W, value, prior, end=None, answer=None, reward=None):  # noqa: N803
    return {
        "node_id": i, "parent_id": parent, "depth": depth,
        "token_ids": [] if parent is None else [100 + i], "text": text, "prior": prior,
        "logprob_mean": None if parent is None else -0.1, "N": N, "W": W, "value": value,
        "terminal": end is not None, "terminal_reason": end, "answer": answer, "reward": reward,
        "finish_reason": None if parent is None else "delimiter",
    }  # fmt: skip


def tree(qid: str, question: str, gold: str, nodes: list[dict]) -> dict:
    return {
        "type": "tree", "schema_version": 1, "question_id": qid, "question": question,
        "gold_answer": gold, "step_format": ARITH.to_dict(), "tokenizer_fingerprint": FP,
        "chat_template": None, "prompt_ids": [1, 2, 3], "nodes": nodes,
    }  # fmt: skip


def pair(qid: str, parent: int, chosen: int, rejected: int, qc: float, qr: float) -> dict:
    return {
        "type": "pair", "schema_version": 1, "question_id": qid, "prefix_ids": [1, 2, 3],
        "chosen_ids": [100 + chosen], "rejected_ids": [100 + rejected],
        "chosen_text": f"step {chosen}", "rejected_text": f"step {rejected}",
        "q_chosen": qc, "q_rejected": qr, "tokenizer_fingerprint": FP, "step_format": "arith",
        "chosen_node_id": chosen, "rejected_node_id": rejected, "parent_node_id": parent,
    }  # fmt: skip


# q-solved: root -> #1 (N 3, W 1: Q 0.333) -> #3 "The answer is 7." (+1) and #4 (8, -1);
# root -> #2, a wrong answer (-1). Visits pick #1 then #3: final answer 7, correct.
SOLVED = [
    node(0, None, 0, "", 4, -1.0, None, 1.0),
    node(1, 0, 1, "Tom has 3, so 3 + 4 = 7.\n", 3, 1.0, 0.25, 0.9),
    node(2, 0, 1, "Tom has 3, so 3 - 4 = -1.\nThe answer is -1.", 1, -1.0, -0.5, 0.125,
         "answer", "-1", -1.0),
    node(3, 1, 2, "The answer is 7.", 2, 2.0, 0.8, 0.95, "answer", "7", 1.0),
    node(4, 1, 2, "The answer is 8.", 1, -1.0, 0.1, 0.4, "answer", "8", -1.0),
]  # fmt: skip
UNSOLVED = [
    node(0, None, 0, "", 1, -1.0, None, 1.0, "exhausted"),
    node(1, 0, 1, "The answer is 5.", 1, -1.0, 0.0, 0.5, "answer", "5", -1.0),
]  # fmt: skip
EVIL = [
    node(0, None, 0, "", 2, 0.0, None, 1.0),
    node(1, 0, 1, HOSTILE, 1, 1.0, 0.5, 0.5, "answer", HOSTILE, 1.0),
    node(2, 0, 1, "javascript:alert(1)", 1, -1.0, 0.5, 0.5, "answer", "0", -1.0),
]  # fmt: skip


def cand(i, parent, depth, text, value, status, reason=None, answer=False) -> dict:
    return {
        "id": i, "parent_id": parent, "depth": depth, "text": text, "token_ids": [200 + i],
        "value": value, "logprob_sum": -0.5, "logprob_mean": -0.25, "finish_reason": "delimiter",
        "has_answer": answer, "path_tokens": depth, "path_logprob_sum": -0.5 * depth,
        "score": value, "status": status, "reason": reason,
    }  # fmt: skip


def context(i: int) -> str:
    return f"Question: Tom has {i} cards and buys 4 more. How many now?\nAnswer:\n"


def search_record(i: int, chosen: int, finished: bool, tree: list[dict]) -> dict:
    return {
        "context": context(i), "until": ["\n\n"], "output": "", "schema_version": 1,
        "key": context(i), "decoding": "sbs", "text": "", "step_token_ids": [],
        "finished": finished, "has_answer": finished, "value": 0.9, "score": 0.9,
        "end_reason": "answer" if finished else None, "chosen_id": chosen,
        "tokens_generated": 40 + i, "policy_calls": 2, "seconds": 0.1, "tree": tree,
        "answer": None, "votes": None, "prefill_tokens": 0,
    }  # fmt: skip


# SBS(2, 2) on question 3: level 1 keeps #1 (0.6) and #2 (0.2), prunes #3, #4 is a duplicate;
# level 2: #5 finishes with V 0.9 (the final pick), #7 finishes with 0.4, #6 and #8 pruned.
SEARCH = [
    cand(1, 0, 1, "Tom buys 4, so 3 + 4 = 7.\n", 0.6, "kept"),
    cand(2, 0, 1, "Tom buys 4, so 3 * 4 = 12.\n", 0.2, "kept"),
    cand(3, 0, 1, "He has 3.\n", -0.3, "pruned"),
    cand(4, 0, 1, "Tom buys 4, so 3 * 4 = 12.\n", 0.2, "duplicate"),
    cand(5, 1, 2, "The answer is 7.", 0.9, "finished", "answer", True),
    cand(6, 1, 2, "So 7.\n", 0.1, "pruned"),
    cand(7, 2, 2, "The answer is 12.", 0.4, "finished", "answer", True),
    cand(8, 2, 2, "So 12.\n", -0.2, "pruned"),
]  # fmt: skip
