"""Sine positional encoding of a feature map (DETR style), as AVSegFormer's pixel encoder uses it."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def sine_position_encoding(
    h: int, w: int, num_feats: int = 128, temperature: float = 10000.0, device=None, dtype=torch.float32, normalise: bool = False
) -> Tensor:
    """``[h*w, 2*num_feats]``: (y features, x features), each sin/cos interleaved, positions 1..h, 1..w.

    Not normalised by default, as AVSegFormer's config sets it: the raw 1-based row/column index is
    encoded. ``normalise`` (DETR's and CATR's ``normalize=True``): index / (size + 1e-6) * 2 pi.
    """
    y = torch.arange(1, h + 1, device=device, dtype=dtype)
    x = torch.arange(1, w + 1, device=device, dtype=dtype)
    if normalise:
        y = y / (h + 1e-6) * (2 * math.pi)
        x = x / (w + 1e-6) * (2 * math.pi)
    dim_t = torch.arange(num_feats, device=device, dtype=dtype)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / num_feats)
    pos_y = y[:, None] / dim_t  # [h, F]
    pos_x = x[:, None] / dim_t  # [w, F]
    pos_y = torch.stack((pos_y[:, 0::2].sin(), pos_y[:, 1::2].cos()), -1).flatten(1)
    pos_x = torch.stack((pos_x[:, 0::2].sin(), pos_x[:, 1::2].cos()), -1).flatten(1)
    grid = torch.cat((pos_y[:, None, :].expand(h, w, num_feats), pos_x[None, :, :].expand(h, w, num_feats)), -1)
    return grid.reshape(h * w, 2 * num_feats)
