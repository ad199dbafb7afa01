"""Only here to ship the lm-eval start-up hook (a .pth file) at the top of site-packages.

Metadata lives in setup.cfg. A .pth file cannot be package data (it must sit next to the
packages, not inside one), so build_py copies it into the build tree; wheels record it like any
other file, so `pip uninstall` removes it.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HOOK = Path("plugins") / "svpo_harness_lm_eval.pth"


class BuildPyWithHook(build_py):
    def run(self) -> None:
        super().run()
        self.copy_file(str(HOOK), str(Path(self.build_lib) / HOOK.name), preserve_mode=False)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), str(Path(self.build_lib) / HOOK.name)]


setup(cmdclass={"build_py": BuildPyWithHook})
