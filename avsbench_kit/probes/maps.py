"""An attention call's weights as spatial maps, one per query (or audio token): the one place that
knows how a site's rows and keys lay out over the pixels. Probes read the maps detached; training
with a supervised site (the localisation's positive control) keeps them in the graph."""

from __future__ import annotations

import math

import torch

NO_SPATIAL_MAP = "no spatial map"
# orientation of a declared site's weights: "pixels-audio" (rows are the pixels, keys the audio tokens
# or queries: one map per key) or "audio-pixels" (rows are audio queries, keys the pixels: one map per row)
ORIENTATIONS = ("pixels-audio", "audio-pixels")


def finest_side(n: int) -> int | None:
    """The side of the finest square level in ``n`` pixel tokens: one level (n = a^2) or a pyramid of
    three (a^2 + (a/2)^2 + (a/4)^2, the ELF decoder's multi-scale tokens, finest first)."""
    side = math.isqrt(n)
    if side * side == n:
        return side
    side = math.isqrt(n * 16 // 21)
    for a in (side - 1, side, side + 1):
        if a > 0 and a % 4 == 0 and a * a + (a // 2) ** 2 + (a // 4) ** 2 == n:
            return a
    return None


def query_maps(weights: torch.Tensor, orientation: str) -> torch.Tensor | str:
    """``weights [..., heads, rows, keys]`` -> maps ``[..., queries, side, side]`` (each head's map
    normalised by its absolute sum over the pixels, then the heads averaged), or why there are none."""
    if orientation == "pixels-audio":
        side = finest_side(weights.shape[-2])
        if side is None:
            return NO_SPATIAL_MAP
        pixels = weights[..., : side * side, :]
        columns = pixels / pixels.abs().sum(-2, keepdim=True).clamp_min(1e-12)
        return columns.mean(-3).transpose(-1, -2).unflatten(-1, (side, side))
    side = finest_side(weights.shape[-1])
    if side is None:
        return NO_SPATIAL_MAP
    pixels = weights[..., : side * side]
    rows = pixels / pixels.abs().sum(-1, keepdim=True).clamp_min(1e-12)
    return rows.mean(-3).unflatten(-1, (side, side))
