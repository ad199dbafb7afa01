"""Recipes: annotate -> train -> evaluate -> report, end to end (`svpo run`, `svpo quickstart`).

Public API: ``load_recipe`` (YAML -> checked recipe, ``RecipeError``) and ``run_recipe``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from svpo_harness.pipelines import lazy_exports

if TYPE_CHECKING:
    from svpo_harness.pipelines.recipes.recipe import RecipeError, load_recipe
    from svpo_harness.pipelines.recipes.recipe_run import run_recipe

__getattr__ = lazy_exports(
    __name__, {"recipe": ("RecipeError", "load_recipe"), "recipe_run": ("run_recipe",)}
)
__all__ = ["RecipeError", "load_recipe", "run_recipe"]
