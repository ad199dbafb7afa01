"""The explicit value head: ``V(s) = tanh(Linear(dropout(h)))`` on the LM's last hidden state.

method.md section 5: one network, causal LM + this head; output in (-1, 1); the head runs in fp32
whatever the policy's dtype (a bf16 policy's hidden state is cast up before the linear layer);
weights initialised N(0, 0.02) and bias 0, so an untrained head gives small, uninformative values
(std about 0.02 * |h|: within +-0.6 on the demo model, whose final-norm states have |h| ~ 11).
Dropout is a setting (default 0.1) and is active only in train mode; inference
and the policy/reference log-prob forwards run it in eval mode.

It is deliberately a tiny standalone module saved as its own ``value_head.safetensors`` next to the
policy (full weights or a LoRA adapter), not a wrapper class around the LM (style-examples.md
section 8). Its config (hidden size, dropout) lives in the checkpoint's ``svpo.json`` under
``"value_head"``; the safetensors header carries a copy, so a bare file loads too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

VALUE_HEAD_FILE = "value_head.safetensors"
INIT_STD = 0.02  # method.md section 5: weight ~ N(0, 0.02), bias 0
DEFAULT_DROPOUT = 0.1  # method.md section 5 (AlphaMath's value head)


@dataclass(frozen=True)
class ValueHeadConfig:
    """What it takes to rebuild a head: recorded in svpo.json as ``"value_head"``."""

    hidden_size: int
    dropout: float = DEFAULT_DROPOUT

    def __post_init__(self) -> None:
        if self.hidden_size < 1:
            raise ValueError(f"value head hidden_size must be >= 1, got {self.hidden_size}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"value head dropout must lie in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValueHeadConfig:
        unknown = set(data) - {"hidden_size", "dropout"}
        if unknown:
            raise ValueError(f"unknown value head fields: {sorted(unknown)}")
        return cls(
            hidden_size=int(data["hidden_size"]),
            dropout=float(data.get("dropout", DEFAULT_DROPOUT)),
        )


class ValueHead(nn.Module):
    """``tanh(Linear(dropout(h)))`` in fp32: ``[..., hidden]`` -> ``[...]`` in (-1, 1)."""

    def __init__(
        self,
        hidden_size: int,
        dropout: float = DEFAULT_DROPOUT,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.config = ValueHeadConfig(hidden_size=hidden_size, dropout=dropout)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(hidden_size, 1, dtype=torch.float32)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """N(0, 0.02) weight and zero bias; ``generator`` makes the init reproducible."""
        with torch.no_grad():
            weight = torch.randn(self.linear.weight.shape, generator=generator, dtype=torch.float32)
            self.linear.weight.copy_(weight * INIT_STD)
            self.linear.bias.zero_()

    @property
    def hidden_size(self) -> int:
        return self.config.hidden_size

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        if hidden.shape[-1] != self.hidden_size:
            raise ValueError(
                f"value head expects hidden size {self.hidden_size}, got {hidden.shape[-1]}"
            )
        weight = self.linear.weight
        # fp32 whatever the policy dtype; `.float()` is a no-op unless someone cast the head.
        x = self.dropout(hidden.to(device=weight.device, dtype=torch.float32))
        out = F.linear(x, weight.float(), self.linear.bias.float())
        return torch.tanh(out).squeeze(-1)

    # -- persistence ---------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Write ``folder/value_head.safetensors`` (config copied into the header metadata)."""
        from safetensors.torch import save_file

        path = Path(folder) / VALUE_HEAD_FILE
        tensors = {
            k: v.detach().to("cpu", torch.float32).contiguous()
            for k, v in self.state_dict().items()
        }
        meta = {k: str(v) for k, v in self.config.to_dict().items()}
        save_file(tensors, str(path), metadata=meta)
        return path

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        config: ValueHeadConfig | None = None,
        expected_hidden_size: int | None = None,
        device: str | torch.device = "cpu",
    ) -> ValueHead:
        """Load a head from a checkpoint folder or a ``.safetensors`` file.

        ``config`` (from svpo.json) wins; else the file's header metadata; else the weight's
        shape with the default dropout. ``expected_hidden_size`` is the policy's hidden size:
        a mismatch is a clear error instead of a shape error deep in a forward.
        """
        from safetensors import safe_open
        from safetensors.torch import load_file

        file = Path(path)
        if file.is_dir():
            file = file / VALUE_HEAD_FILE
        if not file.is_file():
            raise FileNotFoundError(
                f"no value head at {file}; create one with `svpo value-head init` or pass "
                "value_head='none'"
            )
        tensors = load_file(str(file))
        if set(tensors) != {"linear.weight", "linear.bias"}:
            raise ValueError(f"{file} is not a value head file (tensors: {sorted(tensors)})")
        if config is None:
            with safe_open(str(file), framework="pt") as handle:
                header = handle.metadata() or {}
            hidden = int(header.get("hidden_size", tensors["linear.weight"].shape[-1]))
            config = ValueHeadConfig(hidden, float(header.get("dropout", DEFAULT_DROPOUT)))
        if tuple(tensors["linear.weight"].shape) != (1, config.hidden_size):
            raise ValueError(
                f"{file}: weight shape {tuple(tensors['linear.weight'].shape)} does not match "
                f"the recorded hidden size {config.hidden_size}"
            )
        if expected_hidden_size is not None and config.hidden_size != expected_hidden_size:
            raise ValueError(
                f"value head {file} has hidden size {config.hidden_size} but the model has "
                f"{expected_hidden_size}; it belongs to another base model (create a new head "
                "with `svpo value-head init`)"
            )
        head = cls(config.hidden_size, config.dropout)
        head.load_state_dict(tensors)
        return head.to(device)
