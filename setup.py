"""Only here to ship the lm-eval start-up hook (.pth file + module) at the top of site-packages.

Metadata lives in setup.cfg. A .pth file cannot be package data (it must sit next to the
packages, not inside one), so build_py copies it into the build tree; wheels record it like any
other file, so `pip uninstall` removes it.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

# source in the repo -> name at the top of site-packages
HOOK_FILES = {
    Path("plugins") / "svpo_harness_lm_eval.pth": "svpo_harness_lm_eval.pth",
    # The watcher is a top-level module of its own so that interpreter start-up never imports
    # (and so never pins) the svpo_harness package itself: a source checkout on PYTHONPATH or
    # an editable install still wins over the installed copy.
    Path("plugins") / "startup.py": "svpo_harness_lm_eval_hook.py",
}


class BuildPyWithHook(build_py):
    def run(self) -> None:
        super().run()
        for source, name in HOOK_FILES.items():
            self.copy_file(str(source), str(Path(self.build_lib) / name), preserve_mode=False)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        extra = [str(Path(self.build_lib) / name) for name in HOOK_FILES.values()]
        return [*super().get_outputs(include_bytecode), *extra]


setup(cmdclass={"build_py": BuildPyWithHook})
