"""Reference log-probs computed once (``--precompute-ref``) and kept on disk.

Two places: the run folder (``<out>.run/reference_logps.pt``: what a resumed run reads, so a
continued run never recomputes its step-0 reference), and a cache shared by runs
(``--ref-cache``, default ``$SVPO_CACHE/ref-logps`` or ``~/.cache/svpo-harness/ref-logps``), so
``svpo``, ``dpo`` with other lambdas or betas, and a re-run after ``--overwrite`` reuse one pass.

The cache key names everything the numbers depend on: the reference, the tokenizer, the rows
(their ids, scored masks and prefix cuts: that covers the data, the objective's record
builder, ``--max-length`` and the truncation rule), the dtype and the device type. The
reference is identified by what it computes, not by its path: the key includes the exact fp32
log-probs of the first few examples under the loaded policy, so a moved, copied or re-saved
model still hits and a retrained one at the same path misses.
"""

from __future__ import annotations

import hashlib
import json
import os
from array import array
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from svpo_harness.engines.collate import Example

TRUNCATION_RULE = "prefix cut from the left; a step that cannot fit whole is dropped (collate.py)"
PROBE_EXAMPLES = 4
RUN_FILE = "reference_logps.pt"


def default_cache_dir() -> Path:
    root = os.environ.get("SVPO_CACHE") or os.path.join(Path.home(), ".cache", "svpo-harness")
    return Path(root) / "ref-logps"


def rows_digest(examples: Sequence[Example]) -> str:
    """sha256 over every row's kind, prefix length, ids and scored mask, in order."""
    digest = hashlib.sha256()
    for example in examples:
        for row in example.rows:
            digest.update(f"{example.kind}:{row.kind}:{row.prefix_len}:{len(row.ids)};".encode())
            digest.update(array("q", row.ids).tobytes())
            digest.update(bytes(row.scored))
    return digest.hexdigest()


def _atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class ReferenceStore:
    """``load(policy_logps)`` -> the cached log-probs or None; ``save(refs)`` writes both places.

    ``policy_logps(indices)`` returns the step-0 policy's row log-probs of those examples (the
    probe of the key); every process calls ``load`` so sharded forwards stay in step.
    """

    def __init__(
        self,
        run_dir: Path,
        cache_dir: Path | None,
        examples: Sequence[Example],
        describe: dict[str, Any],
    ) -> None:
        self.run_file = run_dir / RUN_FILE
        self.cache_dir = cache_dir
        self.examples = examples
        self.describe = {**describe, "truncation": TRUNCATION_RULE, "rows": rows_digest(examples)}
        self.key: str | None = None
        self.hit: str | None = None  # "run", "cache" or None (computed)

    def _key(self, policy_logps: Callable[[list[int]], torch.Tensor]) -> str:
        probe = policy_logps(list(range(min(PROBE_EXAMPLES, len(self.examples)))))
        digest = hashlib.sha256(json.dumps(self.describe, sort_keys=True).encode())
        digest.update(probe.detach().float().cpu().numpy().tobytes())
        return digest.hexdigest()[:40]

    def _check(self, refs: list[torch.Tensor], where: Path) -> list[torch.Tensor]:
        rows = [len(e.rows) for e in self.examples]
        if len(refs) != len(rows) or any(len(r) != n for r, n in zip(refs, rows, strict=False)):
            raise ValueError(f"{where}: reference log-probs do not match the training rows")
        return refs

    def load(self, policy_logps: Callable[[list[int]], torch.Tensor]) -> list | None:
        if self.run_file.is_file():
            self.hit = "run"
            return self._check(torch.load(self.run_file, map_location="cpu"), self.run_file)
        if self.cache_dir is None:
            return None
        self.key = self._key(policy_logps)
        cached = self.cache_dir / f"{self.key}.pt"
        if not cached.is_file():
            return None
        refs = self._check(torch.load(cached, map_location="cpu"), cached)
        _atomic_save(refs, self.run_file)
        self.hit = "cache"
        return refs

    def save(self, refs: list[torch.Tensor]) -> None:
        refs = [r.detach().float().cpu() for r in refs]
        _atomic_save(refs, self.run_file)
        if self.cache_dir is None or self.key is None:
            return
        _atomic_save(refs, self.cache_dir / f"{self.key}.pt")
        sidecar = self.cache_dir / f"{self.key}.json"
        sidecar.write_text(json.dumps(self.describe, indent=2) + "\n", encoding="utf-8")
