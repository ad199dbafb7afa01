"""The pipelines layer: one subpackage per capability (CONTRIBUTING.md "Layout and layers").

- ``annotate``: problems -> MCTS trees -> pair/step_q/path records (`svpo annotate`);
- ``train``: records -> checkpoint, every objective, dev-split selection (`svpo train`);
- ``evaluate``: lm-eval runs of ``--model svpo`` and value-head evaluation (`svpo value-eval`);
- ``report``: results -> tables, plots, significance (`svpo report`);
- ``view``: trees and search logs -> one offline page (`svpo view`);
- ``recipes``: annotate -> train -> evaluate -> report (`svpo run`);
- ``runs``: run folders (manifest, resume) and shards;
- ``demo``: the tiny demo model (`svpo demo-model`).

Each subpackage's ``__init__`` names its public API; most import it on first use
(``lazy_exports``), because the CLI imports them at start-up and must not pull in torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, tuple[str, ...]]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``exports`` maps each submodule to the public
    names it defines, imported when first asked for (a type checker reads the package's
    ``TYPE_CHECKING`` imports of the same names)."""
    where = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{where[name]}"), name)

    return __getattr__
