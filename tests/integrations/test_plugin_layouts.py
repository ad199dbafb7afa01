"""The start-up hook from every layout: a checkout's root, an editable install, a failure.

A Python started in the repository's root imports the source tree's `svpo_harness`, not the
installed one; the hook installed from the wheel must find its registration code there too, and
when registration fails it must say so in one line once lm-eval is used.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
HOOK_SOURCE = REPO_ROOT / "plugins" / "startup.py"
PURELIB = Path(sysconfig.get_paths()["purelib"])
needs_hook = pytest.mark.skipif(
    not (PURELIB / "svpo_harness_lm_eval.pth").is_file(),
    reason="start-up hook not installed in this interpreter",
)
FAILURE_PREFIX = "svpo-harness: could not register"


def _run(python: Path | str, code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(python), "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=cwd,
        timeout=300,
    )


def _ours(lines: str) -> list[str]:
    return [line for line in lines.splitlines() if line.startswith("svpo-harness:")]


@needs_hook
def test_lm_eval_python_api_from_the_repository_root(micro_checkpoint):
    """The issue's case: `python -c` in the checkout's root, where the source tree shadows the
    installed package; lm-eval's Python API must still find the model and the tasks."""
    code = f"""
import json, sys
import lm_eval
from lm_eval.api.registry import get_model
from lm_eval.tasks import TaskManager

model = get_model("svpo")
manager = TaskManager()
entry = manager.task_index["svpo_gsm8k"]  # an Entry from lm-eval 0.4.13 on, a dict before
out = lm_eval.simple_evaluate(
    model="svpo",
    model_args="pretrained={micro_checkpoint},device=cpu,decoding=greedy",
    tasks=["svpo_arith"],
    limit=1,
)
print(json.dumps({{
    "package": sys.modules["svpo_harness"].__file__,
    "model": model.__module__ + "." + model.__name__,
    "tasks": sorted(t for t in manager.all_tasks if t.startswith("svpo")),
    "yaml": str(getattr(entry, "yaml_path", None) or entry["yaml_path"]),
    "scored": "acc,none" in out["results"]["svpo_arith"],
}}))
"""
    done = _run(sys.executable, code, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.splitlines()[-1])
    # The scenario really is the shadowed one: the checkout's package, the checkout's tasks.
    assert Path(report["package"]) == REPO_ROOT / "svpo_harness" / "__init__.py"
    assert Path(report["yaml"]).parent == REPO_ROOT / "tasks"
    assert report["model"] == "svpo_harness.lm_eval_model.SVPOLM"
    assert {"svpo_gsm8k", "svpo_math_suite", "svpo_arith"} <= set(report["tasks"])
    assert report["scored"]
    assert _ours(done.stderr) == []


# A wheel, not an editable install: only there can a copy of svpo_harness on sys.path hide the
# registration code (an editable install's finder still finds it in the checkout).
needs_wheel = pytest.mark.skipif(
    not (PURELIB / "svpo_harness" / "__init__.py").is_file()
    or not (PURELIB / "svpo_harness_lm_eval.pth").is_file(),
    reason="svpo-harness wheel (with its start-up hook) not installed in this interpreter",
)


def _stale_package(root: Path) -> str:
    """A `svpo_harness` without the registration code, first on sys.path: what an old checkout
    (or any other copy that lacks it) looks like to the hook installed from a newer wheel."""
    (root / "svpo_harness").mkdir()
    (root / "svpo_harness" / "__init__.py").write_text('"""An old checkout."""\n')
    return f"No module named 'svpo_harness.lm_eval_plugin' (svpo_harness imported from {root}"


def _moved_lm_eval_internals(root: Path) -> str:
    """An lm-eval whose registry and task manager moved (both modules the hook watches exist,
    without what registration needs): the failure a future lm-eval release would cause."""
    for module in ("__init__", "models/__init__", "api/__init__", "api/registry"):
        (root / "lm_eval" / f"{module}.py").parent.mkdir(parents=True, exist_ok=True)
        (root / "lm_eval" / f"{module}.py").write_text("")
    (root / "lm_eval" / "tasks").mkdir()
    (root / "lm_eval" / "tasks" / "__init__.py").write_text("")
    (root / "lm_eval" / "tasks" / "manager.py").write_text("")
    return "ImportError: cannot import name 'model_registry' from 'lm_eval.api.registry'"


# Marks the moment between interpreter start and lm-eval's import in the child's stderr.
_USE_LM_EVAL = """
import sys
print("-- lm_eval next", file=sys.stderr, flush=True)
import lm_eval.models
import lm_eval.tasks.manager
import lm_eval.api.registry as registry
print("svpo" in getattr(registry, "model_registry", {}))
"""
# The hook from its source file, for interpreters that have none installed (a dev venv).
_LOAD_HOOK_SOURCE = f"""
import importlib.util, os, sys
os.environ.pop("SVPO_LM_EVAL_PLUGIN")
spec = importlib.util.spec_from_file_location("svpo_harness_lm_eval_hook", {str(HOOK_SOURCE)!r})
hook = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = hook
spec.loader.exec_module(hook)
"""


@pytest.mark.parametrize(
    ("hook", "failure"),
    [
        pytest.param("installed", _stale_package, marks=needs_wheel, id="installed-stale"),
        pytest.param("installed", _moved_lm_eval_internals, marks=needs_hook, id="installed-lm"),
        pytest.param("source", _moved_lm_eval_internals, id="source-lm"),
    ],
)
def test_a_failed_registration_says_one_line_when_lm_eval_is_used(tmp_path, hook, failure):
    expected = failure(tmp_path)
    if hook == "installed":
        done = _run(sys.executable, _USE_LM_EVAL, cwd=tmp_path)
    else:  # the installed hook (if any) off at start-up, the source copy on instead
        code = _LOAD_HOOK_SOURCE + _USE_LM_EVAL
        done = _run(sys.executable, code, cwd=tmp_path, SVPO_LM_EVAL_PLUGIN="0")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "False"  # lm-eval itself still imports, without svpo
    start, _, after = done.stderr.partition("-- lm_eval next")
    assert _ours(start) == []  # nothing at interpreter start
    lines = _ours(after)
    assert len(lines) == 1, after[-3000:]  # both watched modules failed: still one line
    assert lines[0].startswith(FAILURE_PREFIX)
    assert expected in lines[0]
    assert "svpo eval" in lines[0]


@needs_hook
def test_a_plain_start_stays_quiet_when_registration_would_fail(tmp_path):
    _stale_package(tmp_path)
    _moved_lm_eval_internals(tmp_path)
    done = _run(sys.executable, "import svpo_harness, lm_eval", cwd=tmp_path)
    assert done.returncode == 0 and done.stderr == ""


def _deps_only(into: Path) -> Path:
    """Links to every installed package of this interpreter except svpo-harness's own files, so
    that a fresh venv can use them (no download) without the installed copy shadowing the
    editable one. A plain path entry: any .pth files among them are not run, so they are left
    out."""
    into.mkdir()
    for folder in [Path(p) for p in sys.path]:
        if folder.name not in ("site-packages", "dist-packages") or not folder.is_dir():
            continue
        for entry in folder.iterdir():
            name = entry.name
            skip = name.startswith(("svpo_harness", "__editable__", "__pycache__"))
            if skip or name.endswith(".pth") or (into / name).exists():
                continue
            (into / name).symlink_to(entry)
    return into


@pytest.mark.slow
def test_editable_install_gets_the_hook(tmp_path):
    """`pip install -e .` puts the .pth file and the hook module in site-packages, and pip
    uninstall removes them again (15-30 s on 2 cores: no download, no dependency)."""
    pytest.importorskip("setuptools", reason="builds the editable wheel without build isolation")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = Path(
        _run(
            python, "import sysconfig; print(sysconfig.get_paths()['purelib'])", tmp_path
        ).stdout.strip()
    )
    deps = _deps_only(tmp_path / "deps")
    (purelib / "outer_deps.pth").write_text(f"{deps}\n")
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "-q"]
    # --no-build-isolation: setuptools comes from the linked packages, as pip itself does.
    install = [*pip, "install", "--no-deps", "--no-index", "--no-build-isolation", "-e"]
    subprocess.run([*install, str(REPO_ROOT)], check=True, cwd=tmp_path, timeout=300)
    assert (purelib / "svpo_harness_lm_eval.pth").is_file()
    assert (purelib / "svpo_harness_lm_eval_hook.py").is_file()

    code = """
import json, sys
started = {
    "watcher": any(type(f).__name__ == "LmEvalWatcher" for f in sys.meta_path),
    "svpo_harness": "svpo_harness" in sys.modules,
}
import lm_eval.models
from lm_eval.api.registry import model_registry
from lm_eval.tasks import TaskManager
import svpo_harness
tasks = [t for t in TaskManager().all_tasks if t.startswith("svpo")]
print(json.dumps({**started, "model": "svpo" in model_registry, "tasks": tasks,
                  "package": svpo_harness.__file__}))
"""
    done = _run(python, code, cwd=tmp_path)  # not the repo root: the editable finder's work
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["watcher"] and not report["svpo_harness"]
    assert report["model"]
    assert {"svpo_gsm8k", "svpo_arith"} <= set(report["tasks"])
    assert Path(report["package"]) == REPO_ROOT / "svpo_harness" / "__init__.py"
    assert _ours(done.stderr) == []

    subprocess.run([*pip, "uninstall", "-y", "svpo-harness"], check=True, cwd=tmp_path)
    assert not (purelib / "svpo_harness_lm_eval.pth").exists()
    assert not (purelib / "svpo_harness_lm_eval_hook.py").exists()
