"""Stable seeds: every random stream is derived from the parts that identify it.

Python's ``hash()`` is salted per process, so it cannot make runs reproducible after a resume;
this uses BLAKE2b over the parts' ``repr`` instead (method.md section 3: a stream per
``(seed, question_id, tree_index, node_id)``).
"""

from __future__ import annotations

import hashlib

SEED_BITS = 63  # fits torch.Generator.manual_seed and numpy's SeedSequence


def derive_seed(*parts: object) -> int:
    """A 63-bit seed that depends only on ``parts`` (ints, strings, tuples of them)."""
    digest = hashlib.blake2b(repr(parts).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> (64 - SEED_BITS)
