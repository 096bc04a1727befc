"""Multi-scale deformable attention (Zhu et al., Deformable DETR) in pure PyTorch.

The sampling is ``F.grid_sample`` per level (bilinear, zero padding, ``align_corners=False``),
which is what the compiled CUDA kernel of the reference implementation computes; it runs on any
device and under ``torch.compile``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avsbench_kit.nn.attention import notify, observing, own_weights


def deformable_sample(value: Tensor, shapes: list[tuple[int, int]], locations: Tensor, weights: Tensor) -> Tensor:
    """Weighted bilinear samples of multi-scale ``value``.

    value: ``[B, S, heads, d]`` with S = sum(h*w) tokens in level order;
    locations: ``[B, Lq, heads, levels, points, 2]`` as (x, y) in [0, 1] of each level;
    weights: ``[B, Lq, heads, levels, points]``. Returns ``[B, Lq, heads*d]``.
    """
    b, _, heads, d = value.shape
    _, lq, _, levels, points, _ = locations.shape
    per_level = value.split([h * w for h, w in shapes], dim=1)
    grids = 2 * locations - 1
    samples = []
    for level, (h, w) in enumerate(shapes):
        v = per_level[level].flatten(2).transpose(1, 2).reshape(b * heads, d, h, w)
        g = grids[:, :, :, level].transpose(1, 2).flatten(0, 1)  # [B*heads, Lq, points, 2]
        samples.append(F.grid_sample(v, g, mode="bilinear", padding_mode="zeros", align_corners=False))
    # weighted sum over the levels*points samples, as a batched matmul (counted as MACs by FLOP
    # counters): [B*heads, Lq, d, L*P] @ [B*heads, Lq, L*P, 1]
    stacked = torch.stack(samples, dim=-2).flatten(-2).permute(0, 2, 1, 3)
    w = weights.transpose(1, 2).reshape(b * heads, lq, levels * points, 1)
    out = torch.matmul(stacked, w).view(b, heads, lq, d)
    return out.permute(0, 2, 1, 3).reshape(b, lq, heads * d)


def reference_points(shapes: list[tuple[int, int]], device: torch.device, dtype: torch.dtype) -> Tensor:
    """Pixel-centre reference points ``[1, S, 1, 2]`` (x, y in [0, 1]) for every level's tokens."""
    points = []
    for h, w in shapes:
        ys, xs = torch.meshgrid(
            (torch.arange(h, device=device, dtype=dtype) + 0.5) / h,
            (torch.arange(w, device=device, dtype=dtype) + 0.5) / w,
            indexing="ij",
        )
        points.append(torch.stack((xs.reshape(-1), ys.reshape(-1)), -1))
    return torch.cat(points, 0)[None, :, None, :]


class MultiScaleDeformableAttention(nn.Module):
    """Each query attends to ``points`` sampled locations per head and level around its reference."""

    def __init__(self, dim: int = 256, levels: int = 3, heads: int = 8, points: int = 4):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.levels, self.heads, self.points = levels, heads, points
        self.sampling_offsets = nn.Linear(dim, heads * levels * points * 2)
        self.attention_weights = nn.Linear(dim, heads * levels * points)
        self.value_proj = nn.Linear(dim, dim)
        self.output_proj = nn.Linear(dim, dim)
        self.site = ""
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        # Deformable DETR's start: offsets point outwards in `heads` directions, one step further
        # per point; uniform attention weights.
        nn.init.zeros_(self.sampling_offsets.weight)
        angles = torch.arange(self.heads, dtype=torch.float32) * (2.0 * math.pi / self.heads)
        directions = torch.stack([angles.cos(), angles.sin()], -1)
        directions = directions / directions.abs().max(-1, keepdim=True)[0]
        grid = directions.view(self.heads, 1, 1, 2).repeat(1, self.levels, self.points, 1)
        grid = grid * torch.arange(1, self.points + 1, dtype=torch.float32).view(1, 1, -1, 1)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.reshape(-1))
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        for proj in (self.value_proj, self.output_proj):
            nn.init.xavier_uniform_(proj.weight)
            nn.init.zeros_(proj.bias)

    def forward(self, query: Tensor, value: Tensor, reference: Tensor, shapes: list[tuple[int, int]]) -> Tensor:
        """query ``[B, Lq, C]``, value ``[B, S, C]``, reference ``[B or 1, Lq, 1 or levels, 2]``."""
        b, lq, _ = query.shape
        v = self.value_proj(value).view(b, value.shape[1], self.heads, -1)
        offsets = self.sampling_offsets(query).view(b, lq, self.heads, self.levels, self.points, 2)
        weights = self.attention_weights(query).view(b, lq, self.heads, self.levels * self.points)
        with own_weights():  # reported below as "deformable", not again as a softmax-op
            weights = weights.softmax(-1)
        if observing():  # a distribution over levels x points sampled locations, per query and head
            notify(self.site, "deformable", weights.transpose(1, 2))
        weights = weights.view(b, lq, self.heads, self.levels, self.points)
        # offsets are in pixels of each level: normalise by that level's (w, h)
        normaliser = torch.tensor([[w, h] for h, w in shapes], device=query.device, dtype=query.dtype)
        locations = reference[:, :, None, :, None, :] + offsets / normaliser[None, None, None, :, None, :]
        return self.output_proj(deformable_sample(v, shapes, locations, weights))
