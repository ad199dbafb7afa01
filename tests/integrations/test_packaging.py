"""setup.cfg lists its packages by hand (tasks/ is mapped under svpo_harness): every package of
the source tree must be in that list, or the wheel ships without it (svpo_harness.sandbox once
was missing: the checkout imported it, the installed wheel did not)."""

from __future__ import annotations

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_source_package_is_in_setup_cfg():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    listed = {line.strip() for line in cfg["options"]["packages"].splitlines() if line.strip()}
    on_disk = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "svpo_harness").rglob("__init__.py")
    }
    assert on_disk - listed == set(), "add these to [options] packages in setup.cfg"
    assert "svpo_harness.tasks" in listed  # tasks/ mapped under ours (package_dir)


def test_every_shipped_asset_folder_is_in_package_data():
    """A shipped model folder missing from package_data installs as an empty package folder."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    patterns = {p.strip() for p in cfg["options.package_data"]["svpo_harness"].split(",")}
    folders = [p for p in (ROOT / "svpo_harness" / "assets").iterdir() if p.is_dir()]
    assert {"demo-model", "demo-model-tool"} <= {p.name for p in folders}
    for folder in folders:
        if folder.name != "__pycache__":
            assert f"assets/{folder.name}/*" in patterns, folder.name
