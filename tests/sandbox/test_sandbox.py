"""run_python / run_many behaviour, the limits as the program sees them, and the modes.

The hostile programs live in test_hostile.py; here: what a normal program gets back, that
each run's folder is fresh and gone afterwards, that a killed worker costs one result and
nothing else, the fallback mode without a network namespace, and the refusals.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hostile_programs import PROGRAMS
from sandbox_helpers import sandbox_processes

from svpo_harness.sandbox import SandboxLimits, SandboxResult, run_many, run_python

REPO = Path(__file__).resolve().parents[2]
SMALL = SandboxLimits(memory_mb=256, max_output_bytes=1000, max_processes=8)


def test_result_fields(sandbox_ready):
    assert run_python("print('hi')") == SandboxResult("hi\n", None, False)
    r = run_python("x = 1\nprint(x)\n1 / 0")
    assert r.stdout == "1\n" and not r.timed_out
    assert r.error.endswith("ZeroDivisionError: division by zero")
    assert 'File "<sandbox>", line 3' in r.error
    assert "svpo_harness" not in r.error  # only the program's own frames
    assert run_python("import sys; sys.exit(0)").error is None
    assert run_python("import sys; sys.exit(3)").error == "exit status 3"
    assert run_python("import sys; sys.exit(256)").error == "exit status 1"
    assert run_python("import sys; sys.exit('bye')").error == "bye"
    assert run_python("def f(:\n  pass").error.endswith("SyntaxError: invalid syntax")


def test_output_is_capped_and_decoded(sandbox_ready):
    r = run_python("print('a' * 5000)", limits=SMALL)
    assert r.stdout == "a" * 1000
    assert r.error == "output limit exceeded (more than 1000 bytes)"
    r = run_python("import sys; sys.stdout.buffer.write(b'\\xff ok')")
    assert r == SandboxResult("\ufffd ok", None, False)


def test_program_sees_its_limits_and_user(sandbox_ready):
    code = (
        "import os, resource as r\n"
        "print(os.getuid(), os.getgid(), os.getgroups(), os.getcwd(), os.listdir('.'))\n"
        "for k in ('AS', 'CPU', 'NPROC', 'NOFILE', 'FSIZE'):\n"
        "    print(k, *r.getrlimit(getattr(r, 'RLIMIT_' + k)))\n"
    )
    lim = SandboxLimits(memory_mb=300, max_processes=9, max_open_files=40, max_file_bytes=5000)
    lines = run_python(code, timeout=2.5, limits=lim).stdout.splitlines()
    uid, gid, groups, cwd, listing = lines[0].split(" ", 4)
    assert int(uid) != 0 and int(uid) == int(gid) and uid != str(os.getuid())
    assert (groups, cwd, listing) == ("[]", "/sandbox", "[]")
    assert lines[1:6] == [
        f"AS {300 * 2**20} {300 * 2**20}", "CPU 3 4", "NPROC 9 9", "NOFILE 40 40",
        "FSIZE 5000 5000",
    ]  # fmt: skip


def test_cpu_limit_ends_a_spinning_program(sandbox_ready):
    # The program lowers its own soft CPU limit to 1 s (lowering is allowed, raising is not),
    # so the CPU limit, not the 5 s wall limit, ends it.
    code = "import resource\nresource.setrlimit(resource.RLIMIT_CPU, (1, 6))\nwhile True: pass"
    r = run_python(code, timeout=5.0)
    assert r == SandboxResult("", "CPU time limit exceeded", False)


def test_each_run_gets_a_fresh_folder_that_is_removed(sandbox_ready):
    first = run_python("open('left.txt', 'w').write('x'); import os; print(os.listdir('.'))")
    assert first.stdout == "['left.txt']\n"
    assert run_python("import os; print(os.listdir('.'))").stdout == "[]\n"
    # From outside: no worker still has a /sandbox mount between runs.
    from svpo_harness.sandbox import pool

    for w in pool._POOL.workers:
        children = Path(f"/proc/{w.proc.pid}/task/{w.proc.pid}/children").read_text().split()
        assert len(children) == 1  # the namespace's PID 1, which serves the runs
        mounts = Path(f"/proc/{children[0]}/mountinfo").read_text().splitlines()
        assert not [m for m in mounts if m.split()[4] == "/sandbox"], mounts


def test_run_many_keeps_order_and_survives_bad_programs(sandbox_ready):
    codes = [f"print({i} * {i})" for i in range(20)]
    codes[3] = "while True: pass"
    codes[7] = "x = [0] * 10**10"
    codes[11] = "import os\nwhile True: os.fork()"
    t0 = time.monotonic()
    res = run_many(codes, timeout=1.0, limits=SMALL, processes=2)
    assert time.monotonic() - t0 < 60  # ended (three of them would run forever), not a speed test
    for i, r in enumerate(res):
        if i == 3:  # the wall limit or the CPU limit (SIGXCPU), whichever the scheduler lets first
            assert r.stdout == "" and (r.timed_out or r.error == "CPU time limit exceeded"), r
        elif i in (7, 11):
            # the memory and process limits end these; on a loaded machine the wall limit may
            # come first (the hostile suite checks each limit alone)
            assert r.error is not None
        else:
            assert r == SandboxResult(f"{i * i}\n", None, False)
    assert sandbox_processes() == []


def test_a_killed_worker_costs_one_result(sandbox_ready):
    from svpo_harness.sandbox import pool

    run_python("pass")
    victim = pool._POOL.workers[0].proc.pid
    out: list[SandboxResult] = []
    t = threading.Thread(target=lambda: out.append(run_python("import time; time.sleep(30)")))
    t.start()
    time.sleep(0.5)
    os.kill(victim, 9)  # the worker's first process; its namespace's PID 1 dies with it
    t.join(timeout=20)
    assert out and out[0].error == "sandbox worker died"
    assert run_python("print(2 + 2)").stdout == "4\n"
    assert sandbox_processes() == []


def test_an_interrupted_call_leaves_no_stale_answers(sandbox_ready):
    from svpo_harness.sandbox import pool

    class Stop(BaseException):
        pass

    real = pool._run

    def run_then_interrupt(p, codes, timeout, limits):
        # Both workers get a program (one answers at once, one after a second), then the
        # caller is interrupted before either answer is read.
        slow = "import time; time.sleep(1); print(666)"
        for w, code in zip(p.workers, ["print(666)", slow], strict=True):
            req = {"code": code, "timeout": 3, "limits": limits.to_json()}
            w.tx.send_bytes(json.dumps(req).encode())
            w.job, w.deadline = 0, time.monotonic() + 10
        raise Stop

    pool._run = run_then_interrupt
    try:
        with pytest.raises(Stop):
            run_many(["print(1)", "print(2)"], processes=2)
    finally:
        pool._run = real
    assert [r.stdout for r in run_many(["print(1)"], processes=2)] == ["1\n"]
    assert sandbox_processes() == []


def test_argument_errors():
    with pytest.raises(ValueError, match="memory_mb"):
        SandboxLimits(memory_mb=0)
    with pytest.raises(TypeError, match="program 1 is bytes"):
        run_many(["print(1)", b"print(2)"])
    with pytest.raises(ValueError, match="timeout"):
        run_python("print(1)", timeout=0)


def _python(code: str, env: dict | None = None, user: int | None = None) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
        env={**os.environ, **(env or {})}, cwd=REPO,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_refuses_where_namespaces_are_refused(sandbox_ready):
    # The caller installs the sandbox's own seccomp filter, which refuses unshare(2); the
    # workers inherit it, so the sandbox must refuse to start rather than run weaker.
    code = (
        "from svpo_harness.sandbox import seccomp, run_python, SandboxUnavailable\n"
        "seccomp.install()\n"
        "try:\n    run_python('print(1)')\nexcept SandboxUnavailable as e:\n"
        "    print('REFUSED', e)\n"
    )
    out = _python(code)
    assert out.startswith("REFUSED svpo sandbox: Linux namespaces refused"), out


def test_refuses_without_root(sandbox_ready):
    code = (
        "import os\nfrom svpo_harness.sandbox import run_python, SandboxUnavailable\n"
        "os.setresgid(65534, 65534, 65534); os.setresuid(65534, 65534, 65534)\n"
        "try:\n    run_python('print(1)')\nexcept SandboxUnavailable as e:\n"
        "    print('REFUSED', e)\n"
    )
    assert _python(code).startswith("REFUSED svpo sandbox: needs root (uid 0 with CAP_SYS_ADMIN)")


NET_PROGRAMS = [p for p in PROGRAMS if p[0] in {
    "tcp_loopback", "udp_loopback", "unix_socket", "raw_socket_syscall", "urllib",
    "subprocess_python_socket",
}]  # fmt: skip


# The network devices the program's network namespace has.
IFACES = (
    "import json\nlines = open('/proc/net/dev').readlines()[2:]\n"
    "print(json.dumps(sorted(x.split(':')[0].strip() for x in lines)))"
)


def test_no_netns_fallback_mode_keeps_the_network_promise(outside):
    """SVPO_SANDBOX_NET=seccomp: host network namespace, seccomp's socket ban alone."""
    from test_hostile import _fill

    codes = [_fill(code, outside) for _, code, _ in NET_PROGRAMS]
    codes.append(IFACES)
    script = (
        "import json, sys\nfrom svpo_harness.sandbox import run_many, sandbox_mode\n"
        f"res = run_many({codes!r}, timeout=2.0)\n"
        "print(json.dumps([sandbox_mode(), [r.error for r in res], res[-1].stdout]))\n"
    )
    mode, errors, ifaces = json.loads(_python(script, env={"SVPO_SANDBOX_NET": "seccomp"}))
    assert mode == "namespaces-no-netns"
    assert all(e is not None for e in errors[:-1]), errors
    assert outside.untouched() == []
    host = sorted(
        p.split(":")[0].strip() for p in Path("/proc/net/dev").read_text().splitlines()[2:]
    )
    assert eval(ifaces) == host  # really the host's network namespace
    # ... while the default mode has a namespace of its own with only a loopback device.
    assert json.loads(run_python(IFACES).stdout) == ["lo"]


def test_preloaded_modules_are_there_and_a_bad_one_refuses(sandbox_ready):
    script = (
        "from svpo_harness.sandbox import run_python, SandboxUnavailable\n"
        "try:\n    print(run_python('import sys; print(\"fractions\" in sys.modules)').stdout)\n"
        "except SandboxUnavailable as e:\n    print('REFUSED', e)\n"
    )
    assert _python(script, env={"SVPO_SANDBOX_PRELOAD": ""}).strip() == "False"
    assert _python(script, env={"SVPO_SANDBOX_PRELOAD": "json, fractions"}).strip() == "True"
    out = _python(script, env={"SVPO_SANDBOX_PRELOAD": "no_such_module_xyz"})
    assert out.startswith("REFUSED svpo sandbox: cannot preload or build the sandbox root"), out
    assert "No module named 'no_such_module_xyz'" in out


def test_sandbox_imports_without_torch():
    code = (
        "import sys\nfor heavy in ('torch', 'transformers', 'lm_eval', 'vllm', 'sympy'):\n"
        "    sys.modules[heavy] = None\nimport svpo_harness.sandbox\nprint('ok')\n"
    )
    assert _python(code).strip() == "ok"
