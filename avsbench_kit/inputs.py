"""What a model is measured on: its own example inputs, or a synthetic image and log-mel."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def synthetic_inputs(batch: int = 1, size: int = 224, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A random normalised image ``[B, 3, size, size]`` and log-mel-like audio ``[B, 1, 96, 64]``."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, size, size, generator=gen), torch.randn(batch, 1, 96, 64, generator=gen)


def default_inputs(batch: int, size: int) -> tuple[Tensor, Tensor]:
    return synthetic_inputs(batch, size)


def model_inputs(model: nn.Module, batch: int = 1, size: int = 224) -> tuple:
    """The positional inputs a model is measured on: its own ``example_inputs`` or image and log-mel."""
    make = getattr(model, "example_inputs", None)
    return tuple(make(batch, size)) if callable(make) else default_inputs(batch, size)


def as_input_device(inputs: tuple, device: torch.device) -> tuple:
    return tuple(t.to(device) if isinstance(t, Tensor) else t for t in inputs)
