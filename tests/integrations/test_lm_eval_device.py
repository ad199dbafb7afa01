"""`--model svpo` placement (issue 10 item 2): the device when `--device` is not given, weights
loaded straight onto the device, and HFLM's loading arguments honoured or refused by name."""

from __future__ import annotations

import copy
import logging

import pytest
import torch

from svpo_harness.engines import checkpoint
from svpo_harness.lm_eval_model import SVPOLM


def _cli(path, device: str | None = None, **model_args) -> SVPOLM:
    """As lm-eval 0.4.13's CLI builds it: --model_args, then --device/--batch_size (None unless
    given) as additional_config."""
    args = {"pretrained": str(path), "decoding": "greedy", **model_args}
    extra = {"batch_size": 1, "max_batch_size": None, "device": device}
    return SVPOLM.create_from_arg_obj(args, extra)


def _spy_loads(monkeypatch) -> list[tuple[str, dict]]:
    """Record what each from_pretrained call is asked (the real load still runs)."""
    calls: list[tuple[str, dict]] = []
    real = checkpoint._from_pretrained

    def spy(loader, spec, what, **kwargs):
        calls.append((what, copy.deepcopy(kwargs)))  # from_pretrained edits max_memory
        return real(loader, spec, what, **kwargs)

    monkeypatch.setattr(checkpoint, "_from_pretrained", spy)
    return calls


@pytest.mark.parametrize(
    ("given", "cuda", "expected"),
    [(None, True, "cuda"), (None, False, "cpu"), ("auto", True, "cuda"), ("cpu", True, "cpu")],
)
def test_the_default_device_is_cuda_when_present(monkeypatch, given, cuda, expected):
    from svpo_harness.lm_eval_loading import default_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert default_device(given) == torch.device(expected)


def test_no_device_on_a_cpu_machine_loads_on_the_cpu_without_a_warning(
    micro_checkpoint, monkeypatch, caplog
):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with caplog.at_level(logging.WARNING):
        lm = _cli(micro_checkpoint)  # no --device: lm-eval 0.4.13 passes None
    assert {p.device.type for p in lm.model.parameters()} == {"cpu"}
    assert lm.device.type == "cpu"
    assert not [r for r in caplog.records if "CUDA" in r.getMessage()]


def test_no_device_on_a_gpu_machine_loads_straight_onto_cuda(micro_checkpoint, monkeypatch):
    """A GPU machine, as far as a CPU machine can tell: the weights are asked for on CUDA
    (device_map, so no full copy in host memory first) in the checkpoint's dtype. The load
    itself then runs on the CPU, the one device here."""
    calls: list[tuple[str, dict]] = []
    real = checkpoint._from_pretrained

    def on_the_cpu(loader, spec, what, **kwargs):
        calls.append((what, copy.deepcopy(kwargs)))  # from_pretrained edits max_memory
        if kwargs.get("device_map") == "cuda":
            kwargs["device_map"] = "cpu"
        return real(loader, spec, what, **kwargs)

    monkeypatch.setattr(checkpoint, "_from_pretrained", on_the_cpu)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    _cli(micro_checkpoint, value_head="none")  # no --device
    asked = dict(calls)["model"]
    assert asked["device_map"] == "cuda"
    assert asked["dtype"] == "auto"


def test_cuda_asked_for_without_cuda_warns_and_uses_the_cpu(micro_checkpoint, monkeypatch, caplog):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with caplog.at_level(logging.WARNING):
        lm = _cli(micro_checkpoint, device="cuda")
    assert lm.device.type == "cpu"
    assert [r for r in caplog.records if "CUDA is not available" in r.getMessage()]


def test_loader_args_reach_from_pretrained(micro_checkpoint, monkeypatch):
    calls = _spy_loads(monkeypatch)
    lm = _cli(
        micro_checkpoint,
        device="cpu",
        revision="main",
        trust_remote_code=True,
        attn_implementation="eager",
        use_fast_tokenizer=True,
    )
    asked = dict(calls)
    assert asked["model"]["revision"] == "main"
    assert asked["model"]["trust_remote_code"] is True
    assert asked["tokenizer"]["revision"] == "main"
    assert asked["tokenizer"]["trust_remote_code"] is True
    assert asked["tokenizer"]["use_fast"] is True
    assert lm.model.config._attn_implementation == "eager"  # the tiny Llama's default is sdpa


@pytest.mark.parametrize(
    ("arg", "value"),
    [
        ("delta", "/some/delta"),
        ("tokenizer", "gpt2"),
        ("subfolder", "sub"),
        ("gguf_file", "model.gguf"),
        ("autogptq", True),
        ("tp_plan", "auto"),
        ("max_memory_per_gpu", "10GiB"),
        ("offload_folder", "/tmp/offload"),
    ],
)
def test_loader_args_that_cannot_apply_are_refused_by_name(micro_checkpoint, arg, value):
    with pytest.raises(ValueError, match=arg):
        _cli(micro_checkpoint, device="cpu", **{arg: value})


def test_parallelize_loads_through_a_device_map(micro_checkpoint, monkeypatch):
    """parallelize=True (HFLM's way to spread a model over GPUs) becomes device_map=auto."""
    calls = _spy_loads(monkeypatch)
    lm = _cli(micro_checkpoint, parallelize=True, max_cpu_memory="2GiB")
    asked = dict(calls)["model"]
    assert asked["device_map"] == "auto"
    assert asked["max_memory"] == {"cpu": "2GiB"}
    assert lm.loaded.value_head is not None
    assert lm.loaded.value_head.linear.weight.device == next(lm.model.parameters()).device
