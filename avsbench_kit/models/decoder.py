"""The early-focus (ELF) decoder of AVESFormer (paper section 4.2).

Three stages of two layers over the flattened multi-scale pixels (strides 8, 16, 32). A stage is
either C (convolution: local patterns, where early attention only produces narrow local
responses) or T (transformer: deformable self-attention, then audio fusion, then an FFN). The
default pattern is CTT: the first two attention blocks replaced by convolution blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from avsbench_kit.nn.blocks import DeformableSelfAttention, FeedForward, maps_to_tokens, tokens_to_maps
from avsbench_kit.nn.deformable import reference_points
from avsbench_kit.nn.position import sine_position_encoding
from avsbench_kit.registry import FUSIONS


@dataclass
class DecoderContext:
    """What every layer may read besides the pixel tokens."""

    shapes: list[tuple[int, int]]
    queries: Tensor  # generated audio queries [B, N_q, C]
    audio: Tensor  # raw audio token [B, 1, C]
    pos: Tensor | None = None  # positions + level embedding [1, S, C] (T layers only)
    reference: Tensor | None = None  # deformable reference points [1, S, 1, 2] (T layers only)


class ConvolutionLayer(nn.Module):
    """C layer: ``LN(x + SepConv(x))`` on each level's map (paper Eq. 6), then ``LN(x + FFN(x))``.

    The token mixer is MetaFormer's ConvFormer "SepConv" (Yu et al., 2024): pointwise expansion
    x2, GELU, depthwise 7x7, pointwise projection. Post-norm, like the T layers it replaces.
    """

    def __init__(self, dim: int = 256, expansion: int = 2, kernel: int = 7, ffn_hidden: int = 2048, dropout: float = 0.1):
        super().__init__()
        hidden = dim * expansion
        self.mixer = nn.Sequential(
            nn.Conv2d(dim, hidden, 1), nn.GELU(),
            nn.Conv2d(hidden, hidden, kernel, padding=kernel // 2, groups=hidden),
            nn.Conv2d(hidden, dim, 1),
        )
        self.norm = nn.LayerNorm(dim)
        self.ffn = FeedForward(dim, ffn_hidden, dropout)

    def forward(self, tokens: Tensor, ctx: DecoderContext) -> Tensor:
        mixed, _ = maps_to_tokens([self.mixer(m) for m in tokens_to_maps(tokens, ctx.shapes)])
        return self.ffn(self.norm(tokens + mixed))


class TransformerLayer(nn.Module):
    """T layer: deformable self-attention, audio fusion (Eq. 7 by default), FFN; each post-norm."""

    def __init__(self, dim: int = 256, fusion: str = "cross_attention", levels: int = 3, ffn_hidden: int = 2048, dropout: float = 0.1):
        super().__init__()
        self.self_attn = DeformableSelfAttention(dim, levels, heads=8, points=4, dropout=dropout)
        self.fusion = FUSIONS.get(fusion)(dim)
        self.ffn = FeedForward(dim, ffn_hidden, dropout)

    def forward(self, tokens: Tensor, ctx: DecoderContext) -> Tensor:
        tokens = self.self_attn(tokens, ctx.pos, ctx.reference, ctx.shapes)
        tokens = self.fusion(tokens, ctx.shapes, ctx.queries, ctx.audio)
        return self.ffn(tokens)


class DecoderStage(nn.Module):
    def __init__(self, kind: str, layers: int, dim: int, fusion: str, levels: int):
        super().__init__()
        self.kind = kind
        make = (lambda: ConvolutionLayer(dim)) if kind == "C" else (lambda: TransformerLayer(dim, fusion, levels))
        self.layers = nn.ModuleList(make() for _ in range(layers))

    def forward(self, tokens: Tensor, ctx: DecoderContext) -> Tensor:
        for layer in self.layers:
            tokens = layer(tokens, ctx)
        return tokens


class ElfDecoder(nn.Module):
    def __init__(self, stages: str = "CTT", layers_per_stage: int = 2, dim: int = 256, fusion: str = "cross_attention", levels: int = 3):
        super().__init__()
        self.pattern = stages
        self.level_embed = nn.Parameter(torch.empty(levels, dim).normal_())
        self.stages = nn.ModuleList(DecoderStage(kind, layers_per_stage, dim, fusion, levels) for kind in stages)

    def forward(self, maps: list[Tensor], queries: Tensor, audio: Tensor) -> list[Tensor]:
        tokens, shapes = maps_to_tokens(maps)
        ctx = DecoderContext(shapes, queries, audio)
        if "T" in self.pattern:  # positions only feed deformable attention
            ctx.pos = level_positions(shapes, self.level_embed)
            ctx.reference = reference_points(shapes, tokens.device, tokens.dtype)
        for stage in self.stages:
            tokens = stage(tokens, ctx)
        return tokens_to_maps(tokens, shapes)


def level_positions(shapes: list[tuple[int, int]], level_embed: Tensor) -> Tensor:
    """Sine positions of every token plus its level's learned embedding, ``[1, S, C]``."""
    dim = level_embed.shape[1]
    parts = [
        sine_position_encoding(h, w, dim // 2, device=level_embed.device, dtype=level_embed.dtype) + level_embed[i]
        for i, (h, w) in enumerate(shapes)
    ]
    return torch.cat(parts, 0)[None]
