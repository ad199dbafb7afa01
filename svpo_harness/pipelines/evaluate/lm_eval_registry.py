"""Register svpo's lm-eval model and tasks, and find our task folder.

Run by the start-up hook and `svpo eval` through ``svpo_harness.lm_eval_plugin`` (the stable
name the hook imports; it re-exports everything here), and by the evaluate pipeline
(``lm_eval_run``) before it runs lm-eval. It lives in the pipelines layer so that pipeline
needs no integration module; the model it registers is named by a string
(``MODEL_TARGET``), imported by lm-eval only when ``svpo`` is chosen. Standard library only:
the hook imports this module whenever lm-eval's model registry is imported.
"""

from __future__ import annotations

import functools
import inspect
from pathlib import Path
from types import ModuleType

MODEL_NAME = "svpo"
MODEL_TARGET = "svpo_harness.lm_eval_model:SVPOLM"
_PATCH_FLAG = "_svpo_include_path_patched"
# Every task includes this file, so its presence tells our task folder from any other `tasks/`.
_MARKER = "_svpo_template.yaml"


def tasks_dir() -> Path:
    """The folder holding our task YAMLs, found from either layout.

    Installed (wheel): ``site-packages/svpo_harness/tasks`` (setup.cfg maps the repository's
    ``tasks/`` there). Checkout or editable install: ``tasks/`` next to ``svpo_harness/``. Find
    the folder here, never by importing ``svpo_harness.tasks``: a checkout has no such package.
    """
    package = Path(__file__).resolve().parents[2]  # svpo_harness/ (this is pipelines/evaluate/)
    candidates = (package / "tasks", package.parent / "tasks")
    for folder in candidates:
        if (folder / _MARKER).is_file():
            return folder
    looked = ", ".join(str(c) for c in candidates)
    raise RuntimeError(f"svpo-harness task folder not found (looked in {looked}); reinstall it")


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
    # Looked up once, here: a missing folder then fails the registration (which the hook
    # reports), not every later TaskManager() of the user's.
    ours = str(tasks_dir())
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
