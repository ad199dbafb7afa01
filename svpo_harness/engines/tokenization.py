"""Ids for text that continues stored ids (method.md section 2.1), for every tokenizer family.

Encoding a piece of text on its own is wrong for SentencePiece-style tokenizers (Llama-2,
Mistral: a Metaspace pre-tokenizer that prepends ``▁`` at the start of a sequence): ``"\\n\\n"``
alone becomes ``["▁", "\\n", "\\n"]``, and after a step those ids decode to a spurious space.
Byte-level BPE (GPT-2, Qwen, Llama-3) has no such prefix but may merge across the boundary.

The rule (method.md 2.1): encode ``context + text`` and keep what follows the longest common
token prefix with ``encode(context)``. Here the context is the decoded tail of the stored ids
(a few tokens suffice: what matters is that the text does not start a sequence). The result is
checked by decoding it after the stored ids; if the boundary merged or the check fails, other
candidates are tried (see ``continuation_ids``), so the choice is one that reproduces the text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# Stored ids decoded as context: enough for a decoder to see that the text does not start a
# sequence, short enough that encoding it costs nothing.
CONTEXT_TOKENS = 4
# Neutral contexts (text a delimiter usually follows: the end of a step), tried in order.
DELIMITER_CONTEXTS = ("0.", "0", "x")


def _encode(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False))


def _decode(tokenizer: Any, ids: Sequence[int]) -> str:
    return tokenizer.decode(
        list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False
    )


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def decodes_after(
    tokenizer: Any, context_ids: Sequence[int], ids: Sequence[int], text: str
) -> bool:
    """True when ``ids`` decode to exactly ``text`` when they follow ``context_ids``."""
    if not context_ids:
        return _decode(tokenizer, ids) == text
    before = _decode(tokenizer, context_ids)
    full = _decode(tokenizer, [*context_ids, *ids])
    return full.startswith(before) and full[len(before) :] == text


def _after(tokenizer: Any, context_text: str, text: str) -> list[int] | None:
    """encode(context + text) past its longest common prefix with encode(context), or None
    when the boundary merged (the text's first token would swallow part of the context)."""
    base = _encode(tokenizer, context_text)
    full = _encode(tokenizer, context_text + text)
    common = common_prefix_length(base, full)
    return full[common:] if common == len(base) else None


def continuation_ids(tokenizer: Any, context_ids: Sequence[int], text: str) -> list[int]:
    """Ids of ``text`` where it follows ``context_ids`` (the stored ids are never changed).

    Candidates in order, the first that decodes to exactly ``text`` after the stored ids wins:
    the rule on the stored ids' own tail; the rule on a neutral context (when the tail merges
    with the text, e.g. a SentencePiece ``▁`` token before a number); the text alone.
    """
    alone = _encode(tokenizer, text)
    tail = list(context_ids[-CONTEXT_TOKENS:])
    if not tail or not text:
        return alone
    contexts = [_decode(tokenizer, tail), *DELIMITER_CONTEXTS]
    candidates = [ids for ctx in contexts if (ids := _after(tokenizer, ctx, text))]
    for ids in [*candidates, alone]:
        if decodes_after(tokenizer, tail, ids, text):
            return ids
    # Nothing reads back exactly (e.g. a decoder that normalises spaces): the rule's answer.
    return candidates[0] if candidates else alone


def delimiter_ids(tokenizer: Any, delimiter: str) -> tuple[int, ...]:
    """The delimiter's canonical ids: its ids where it ends a step (not at a sequence start).

    Appended after an EOS step for the value read and training (method.md 2.1), so they must
    decode to the delimiter after a step's text, with no SentencePiece ``▁`` in front.
    """
    for context in DELIMITER_CONTEXTS:
        ctx_ids = _encode(tokenizer, context)
        if not ctx_ids:
            continue
        ids = continuation_ids(tokenizer, ctx_ids, delimiter)
        if ids and decodes_after(tokenizer, ctx_ids, ids, delimiter):
            return tuple(ids)
    return tuple(_encode(tokenizer, delimiter))
