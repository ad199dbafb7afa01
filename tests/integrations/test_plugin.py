"""The lm-eval start-up hook (plugins/) and registration (svpo_harness/lm_eval_plugin.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

HOOK = Path(sysconfig.get_paths()["purelib"]) / "svpo_harness_lm_eval.pth"
needs_hook = pytest.mark.skipif(
    not HOOK.is_file(), reason="start-up hook not installed (editable install or source tree)"
)


def _python(code: str, **env: str) -> str:
    full_env = {**os.environ, **env}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=full_env,
        check=True,
        cwd=Path(__file__).parent,
    )
    return out.stdout.strip()


@needs_hook
def test_hook_is_quiet_and_imports_nothing_heavy():
    report = _python(
        "import sys, json; print(json.dumps({"
        "'torch': 'torch' in sys.modules, 'lm_eval': 'lm_eval' in sys.modules,"
        "'watcher': any(type(f).__name__ == 'LmEvalWatcher' for f in sys.meta_path),"
        "'svpo_harness': 'svpo_harness' in sys.modules}))"
    )
    assert json.loads(report) == {
        "torch": False,
        "lm_eval": False,
        "watcher": True,
        "svpo_harness": False,
    }


@needs_hook
def test_hook_can_be_switched_off():
    report = _python(
        "import sys; print(any(type(f).__name__ == 'LmEvalWatcher' for f in sys.meta_path))",
        SVPO_LM_EVAL_PLUGIN="0",
    )
    assert report == "False"


@needs_hook
def test_stock_registry_has_svpo_and_keeps_builtin_models():
    names = json.loads(
        _python(
            "import json; from lm_eval.api.registry import model_registry; "
            "import lm_eval.models; print(json.dumps(sorted(model_registry.keys())))"
        )
    )
    assert "svpo" in names
    assert {"hf", "vllm", "dummy"} <= set(names)


@needs_hook
def test_get_model_before_models_import_still_sees_builtins():
    # lm-eval only imports its own models when the registry is empty: ours must not fill it first.
    out = _python("from lm_eval.api.registry import get_model; print(get_model('dummy').__name__)")
    assert out == "DummyLM"


def _task_names(**env: str) -> list[str]:
    return json.loads(
        _python(
            "import json; from lm_eval.tasks import TaskManager; "
            "print(json.dumps([t for t in TaskManager().all_tasks if t.startswith('svpo')]))",
            **env,
        )
    )


EXPECTED_TASKS = {
    "svpo_gsm8k",
    "svpo_math",
    "svpo_math500",
    "svpo_gaokao2023en",
    "svpo_ocw",
    "svpo_svamp",
    "svpo_asdiv",
    "svpo_mawps",
    "svpo_tabmwp",
    "svpo_gsm_hard",
    "svpo_college_math",
    "svpo_math_suite",
    "svpo_arith",
    "svpo_arith_hard",
}


@needs_hook
def test_task_manager_lists_every_task_and_group():
    assert EXPECTED_TASKS <= set(_task_names())


@needs_hook
def test_no_tasks_when_switched_off():
    assert _task_names(SVPO_LM_EVAL_PLUGIN="0") == []


def test_explicit_registration_works_without_the_hook():
    # `svpo eval` relies on this path, so it must not depend on the .pth file.
    names = json.loads(
        _python(
            "import json; from svpo_harness.lm_eval_plugin import register_all; "
            "register_all(); from lm_eval.tasks import TaskManager; "
            "from lm_eval.api.registry import model_registry; "
            "print(json.dumps([t for t in TaskManager().all_tasks if t.startswith('svpo')] "
            "+ (['MODEL'] if 'svpo' in model_registry else [])))",
            SVPO_LM_EVAL_PLUGIN="0",
        )
    )
    assert EXPECTED_TASKS <= set(names) and "MODEL" in names


def test_user_include_path_is_kept(tmp_path):
    (tmp_path / "mine.yaml").write_text(
        "task: my_own_task\ndataset_path: x\noutput_type: generate_until\ndoc_to_text: q\n"
    )
    names = json.loads(
        _python(
            "import json, sys; from svpo_harness.lm_eval_plugin import patch_task_manager; "
            "patch_task_manager(); from lm_eval.tasks import TaskManager; "
            f"tm = TaskManager(include_path={str(tmp_path)!r}); "
            "print(json.dumps([t for t in tm.all_tasks if t in ('my_own_task', 'svpo_gsm8k')]))",
            SVPO_LM_EVAL_PLUGIN="0",
        )
    )
    assert sorted(names) == ["my_own_task", "svpo_gsm8k"]
