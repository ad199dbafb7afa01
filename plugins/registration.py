"""Register svpo's lm-eval model and tasks: run by the start-up hook, or by `svpo eval`."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

MODEL_NAME = "svpo"
MODEL_TARGET = "svpo_harness.lm_eval_model:SVPOLM"
_PATCH_FLAG = "_svpo_include_path_patched"


def tasks_dir() -> Path:
    """The folder holding our task YAMLs (works for wheels and editable installs alike)."""
    spec = importlib.util.find_spec("svpo_harness.tasks")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("svpo_harness.tasks is not installed; reinstall svpo-harness")
    return Path(next(iter(spec.submodule_search_locations)))


def register_model(models_module: ModuleType | None = None) -> None:
    """Add ``svpo`` to lm-eval's model registry as a lazy "module:Class" placeholder.

    Must run after ``lm_eval.models`` has filled the registry: lm-eval only imports its own
    models when the registry is empty, so registering first would hide them.
    """
    import lm_eval.models  # noqa: F401  (fills the registry with the built-in models first)
    from lm_eval.api.registry import model_registry

    if MODEL_NAME not in model_registry:
        model_registry.register(MODEL_NAME, target=MODEL_TARGET)


def patch_task_manager(manager_module: ModuleType | None = None) -> None:
    """Make every ``TaskManager`` also scan our task folder, after the user's include paths."""
    if manager_module is None:
        import lm_eval.tasks.manager as manager_module

    cls = manager_module.TaskManager
    if getattr(cls.__init__, _PATCH_FLAG, False):
        return
    import functools
    import inspect

    original = cls.__init__
    signature = inspect.signature(original)

    @functools.wraps(original)
    def __init__(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        include = bound.arguments.get("include_path")
        paths = (
            []
            if include is None
            else list(include)
            if isinstance(include, list | tuple)
            else [include]
        )
        ours = str(tasks_dir())
        if ours not in {str(p) for p in paths}:
            paths.append(ours)
        bound.arguments["include_path"] = paths
        original(*bound.args, **bound.kwargs)

    setattr(__init__, _PATCH_FLAG, True)
    cls.__init__ = __init__


def register_all() -> None:
    """Everything at once, whatever ``SVPO_LM_EVAL_PLUGIN`` says (used by ``svpo eval``)."""
    register_model()
    patch_task_manager()
