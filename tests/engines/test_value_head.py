"""ValueHead: tanh(Linear(dropout(h))) in fp32, N(0, 0.02) init, dropout only in train mode."""

from __future__ import annotations

import pytest
import torch

from svpo_harness.engines.value_head import INIT_STD, VALUE_HEAD_FILE, ValueHead, ValueHeadConfig


def test_shape_and_range() -> None:
    head = ValueHead(16).eval()
    with torch.no_grad():
        head.linear.weight.fill_(10.0)  # saturate: tanh must still stay inside [-1, 1]
    out = head(torch.randn(3, 5, 16) * 100)
    assert out.shape == (3, 5)
    assert out.dtype == torch.float32
    assert out.abs().max() <= 1.0
    small = ValueHead(16).eval()(torch.randn(7, 16))
    assert small.shape == (7,) and (small.abs() < 1).all()


def test_init_statistics_and_seeded_init() -> None:
    head = ValueHead(8192)
    weight = head.linear.weight.detach()
    assert weight.shape == (1, 8192)
    assert abs(weight.std().item() - INIT_STD) < 0.002  # 8192 draws: std error ~ 0.00016
    assert abs(weight.mean().item()) < 0.002
    assert head.linear.bias.item() == 0.0
    a = ValueHead(32, generator=torch.Generator().manual_seed(5))
    b = ValueHead(32, generator=torch.Generator().manual_seed(5))
    c = ValueHead(32, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a.linear.weight, b.linear.weight)
    assert not torch.equal(a.linear.weight, c.linear.weight)


def test_dropout_active_only_in_train_mode() -> None:
    head = ValueHead(256, dropout=0.5)
    with torch.no_grad():
        head.linear.weight.fill_(0.01)
    h = torch.randn(4, 256)
    head.eval()
    assert torch.equal(head(h), head(h))
    expected = torch.tanh(h @ head.linear.weight.T + head.linear.bias).squeeze(-1)
    assert torch.allclose(head(h), expected, atol=1e-6)
    head.train()
    torch.manual_seed(0)
    assert not torch.allclose(head(h), expected, atol=1e-4)


def test_bf16_hidden_is_computed_in_fp32() -> None:
    head = ValueHead(32, generator=torch.Generator().manual_seed(0)).eval()
    h = torch.randn(2, 32).to(torch.bfloat16)
    out = head(h)
    assert out.dtype == torch.float32
    assert torch.allclose(out, head(h.float()), atol=0)
    head.to(torch.bfloat16)  # even a cast head computes in fp32
    assert head(h).dtype == torch.float32


def test_hidden_size_mismatch_is_clear() -> None:
    with pytest.raises(ValueError, match="hidden size 8"):
        ValueHead(8)(torch.randn(2, 9))


def test_save_load_round_trip(tmp_path) -> None:
    head = ValueHead(24, dropout=0.2, generator=torch.Generator().manual_seed(3))
    path = head.save(tmp_path)
    assert path == tmp_path / VALUE_HEAD_FILE
    back = ValueHead.load(tmp_path)  # config from the file header
    assert back.config == ValueHeadConfig(24, 0.2)
    assert torch.equal(back.linear.weight, head.linear.weight)
    assert torch.equal(back.linear.bias, head.linear.bias)
    with pytest.raises(ValueError, match="another base model"):
        ValueHead.load(path, expected_hidden_size=32)
    with pytest.raises(FileNotFoundError, match="value-head init"):
        ValueHead.load(tmp_path / "nowhere")


def test_config_validation() -> None:
    assert ValueHeadConfig.from_dict({"hidden_size": 4, "dropout": 0.0}).to_dict() == {
        "hidden_size": 4,
        "dropout": 0.0,
    }
    with pytest.raises(ValueError):
        ValueHeadConfig(4, dropout=1.0)
    with pytest.raises(ValueError, match="unknown"):
        ValueHeadConfig.from_dict({"hidden_size": 4, "size": 3})
