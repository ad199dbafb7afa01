"""Start-up hook for lm-eval 0.4.13, imported by ``svpo_harness_lm_eval.pth`` at interpreter start.

lm-eval 0.4.13 reads no plugin entry points, so stock ``lm_eval`` finds svpo only through this
hook. setup.py installs this file as the top-level module ``svpo_harness_lm_eval_hook`` (next
to the one-line ``svpo_harness_lm_eval.pth`` that imports it) for wheels and editable installs
alike. It is a module of its own so that start-up never imports (and so never pins) the
svpo_harness package: a checkout on sys.path or an editable install still wins over the
installed copy, and the registration code (``svpo_harness.lm_eval_plugin``) is found in
whichever copy Python imports.

Rules (measured in BENCHMARKS.md): costs well under 5 ms, imports neither torch nor lm_eval nor
svpo_harness, never raises, prints nothing at start-up, acts only when lm_eval's model registry
or task manager is imported, and is off when ``SVPO_LM_EVAL_PLUGIN=0``. If registration then
fails, it writes one line to stderr (once per process): a user who asked lm-eval for ``svpo``
must learn why it is missing, not read "no model for this name found".
"""

import os
import sys

ENV_SWITCH = "SVPO_LM_EVAL_PLUGIN"
# module imported -> function in svpo_harness.lm_eval_plugin run right after it executes
WATCHED = {
    "lm_eval.models": "register_model",
    "lm_eval.tasks.manager": "patch_task_manager",
}
_reported = False


def _report_failure(error: BaseException) -> None:
    """One line on stderr for the first failed registration of this process; never raises."""
    global _reported
    if _reported:
        return
    _reported = True
    try:
        package = sys.modules.get("svpo_harness")
        where = getattr(package, "__file__", None)
        origin = f" (svpo_harness imported from {where})" if where else ""
        detail = " ".join(f"{type(error).__name__}: {error}".split())  # keep it one line
        sys.stderr.write(
            "svpo-harness: could not register the lm-eval model 'svpo' and the svpo_* tasks: "
            f"{detail}{origin}; run `svpo eval ...` instead, or reinstall svpo-harness "
            f"({ENV_SWITCH}=0 turns this hook off)\n"
        )
    except Exception:  # noqa: BLE001 - reporting must not break lm_eval either
        pass


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
            # import_module, not `from svpo_harness import ...`: a copy of svpo_harness without
            # the module then reads "No module named 'svpo_harness.lm_eval_plugin'".
            from importlib import import_module

            plugin = import_module("svpo_harness.lm_eval_plugin")
            getattr(plugin, WATCHED[self._fullname])(module)
        except Exception as error:  # noqa: BLE001 - a plugin must never break lm_eval itself
            _report_failure(error)

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
