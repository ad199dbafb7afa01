#!/usr/bin/env bash
# The wheels scripts/gpu_check.sh installs on a GPU machine that reaches no package index
# (docs/gpu.md): the package's own wheel, and every requirement of it and of lm-eval that the
# device image lacks, at constraints.txt's versions, for CPython $SVPO_GPU_WHEELS_PYTHON (3.12,
# the image's) on Linux x86_64.
#
#   bash scripts/gpu_check_wheels.sh [DIR]      # DIR: dist/gpu-wheels (git ignores dist/)
#
# What the image has (IMAGE_HAS below: torch, transformers, peft, accelerate, numpy, pandas,
# pyarrow, ... as the device tool's KINDS.md listed them on 2026-11-17) is not carried: the
# requirement walk stops there, and gpu_check.sh installs with --no-deps, then runs `pip check`.
# Compiled packages come as cp312 manylinux wheels; a package PyPI has only as a source
# distribution is built here, and must come out pure Python (py3-none-any), else this fails.
# DIR/manifest.txt lists each wheel with its size, what was left to the image, and the total
# (the device tool carries at most 64 MiB with the working tree).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-dist/gpu-wheels}
PY=${PYTHON:-python3}  # needs pip, build, setuptools, wheel and packaging
PYVER=${SVPO_GPU_WHEELS_PYTHON:-3.12}
# The image's packages that the walk meets (names as KINDS.md spells them).
IMAGE_HAS="accelerate aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs certifi
charset-normalizer click colorama contourpy cycler filelock fonttools frozenlist fsspec h11
hf-xet httpcore httpx huggingface-hub idna jinja2 joblib kiwisolver lxml markdown-it-py
markupsafe matplotlib mdurl mpmath multidict narwhals networkx numpy packaging pandas peft
pillow portalocker propcache protobuf psutil pyarrow pygments pyparsing python-dateutil pyyaml
regex requests rich safetensors sacrebleu scikit-learn scipy setuptools shellingham six sympy
tabulate threadpoolctl tokenizers torch tqdm transformers triton typer typing-extensions
urllib3 xxhash yarl"

rm -rf "$DIR"
mkdir -p "$DIR"
echo "== the package's wheel"
# --no-isolation: setuptools and wheel from this environment (the lock's), as run_tests.sh does
"$PY" -m build --wheel --no-isolation --outdir "$DIR" . >/dev/null
ls "$DIR"/svpo_harness-*.whl

echo "== its requirements and lm-eval's that the image lacks (constraints.txt's versions)"
IMAGE_HAS="$IMAGE_HAS" "$PY" - "$DIR" "$PYVER" <<'EOF'
import os
import subprocess
import sys
import tempfile
import zipfile
from email.parser import Parser
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

out, pyver = Path(sys.argv[1]), sys.argv[2]
image = {canonicalize_name(n) for n in os.environ["IMAGE_HAS"].split()}
pins = {}
for line in Path("constraints.txt").read_text().splitlines():
    spec = line.split("--hash")[0].strip()
    if "==" in spec and not spec.startswith("#"):
        name, version = spec.split("==")
        pins[canonicalize_name(name)] = version.split("+")[0]
env = default_environment()  # markers evaluated for the device: CPython 3.12 on Linux x86_64
env.update(python_version=pyver, python_full_version=pyver + ".0", sys_platform="linux",
           platform_system="Linux", platform_machine="x86_64", implementation_name="cpython",
           platform_python_implementation="CPython", os_name="posix")
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64"]


def requirements(wheel: Path, extras: set[str]) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        lines = Parser().parsestr(z.read(meta).decode()).get_all("Requires-Dist") or []
    found = []
    for line in lines:
        req = Requirement(line)
        if req.marker is None or any(
            req.marker.evaluate({**env, "extra": e}) for e in (extras or {""})
        ):
            found.append(req)
    return found


def fetch(name: str, version: str) -> Path:
    """The cp312/pure wheel of name==version from the index, else one built here (pure only)."""
    before = set(out.iterdir())
    pin = f"{name}=={version}"
    args = ["--no-deps", "-q", "-d", str(out), pin]
    tags = ["--only-binary=:all:", "--python-version", pyver, "--implementation", "cp"]
    for p in PLATFORMS:
        tags += ["--platform", p]
    got = subprocess.run([sys.executable, "-m", "pip", "download", *tags, *args],
                         capture_output=True, text=True)
    if got.returncode != 0:  # a source distribution only: build it, then insist it is pure
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp,
                            pin], check=True)
            (built,) = Path(tmp).glob("*.whl")
            if not built.name.endswith("-none-any.whl"):
                sys.exit(f"{pin}: no wheel for CPython {pyver} and the one built here is "
                         f"not pure Python ({built.name})")
            built.rename(out / built.name)
    (new,) = set(out.iterdir()) - before
    return new


own = next(out.glob("svpo_harness-*.whl"))
todo = [(r, "svpo-harness") for r in requirements(own, set())]
carried, left, seen = [], {}, set()
while todo:
    req, parent = todo.pop(0)
    name = canonicalize_name(req.name)
    if name in image:
        left.setdefault(name, parent)
        continue
    if name in seen:
        continue
    seen.add(name)
    if name not in pins:
        sys.exit(f"{req} (needed by {parent}) is not in constraints.txt: lock it first")
    wheel = fetch(req.name, pins[name])
    carried.append((name, wheel))
    todo += [(r, name) for r in requirements(wheel, set(req.extras))]

rows = [(w.name, w.stat().st_size) for w in sorted(out.glob("*.whl"))]
total = sum(size for _, size in rows)
lines = [f"{size / 2**20:8.2f} MiB  {name}" for name, size in rows]
lines += [f"total: {len(rows)} wheels, {total / 2**20:.2f} MiB",
          "left to the device image (needed by): "
          + ", ".join(f"{n} ({p})" for n, p in sorted(left.items()))]
(out / "manifest.txt").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
if total > 48 * 2**20:
    sys.exit(f"{total / 2**20:.1f} MiB of wheels: too close to the device tool's 64 MiB")
EOF
