"""Typed JSON Lines records (trees, pairs, step Q-values, paths, SFT examples) and their I/O.

These are the contracts between annotation, pair extraction and training (design.md, "Contracts
that outlive refactors"; method.md sections 2.1, 3 and 4):
- every record carries ``type``, ``schema_version`` and ``question_id``;
- every step is stored as token ids *exactly as sampled* plus the ``tokenizer_fingerprint`` of
  the tokenizer that made them, so nothing downstream re-encodes joined text;
- readers validate each line and point at ``FILE:LINE: field 'x': expected ..., got ...``, and
  reject unknown schema versions;
- writes are append-only, one ``write + flush + fsync`` per record, so a killed run loses at
  most the record in flight; the torn last line it may leave is cut off on the next append.
Validation is driven by the dataclass annotations (``_coerce``) plus a ``_check`` per class for
rules across fields. No torch here (core layer).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar

from svpo_harness.core.step_format import StepFormat

SCHEMA_VERSION = 1  # bump on any incompatible change; readers refuse other versions
TERMINAL_REASONS = ("answer", "empty", "truncated", "max_depth", "context", "error", "exhausted")
# "exhausted": every child of the node is terminal (method.md section 3).
FINISH_REASONS = ("delimiter", "eos", "length", "stop")


def _check_mask(err: Any, name: str, mask: tuple[int, ...], ids: tuple[int, ...]) -> None:
    """A ``*sampled_mask``: empty (every id sampled by the policy) or one 0/1 per id."""
    if mask and len(mask) != len(ids):
        raise err(name, f"expected one 0/1 per id ({len(ids)}) or [], got {len(mask)} entries")
    bad = [m for m in mask if m not in (0, 1)]
    if bad:
        raise err(name, f"expected 0 or 1 per id, got {bad[0]}")


class RecordError(ValueError):
    """A malformed record: ``FILE:LINE: field 'x': expected ..., got ...``."""

    def __init__(
        self, path: str | os.PathLike[str] | None, line: int | None, field: str, message: str
    ) -> None:
        self.path, self.line, self.field, self.message = path, line, field, message
        where = f"{path if path is not None else '<record>'}:{line if line is not None else '?'}"
        super().__init__(f"{where}: field '{field}': {message}")


# -- records -----------------------------------------------------------------------------------
_R = TypeVar("_R", bound="_Rules")


class _Rules:
    """Declarative checks run by ``_check_rules``, then ``_check`` for rules across fields."""

    UNIT: ClassVar[tuple[str, ...]] = ()  # values in [-1, 1] (values, rewards, Q-values)
    NONEMPTY: ClassVar[tuple[str, ...]] = ()  # lists that may not be empty
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {}  # fields with a closed set of values

    @classmethod
    def from_dict(cls: type[_R], data: Any, *, path: Any = None, line: int | None = None) -> _R:
        """Validate a parsed JSON object; a RecordError names ``path:line`` and the field."""
        return _from_dict(cls, data, _Err(path, line))

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self) if hasattr(self, "KIND") else _plain(self)  # type: ignore[arg-type]

    def _check(self, err: _Err) -> None:
        """Rules across fields; none by default."""


@dataclass(frozen=True)
class TreeNode(_Rules):
    """One MCTS node (method.md section 3). The root (node 0) has ``parent_id`` None, no step.

    ``Q`` is derived (``W / N``); it is written for readers of the file and ignored on read.
    """

    UNIT: ClassVar[tuple[str, ...]] = ("value", "reward")
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        "terminal_reason": TERMINAL_REASONS,
        "finish_reason": FINISH_REASONS,
    }
    node_id: int
    parent_id: int | None
    depth: int
    token_ids: tuple[int, ...]  # the step as sampled, delimiter included, EOS excluded
    text: str  # the sampled text, nothing appended
    prior: float  # exp(logprob_mean); 1.0 at the root
    logprob_mean: float | None  # raw (temperature 1) mean log-prob of token_ids
    N: int  # visit count
    W: float  # value sum
    value: float | None  # the value head's estimate after the step (None: not evaluated)
    terminal: bool
    terminal_reason: str | None  # one of TERMINAL_REASONS when terminal
    answer: str | None  # the marked answer found in the step, if any
    reward: float | None  # +1 / -1 for terminal nodes (method.md section 3)
    finish_reason: str | None = None  # how sampling ended (FINISH_REASONS); None at the root
    retokenized: bool = False  # cut at the delimiter and re-tokenized (method.md 2.1)
    eos_appended: bool = False  # ended with EOS or a stop string: appended_ids added
    appended_ids: tuple[int, ...] = ()  # the delimiter's canonical ids when eos_appended
    # Per id of token_ids: 1 = sampled by the policy, 0 = inserted (e.g. a tool's output, which
    # gets no prior, no DPO loss). Empty = every id sampled (the usual case, kept compact).
    sampled_mask: tuple[int, ...] = ()

    @property
    def Q(self) -> float | None:  # noqa: N802 (the paper's name)
        return self.W / self.N if self.N else None

    def train_ids(self) -> tuple[int, ...]:
        """The ids the value is read at and the step is trained on (method.md section 2)."""
        return self.token_ids + self.appended_ids

    def _check(self, err: _Err) -> None:
        if self.N < 0:
            raise err("N", f"expected a visit count >= 0, got {self.N}")
        if self.N and abs(self.W / self.N) > 1.0 + 1e-6:
            raise err("W", f"expected W / N in [-1, 1], got {self.W} / {self.N}")
        if self.terminal != (self.terminal_reason is not None):
            raise err(
                "terminal_reason",
                "expected a reason exactly when terminal, got "
                f"{self.terminal_reason!r} with terminal={self.terminal}",
            )
        _check_mask(err, "sampled_mask", self.sampled_mask, self.token_ids)
        if self.eos_appended != bool(self.appended_ids):
            raise err(
                "appended_ids",
                "expected ids exactly when eos_appended, got "
                f"{list(self.appended_ids)} with eos_appended={self.eos_appended}",
            )


@dataclass(frozen=True)
class TreeRecord(_Rules):
    """One search tree for one question: enough to re-extract pairs without searching again."""

    KIND: ClassVar[str] = "tree"
    NONEMPTY: ClassVar[tuple[str, ...]] = ("prompt_ids", "nodes")
    question_id: str
    question: str
    gold_answer: str
    step_format: dict[str, Any]  # StepFormat.to_dict() of the format searched with
    tokenizer_fingerprint: str
    chat_template: str | None  # the chat template applied to the prompt; None for plain text
    prompt_ids: tuple[int, ...]
    nodes: tuple[TreeNode, ...]  # nodes[i].node_id == i; nodes[0] is the root
    tree_index: int = 0  # several trees per question are allowed (method.md section 3)
    meta: dict[str, Any] = field(default_factory=dict)  # search settings, seed, model name
    schema_version: int = SCHEMA_VERSION

    def _check(self, err: _Err) -> None:
        try:
            StepFormat.from_dict(self.step_format)
        except (TypeError, ValueError) as exc:
            raise err("step_format", f"expected a valid step format, got error: {exc}") from None
        for i, node in enumerate(self.nodes):
            at = f"nodes[{i}]"
            if node.node_id != i:
                raise err(
                    f"{at}.node_id", f"expected {i} (ids are list positions), got {node.node_id}"
                )
            if i == 0:
                if node.parent_id is not None or node.depth != 0 or node.token_ids:
                    raise err(
                        f"{at}.parent_id",
                        "expected the root (parent_id null, depth 0, "
                        f"no ids), got parent_id={node.parent_id}, depth={node.depth}",
                    )
            elif node.parent_id is None or not 0 <= node.parent_id < i:
                raise err(
                    f"{at}.parent_id", f"expected a node id in [0, {i}), got {node.parent_id}"
                )
            elif node.depth != self.nodes[node.parent_id].depth + 1:
                raise err(
                    f"{at}.depth",
                    f"expected parent depth + 1 = "
                    f"{self.nodes[node.parent_id].depth + 1}, got {node.depth}",
                )
            elif not node.train_ids():
                raise err(f"{at}.token_ids", "expected a non-empty step, got []")

    def state_ids(self, node_id: int) -> tuple[int, ...]:
        """Prompt ids + every step's ids as sampled on the path to ``node_id`` (method.md 2.1)."""
        steps: list[tuple[int, ...]] = []
        node = self.nodes[node_id]
        while node.parent_id is not None:
            steps.append(node.token_ids)
            node = self.nodes[node.parent_id]
        return self.prompt_ids + tuple(i for step in reversed(steps) for i in step)


@dataclass(frozen=True)
class PairRecord(_Rules):
    """A step-level preference pair under a shared prefix (method.md section 4)."""

    KIND: ClassVar[str] = "pair"
    UNIT: ClassVar[tuple[str, ...]] = ("q_chosen", "q_rejected")
    NONEMPTY: ClassVar[tuple[str, ...]] = ("prefix_ids", "chosen_ids", "rejected_ids")
    question_id: str
    prefix_ids: tuple[int, ...]  # prompt + earlier steps, ids as sampled
    chosen_ids: tuple[int, ...]  # the step's train ids (as sampled, + delimiter ids after EOS)
    rejected_ids: tuple[int, ...]
    chosen_text: str
    rejected_text: str
    q_chosen: float
    q_rejected: float
    tokenizer_fingerprint: str
    step_format: str  # the StepFormat name
    chosen_node_id: int | None = None  # None for pairs built from text (no tree)
    rejected_node_id: int | None = None
    parent_node_id: int | None = None
    tree_index: int = 0
    from_text: bool = False  # ids derived from text by the longest common prefix (2.1)
    # Per id of chosen_ids / rejected_ids: 1 = sampled by the policy (scored by DPO), 0 = not;
    # empty = all 1 (TreeNode.sampled_mask; appended delimiter ids count as the step's).
    chosen_sampled_mask: tuple[int, ...] = ()
    rejected_sampled_mask: tuple[int, ...] = ()
    schema_version: int = SCHEMA_VERSION

    def _check(self, err: _Err) -> None:
        _check_mask(err, "chosen_sampled_mask", self.chosen_sampled_mask, self.chosen_ids)
        _check_mask(err, "rejected_sampled_mask", self.rejected_sampled_mask, self.rejected_ids)
        if self.q_chosen < self.q_rejected:
            raise err(
                "q_chosen", f"expected >= q_rejected ({self.q_rejected}), got {self.q_chosen}"
            )


@dataclass(frozen=True)
class StepQRecord(_Rules):
    """One visited step with its MCTS Q-value, for the value regression (method.md section 4)."""

    KIND: ClassVar[str] = "step_q"
    UNIT: ClassVar[tuple[str, ...]] = ("q",)
    NONEMPTY: ClassVar[tuple[str, ...]] = ("prefix_ids", "step_ids")
    question_id: str
    prefix_ids: tuple[int, ...]
    step_ids: tuple[int, ...]  # train ids, as in PairRecord
    step_text: str
    q: float
    n: int  # visit count behind q
    tokenizer_fingerprint: str
    step_format: str
    node_id: int | None = None
    tree_index: int = 0
    terminal: bool = False
    step_sampled_mask: tuple[int, ...] = ()  # per id of step_ids, as in PairRecord
    schema_version: int = SCHEMA_VERSION

    def _check(self, err: _Err) -> None:
        _check_mask(err, "step_sampled_mask", self.step_sampled_mask, self.step_ids)
        if self.n < 1:
            raise err("n", f"expected a visit count >= 1, got {self.n}")


@dataclass(frozen=True)
class PathRecord(_Rules):
    """A whole correct root-to-answer path, for the SFT baseline (method.md section 4)."""

    KIND: ClassVar[str] = "path"
    NONEMPTY: ClassVar[tuple[str, ...]] = ("prompt_ids", "step_ids")
    question_id: str
    question: str
    prompt_ids: tuple[int, ...]
    step_ids: tuple[tuple[int, ...], ...]  # per step, train ids
    step_texts: tuple[str, ...]  # per step, as sampled
    answer: str
    tokenizer_fingerprint: str
    step_format: str
    node_ids: tuple[int, ...] = ()
    tree_index: int = 0
    # per step, per id of its step_ids, as in PairRecord; empty = every id of every step sampled
    step_sampled_masks: tuple[tuple[int, ...], ...] = ()
    schema_version: int = SCHEMA_VERSION

    def _check(self, err: _Err) -> None:
        if self.step_sampled_masks and len(self.step_sampled_masks) != len(self.step_ids):
            raise err(
                "step_sampled_masks",
                f"expected {len(self.step_ids)} masks (one per step) or [], got "
                f"{len(self.step_sampled_masks)}",
            )
        for i, (mask, ids) in enumerate(zip(self.step_sampled_masks, self.step_ids, strict=False)):
            _check_mask(err, f"step_sampled_masks[{i}]", mask, ids)
        for name in ("step_texts", "node_ids"):
            got = len(getattr(self, name))
            if got != len(self.step_ids) and (got or name == "step_texts"):
                raise err(name, f"expected {len(self.step_ids)} entries (one per step), got {got}")


@dataclass(frozen=True)
class SFTExample(_Rules):
    """A text-only SFT example (gold solutions, other data sets): no ids, no tokenizer."""

    KIND: ClassVar[str] = "sft"
    NONEMPTY: ClassVar[tuple[str, ...]] = ("steps",)
    question_id: str
    question: str
    steps: tuple[str, ...]  # step texts without the delimiter; joined by the format's delimiter
    answer: str | None = None
    step_format: str = "arith"
    schema_version: int = SCHEMA_VERSION


Record = TreeRecord | PairRecord | StepQRecord | PathRecord | SFTExample
RECORD_TYPES: dict[str, type] = {
    cls.KIND: cls for cls in (TreeRecord, PairRecord, StepQRecord, PathRecord, SFTExample)
}
RecordKind = Literal["tree", "pair", "step_q", "path", "sft"]


# -- validation --------------------------------------------------------------------------------
class _Err:
    """Builds RecordErrors for one line; ``prefix`` names the nesting (``nodes[3].``)."""

    def __init__(self, path: Any, line: int | None, prefix: str = "") -> None:
        self.path, self.line, self.prefix = path, line, prefix

    def __call__(self, name: str, message: str) -> RecordError:
        return RecordError(self.path, self.line, self.prefix + name, message)

    def nested(self, name: str) -> _Err:
        return _Err(self.path, self.line, f"{self.prefix}{name}.")


def _got(value: Any) -> str:
    if value is None:
        return "nothing (missing or null)"
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, float) else repr(value)
    text = text if len(text) <= 40 else text[:37] + "..."
    kind = {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "list",
        dict: "object",
        type(None): "null",
    }.get(type(value), type(value).__name__)
    return f"{kind} {text}"


_SCALARS: dict[type, tuple[str, Callable[[Any], bool]]] = {
    bool: ("true or false", lambda v: isinstance(v, bool)),
    int: ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    float: (
        "a finite number",
        lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
    ),
    str: ("a string", lambda v: isinstance(v, str)),
}


def _coerce(value: Any, tp: Any, name: str, err: _Err) -> Any:
    """Check ``value`` against annotation ``tp``; lists become tuples, nested dicts records."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(value, inner, name, err)
    if tp is Any:
        return value
    if tp in _SCALARS:
        what, ok = _SCALARS[tp]
        if not ok(value):
            raise err(name, f"expected {what}, got {_got(value)}")
        return float(value) if tp is float else value
    if origin is tuple:
        if not isinstance(value, list):
            raise err(name, f"expected a list, got {_got(value)}")
        return tuple(_coerce(v, args[0], f"{name}[{i}]", err) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise err(name, f"expected an object, got {_got(value)}")
        return value
    if dataclasses.is_dataclass(tp):
        return _from_dict(tp, value, err.nested(name))
    raise TypeError(f"schemas: unsupported annotation {tp!r}")  # a bug here, not in the data


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _from_dict(cls: Any, data: Any, err: _Err) -> Any:
    if not isinstance(data, dict):
        raise err("(record)", f"expected a JSON object, got {_got(data)}")
    kind = getattr(cls, "KIND", None)
    if kind is not None:
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise err(
                "schema_version",
                f"expected {SCHEMA_VERSION} (the version this "
                f"svpo_harness reads), got {_got(version)}; re-create the file or use a "
                "matching svpo_harness version",
            )
        if data.get("type") != kind:
            raise err("type", f"expected {kind!r}, got {_got(data.get('type'))}")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    allowed = set(fields) | {"type"} | ({"Q"} if cls is TreeNode else set())
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise err(
            unknown[0], f"expected one of the known fields {sorted(fields)}, got an unknown field"
        )
    values = {}
    for name, f in fields.items():
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise err(name, "expected a value, got nothing (required field missing)")
            continue
        values[name] = _coerce(data[name], hints[name], name, err)
    record = cls(**values)
    _check_rules(record, err)
    record._check(err)
    return record


def _check_rules(record: Any, err: _Err) -> None:
    for name in record.UNIT:
        value = getattr(record, name)
        if value is not None and not -1.0 <= value <= 1.0:
            raise err(name, f"expected a number in [-1, 1], got {value}")
    for name in record.NONEMPTY:
        if not getattr(record, name):
            raise err(name, "expected a non-empty list, got []")
    for name, choices in record.CHOICES.items():
        value = getattr(record, name)
        if value is not None and value not in choices:
            raise err(name, f"expected one of {list(choices)}, got {_got(value)}")


def record_from_dict(
    data: Any, kind: str | None = None, *, path: Any = None, line: int | None = None
) -> Record:
    """Validate one parsed JSON object; ``kind`` None dispatches on its ``type`` field."""
    err = _Err(path, line)
    if not isinstance(data, dict):
        raise err("(record)", f"expected a JSON object, got {_got(data)}")
    kind = kind if kind is not None else data.get("type")
    if kind not in RECORD_TYPES:
        raise err("type", f"expected one of {sorted(RECORD_TYPES)}, got {_got(kind)}")
    return _from_dict(RECORD_TYPES[kind], data, err)


def to_dict(record: Record) -> dict[str, Any]:
    """The JSON form: ``type`` first, lists for tuples, ``Q`` added to tree nodes for humans."""
    out: dict[str, Any] = {"type": record.KIND, "schema_version": record.schema_version}
    for f in dataclasses.fields(record):
        out[f.name] = _plain(getattr(record, f.name))
    if isinstance(record, TreeRecord):
        for node_dict, node in zip(out["nodes"], record.nodes, strict=True):
            node_dict["Q"] = node.Q
    return out


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


# File I/O (read_jsonl_records, append_jsonl, repair_jsonl_tail, atomic_write_json) lives in
# svpo_harness.core.jsonl_io.
__all__ = [
    "SCHEMA_VERSION",
    "RECORD_TYPES",
    "Record",
    "RecordError",
    "TreeNode",
    "TreeRecord",
    "PairRecord",
    "StepQRecord",
    "PathRecord",
    "SFTExample",
    "record_from_dict",
    "to_dict",
]
