"""Small building blocks shared by AVESFormer and the baselines."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from avsbench_kit.nn.attention import MultiHeadAttention
from avsbench_kit.nn.deformable import MultiScaleDeformableAttention


class FeedForward(nn.Module):
    """Post-norm FFN sub-layer: ``LN(x + W2 drop(act(W1 x)))``."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0, activation: type[nn.Module] = nn.GELU):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), activation(), nn.Dropout(dropout), nn.Linear(hidden, dim), nn.Dropout(dropout))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x + self.net(x))


class AttentionSubLayer(nn.Module):
    """Post-norm attention sub-layer: ``LN(x + drop(Attn(x, kv)))`` (self-attention when kv is x)."""

    def __init__(self, dim: int, heads: int, bias: bool = True, dropout: float = 0.0, kind: str = "softmax", out_bias: bool | None = None):
        super().__init__()
        self.attn = MultiHeadAttention(dim, heads, bias=bias, kind=kind, out_bias=out_bias)
        self.drop = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, kv: Tensor | None = None) -> Tensor:
        kv = x if kv is None else kv
        return self.norm(x + self.drop(self.attn(x, kv, kv)))


class DeformableSelfAttention(nn.Module):
    """Post-norm multi-scale deformable self-attention over flattened multi-scale pixels."""

    def __init__(self, dim: int = 256, levels: int = 3, heads: int = 8, points: int = 4, dropout: float = 0.0):
        super().__init__()
        self.attn = MultiScaleDeformableAttention(dim, levels, heads, points)
        self.drop = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, pos: Tensor, reference: Tensor, shapes: list[tuple[int, int]]) -> Tensor:
        return self.norm(x + self.drop(self.attn(x + pos, x, reference, shapes)))


def conv_norm(cin: int, cout: int, kernel: int = 1, bias: bool = True, relu: bool = False) -> nn.Sequential:
    """Conv -> GroupNorm(32) [-> ReLU], the projection block of AVSegFormer's head."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=bias), nn.GroupNorm(32, cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def tokens_to_maps(tokens: Tensor, shapes: list[tuple[int, int]]) -> list[Tensor]:
    """Split ``[B, S, C]`` multi-scale tokens into ``[B, C, h, w]`` maps, one per level."""
    b, _, c = tokens.shape
    parts = tokens.split([h * w for h, w in shapes], dim=1)
    return [p.transpose(1, 2).reshape(b, c, h, w) for p, (h, w) in zip(parts, shapes, strict=True)]


def maps_to_tokens(maps: list[Tensor]) -> tuple[Tensor, list[tuple[int, int]]]:
    """Flatten ``[B, C, h, w]`` maps into ``[B, S, C]`` tokens and their (h, w) shapes."""
    shapes = [(m.shape[-2], m.shape[-1]) for m in maps]
    return torch.cat([m.flatten(2).transpose(1, 2) for m in maps], dim=1), shapes
