"""Start-up hook for lm-eval 0.4.13, imported by ``svpo_harness_lm_eval.pth`` at interpreter start.

Installed twice: as the top-level module ``svpo_harness_lm_eval_hook`` (what the .pth imports, so
start-up never imports the svpo_harness package) and as ``svpo_harness.plugins.startup`` (tests).

Rules (measured in BENCHMARKS.md): costs well under 5 ms, imports neither torch nor lm_eval,
never raises or prints, acts only when lm_eval's model registry or task manager is imported, and
is off when ``SVPO_LM_EVAL_PLUGIN=0``.
"""

import os
import sys

ENV_SWITCH = "SVPO_LM_EVAL_PLUGIN"
# module imported -> function in svpo_harness.plugins.registration run right after it executes
WATCHED = {
    "lm_eval.models": "register_model",
    "lm_eval.tasks.manager": "patch_task_manager",
}


class _AfterExecLoader:
    """Wraps the real loader: execute the module as usual, then run our registration."""

    def __init__(self, loader, fullname):
        self._loader = loader
        self._fullname = fullname

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        try:
            from svpo_harness.plugins import registration

            getattr(registration, WATCHED[self._fullname])(module)
        except Exception:  # noqa: BLE001 - a plugin must never break lm_eval itself
            pass

    def __getattr__(self, name):  # get_source, get_resource_reader, ... go to the real loader
        return getattr(self._loader, name)


class LmEvalWatcher:
    """A meta-path finder that finds nothing itself; it only wraps two lm_eval modules' loaders."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in WATCHED:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        spec.loader = _AfterExecLoader(spec.loader, fullname)
        return spec


def install():
    """Put the watcher first on sys.meta_path (once); a no-op when switched off."""
    if os.environ.get(ENV_SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        return
    if any(isinstance(finder, LmEvalWatcher) for finder in sys.meta_path):
        return
    sys.meta_path.insert(0, LmEvalWatcher())


try:
    install()
except Exception:  # noqa: BLE001 - never break interpreter start-up
    pass
