"""Hostile programs for tests/sandbox/test_hostile.py: (id, code, expectation).

Tokens replaced before a run: @CANARY@, @FOLDER@, @SECRET_FILE@, @TCP@, @UDP@, @UNIX@,
@CALLER@ (the test process's pid), @REPO@ (a file of this repository), @HOME_FILES@ (a list
of the caller's home files). Expectations: "error" (must end with an error), "timeout" (must
be stopped by the wall-time limit), "any" (how it ends is free; only the outside checks
count), or a string the output must equal.
"""

from __future__ import annotations

PROGRAMS: list[tuple[str, str, str]] = [
    # --- files outside the run's folder ---------------------------------------------------
    ("write_canary", "open('@CANARY@', 'w').write('pwned')", "error"),
    ("append_canary", "open('@CANARY@', 'a').write('pwned')", "error"),
    ("delete_canary", "import os; os.remove('@CANARY@')", "error"),
    ("rename_canary", "import os; os.rename('@CANARY@', '@FOLDER@/moved')", "error"),
    ("chmod_canary", "import os; os.chmod('@CANARY@', 0o777)", "error"),
    ("rmtree_folder", "import shutil; shutil.rmtree('@FOLDER@')", "error"),
    ("new_file_in_folder", "open('@FOLDER@/new.txt', 'w').write('x')", "error"),
    (
        "symlink_to_canary",
        "import os\nos.symlink('@CANARY@', 'l')\nopen('l', 'w').write('x')",
        "error",
    ),
    ("hardlink_canary", "import os; os.link('@CANARY@', 'h')", "error"),
    ("append_repo_file", "open('@REPO@', 'a').write('# pwned')", "error"),
    ("write_etc_and_usr", "open('/etc/passwd', 'a').write('x')\n", "error"),
    (
        "write_python_install",
        "import os, sys\nopen(os.path.join(sys.prefix, 'pwned.txt'), 'w').write('x')",
        "error",
    ),
    ("write_dev_shm", "open('/dev/shm/svpo-escape', 'w').write('x')", "error"),
    (
        "write_tmp_stays_inside",
        "open('/tmp/svpo-escape-probe', 'w').write('x')\nimport os; print(sorted(os.listdir('.')))",
        "['svpo-escape-probe']\n",
    ),
    # --- secrets --------------------------------------------------------------------------
    ("env_secret", "import os; print(dict(os.environ))", "any"),
    (
        "proc_environ",
        "import glob\n"
        "for p in glob.glob('/proc/*/environ'):\n"
        "    try: print(open(p, 'rb').read())\n"
        "    except OSError: pass",
        "any",
    ),
    ("caller_proc", "print(open('/proc/@CALLER@/environ', 'rb').read())", "error"),
    ("secret_file", "print(open('@SECRET_FILE@').read())", "error"),
    (
        "home_files",
        "for p in @HOME_FILES@:\n"
        "    try: print(open(p).read())\n"
        "    except OSError as e: print('no', type(e).__name__)",
        "any",
    ),
    (
        "walk_root_fs",
        "import os\n"
        "for d, _, fs in os.walk('/'):\n"
        "    if d.startswith(('/proc', '/usr', '/root/.pyenv', '/work/venv')): continue\n"
        "    for f in fs:\n"
        "        try: print(open(os.path.join(d, f), errors='replace').read()[:200])\n"
        "        except OSError: pass",
        "any",
    ),
    (
        "gc_scan_worker_memory",
        "import gc\n"
        "print([o for o in gc.get_objects() if isinstance(o, str) and 'svpo-secret' in o])",
        "any",
    ),
    # --- network --------------------------------------------------------------------------
    ("tcp_loopback", "import socket; socket.create_connection(('127.0.0.1', @TCP@), 1)", "error"),
    (
        "tcp_localhost_name",
        "import socket; socket.create_connection(('localhost', @TCP@), 1)",
        "error",
    ),
    (
        "udp_loopback",
        "import socket; socket.socket(2, 2).sendto(b'x', ('127.0.0.1', @UDP@))",
        "error",
    ),
    (
        "unix_socket",
        "import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect('@UNIX@')",
        "error",
    ),
    (
        "raw_socket_syscall",
        "import ctypes\nlibc = ctypes.CDLL(None)\n"
        "fd = libc.syscall(41, 2, 1, 0)\nassert fd >= 0, 'socket refused'",
        "error",
    ),
    (
        "urllib",
        "import urllib.request\nurllib.request.urlopen('http://127.0.0.1:@TCP@/', timeout=1)",
        "error",
    ),
    (
        "subprocess_python_socket",
        "import subprocess, sys\n"
        "r = subprocess.run([sys.executable, '-c', 'import socket; "
        'socket.create_connection(("127.0.0.1", @TCP@), 1)\'])\nassert r.returncode == 0',
        "error",
    ),
    # --- processes ------------------------------------------------------------------------
    ("os_system_rm", "import os; os.system('rm -rf @FOLDER@ /work 2>&1')", "any"),
    (
        "subprocess_touch",
        "import subprocess; subprocess.run(['sh', '-c', 'echo x > @CANARY@'], check=True)",
        "error",
    ),
    ("background_sleep", "import subprocess; subprocess.Popen(['sleep', '100'])", "any"),
    ("os_system_background", "import os; os.system('sleep 100 &'); print('left')", "left\n"),
    ("fork_bomb", "import os\nwhile True:\n    os.fork()", "error"),
    ("shell_fork_bomb", "import os; os.system(':(){ :|:& };:'); print('done')", "any"),
    (
        "thread_bomb",
        "import threading, time\n"
        "while True:\n    threading.Thread(target=time.sleep, args=(100,)).start()",
        "error",
    ),
    (
        "setsid_double_fork",
        "import os, time\n"
        "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        "        time.sleep(100)\n    os._exit(0)\nprint('parent done')",
        "parent done\n",
    ),
    (
        "orphan_ignores_signals",
        "import os, signal, time\n"
        "if os.fork() == 0:\n    for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):\n"
        "        signal.signal(s, signal.SIG_IGN)\n    time.sleep(100)\nprint('ok')",
        "ok\n",
    ),
    ("kill_parent", "import os, signal; os.kill(os.getppid(), signal.SIGKILL)", "any"),
    (
        "kill_init_and_all",
        "import os, signal\nos.kill(1, signal.SIGKILL)\nos.kill(-1, signal.SIGKILL)",
        "any",
    ),
    ("kill_caller", "import os, signal; os.kill(@CALLER@, signal.SIGKILL)", "error"),
    (
        "sigterm_ignored_loop",
        "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True: pass",
        "timeout",
    ),
    (
        "sigxcpu_ignored_spin",
        "import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True: pass",
        "any",
    ),
    ("setuid_root", "import os; os.setuid(0)", "error"),
    (
        "setrlimit_raise",
        "import resource\nresource.setrlimit(resource.RLIMIT_NPROC, (10**6, 10**6))",
        "error",
    ),
    (
        "setrlimit_raise_as",
        "import resource\nresource.setrlimit(resource.RLIMIT_AS, (-1, -1))",
        "error",
    ),
    (
        "ctypes_unshare_user",
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "assert libc.unshare(0x10000000) == 0, ctypes.get_errno()",
        "error",
    ),
    (
        "ctypes_ptrace_parent",
        "import ctypes, os\nlibc = ctypes.CDLL(None)\n"
        "assert libc.ptrace(16, os.getppid(), 0, 0) == 0",
        "error",
    ),
    (
        "ctypes_mount",
        "import ctypes\nlibc = ctypes.CDLL(None)\n"
        "assert libc.mount(b'none', b'/sandbox', b'tmpfs', 0, None) == 0",
        "error",
    ),
    ("ctypes_segfault", "import ctypes; ctypes.string_at(0)", "error"),
    # --- memory, time, output -------------------------------------------------------------
    ("ten_gb_list", "x = [0] * (10 * 1024**3 // 8)", "error"),
    ("bytearray_bomb", "x = bytearray(10 * 1024**3)", "error"),
    ("growing_list", "x = []\nwhile True:\n    x.append(' ' * 10**6)", "error"),
    ("power_tower", "x = 9**9**9**9", "error"),  # time or memory, whichever first
    ("while_true", "while True: pass", "timeout"),
    ("sleep_forever", "import time; time.sleep(10**6)", "timeout"),
    ("megabyte_output", "print('x' * 10**6)", "error"),
    ("output_flood", "while True: print('y' * 1000)", "error"),
    ("stderr_flood", "import sys\nwhile True: sys.stderr.write('z' * 1000)", "error"),
    ("big_file_in_folder", "open('big', 'wb').write(b'x' * 10**8)", "error"),
    ("many_files", "fs = [open(f'f{i}', 'w') for i in range(10000)]", "error"),
    ("recursion", "def f(n): return f(n + 1)\nf(0)", "error"),
    # --- import tricks --------------------------------------------------------------------
    ("builtins_import", "__builtins__.__import__('os').remove('@CANARY@')", "error"),
    (
        "obfuscated_import",
        "m = __import__('o' + 's')\n"
        "getattr(m, 'sys' + 'tem')('echo x >> @CANARY@')\nm.remove('@CANARY@')",
        "error",
    ),
    (
        "importlib_subprocess",
        "import importlib\n"
        "importlib.import_module('subprocess').run(['rm', '@CANARY@'], check=True)",
        "error",
    ),
    ("exec_hex_payload", "exec(bytes.fromhex('@HEX_PAYLOAD@').decode())", "error"),
    ("import_svpo_harness", "import svpo_harness", "error"),
]
