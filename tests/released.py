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


def load(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text())
