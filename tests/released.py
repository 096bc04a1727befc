"""The rule that makes weights and inputs for comparisons with the released code.

Every tensor is regenerated from its name and shape alone, so the stored test data needs only the
key names, shapes and the released code's outputs (never its code or its weights):
``value[i] = scale * sin(0.37 * i + 0.11 * c)`` with ``c`` the sum of the name's character codes;
a 1-D ``*.weight`` (a normalisation's gain) is ``1 + 10 * scale * sin(...)``, so that signals keep
their size through the layers and a wrong map shows in the outputs. The same function made the
weights in the scratch run of the released code and makes them here.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

DATA = Path(__file__).resolve().parent / "data" / "released"


def rule_tensor(name: str, shape, scale: float = 0.05) -> torch.Tensor:
    count = math.prod(shape)
    offset = 0.11 * sum(map(ord, name))
    return (scale * torch.sin(0.37 * torch.arange(count, dtype=torch.float64) + offset)).float().reshape(shape)


def rule_state(shapes: dict[str, list[int]]) -> dict[str, torch.Tensor]:
    state = {}
    for name, shape in shapes.items():
        gain = len(shape) == 1 and name.endswith(".weight")
        state[name] = 1 + 10 * rule_tensor(name, shape) if gain else rule_tensor(name, shape)
    return state


def noise_tensor(name: str, shape, std: float) -> torch.Tensor:
    """Deterministic noise of standard deviation ``std``: ``frac(sin(12.9898 i + c) * 43758.5453)``
    mapped to a uniform on [-sqrt(3) std, sqrt(3) std] (the classic shader hash), with ``c`` as above."""
    count = math.prod(shape)
    offset = 0.11 * sum(map(ord, name))
    out = torch.empty(count, dtype=torch.float32)
    chunk = torch.empty(1 << 16, dtype=torch.float64)  # in place, a cache-sized piece at a time: the same
    for start in range(0, count, len(chunk)):          # operations in the same order, four times faster
        x = torch.arange(start, min(start + len(chunk), count), dtype=torch.float64, out=chunk[: min(len(chunk), count - start)])
        x.mul_(12.9898).add_(offset).sin_().abs_().mul_(43758.5453).frac_()  # u
        out[start : start + len(x)] = x.mul_(2).sub_(1).mul_(std * math.sqrt(3.0))
    return out.reshape(shape)


def model_state(shapes: dict[str, list[int]]) -> dict[str, torch.Tensor]:
    """The rule for whole models, deep enough that smooth sine weights would shrink or blow up signals.

    A tensor of rank >= 2 is He-scaled noise (``noise_tensor`` with std ``sqrt(2 / fan_in)``, fan_in =
    product of all but the first dimension), so a layer followed by a ReLU keeps its signal's size;
    normalisation gains (1-D ``*.weight``) and BatchNorm ``running_var`` are ``1 + 0.1 * sin(...)``;
    other 1-D tensors (biases, running means) ``0.05 * sin(...)``; ``num_batches_tracked`` is 0.
    """
    state = {}
    for name, shape in shapes.items():
        if name.endswith("num_batches_tracked"):
            state[name] = torch.zeros(shape, dtype=torch.long)
        elif len(shape) >= 2:
            state[name] = noise_tensor(name, shape, std=math.sqrt(2.0 / math.prod(shape[1:])))
        elif name.endswith((".weight", "running_var")):
            state[name] = 1 + rule_tensor(name, shape, scale=0.1)
        else:
            state[name] = rule_tensor(name, shape)
    return state


def check_release_logits(name: str, data: dict, out64: torch.Tensor, out32: torch.Tensor) -> None:
    """The bars every whole-model comparison uses: every ``step``-th logit within 1e-4 of the release's in
    float64, and in float32 within 5x the release's own float32 rounding. That rounding depends on the
    CPU's kernels (AVX2 and AVX-512 sum in different orders): CATR's 2048-wide run read 0.018 on CI's
    machine against the release's 0.0064 here; a wrong weight or layer moves logits by their std."""
    expected = torch.tensor(data["output"], dtype=torch.float64)
    step = data["step"]
    diff64 = (out64.flatten()[::step] - expected).abs().max().item()
    diff32 = (out32.double().flatten()[::step] - expected).abs().max().item()
    own32 = data["release_float32_max_abs_diff"]
    print(f"{name}: max abs diff float64 {diff64:.2g}, float32 {diff32:.2g} (the release's own float32: {own32:.2g}), "
          f"logit std {expected.std():.3g}")
    assert diff64 <= 1e-4
    assert diff32 <= max(5 * own32, 1e-4)


def load(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text())
