"""Only here to ship the lm-eval start-up hook (.pth file + module) at the top of site-packages.

Metadata lives in setup.cfg. A .pth file cannot be package data (it must sit next to the
packages, not inside one), so build_py adds the hook files itself, for both kinds of install:

- wheel (`pip install .`, `python -m build`): copied into the build tree, whose top becomes
  the top of site-packages; the wheel's RECORD lists them, so `pip uninstall` removes them.
- editable (`pip install -e .`, PEP 660): setuptools puts only an import finder into the
  editable wheel and ignores the build tree, so the hook files also go into the folder
  setuptools zips into that wheel (see BuildPyWithHook.run); pip then records and removes
  them like any other file.
"""

from __future__ import annotations

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
        if self.editable_mode:
            self._add_hook_to_editable_wheel()

    def _add_hook_to_editable_wheel(self) -> None:
        # setuptools (>= 64) builds an editable wheel from a temporary folder that it hands to
        # `install` as install_lib (setuptools.command.editable_wheel._configure_build) and
        # zips whole, after the build commands ran: files put there land at the top of
        # site-packages. The hook is a copy, not a link: edits to plugins/startup.py need a
        # reinstall (the registration code it calls is read from the checkout as usual).
        unpacked = Path(self.get_finalized_command("install").install_lib)
        # Its .dist-info is copied in before the build commands run: the check keeps a future
        # setuptools that points install_lib elsewhere from getting files written there.
        if not any(unpacked.glob("*.dist-info")) or unpacked == Path(self.build_lib):
            self.warn(
                f"editable install without the lm-eval start-up hook ({unpacked} is not an "
                "unpacked editable wheel); `svpo eval ...` still registers svpo"
            )
            return
        for source, name in HOOK_FILES.items():
            self.copy_file(str(source), str(unpacked / name), preserve_mode=False)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        extra = [str(Path(self.build_lib) / name) for name in HOOK_FILES.values()]
        return [*super().get_outputs(include_bytecode), *extra]

    def get_source_files(self) -> list[str]:
        # plugins/ is no package, so an sdist would leave the hook's sources out without this.
        return [*super().get_source_files(), *(str(source) for source in HOOK_FILES)]


setup(cmdclass={"build_py": BuildPyWithHook})
