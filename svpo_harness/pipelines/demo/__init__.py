"""The demo model (`svpo demo-model`): a tiny policy trained offline on the arithmetic world,
shipped built (``shipped_demo_model``, ``copy_shipped_demo_model``) and rebuilt by
``build_demo_model``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from svpo_harness.pipelines import lazy_exports

if TYPE_CHECKING:
    from svpo_harness.pipelines.demo.demo_model import (
        DEMO_STEPS,
        build_demo_model,
        copy_shipped_demo_model,
        shipped_demo_model,
    )

__getattr__ = lazy_exports(
    __name__,
    {
        "demo_model": (
            "DEMO_STEPS",
            "build_demo_model",
            "copy_shipped_demo_model",
            "shipped_demo_model",
        )
    },
)
__all__ = ["DEMO_STEPS", "build_demo_model", "copy_shipped_demo_model", "shipped_demo_model"]
