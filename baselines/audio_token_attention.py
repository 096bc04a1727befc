"""Fusions that attend from the pixels to the single raw audio token.

``dissipation``: softmax cross-attention to one key. Every probability is exactly 1, so the
output is the (projected) audio value at every pixel, whatever the pixel: attention dissipation
(paper section 3.2, Eq. 4). Kept as the failure case of Table 5.

``sigmoid``: CAVP's sigmoid cross-attention (Chen et al., CVPR 2024): ``sigmoid(q k^T / sqrt(d))``
does not normalise over keys, so one key still gives each pixel its own gate in (0, 1).
4 heads, no q/k/v bias, a biased output projection.
"""

from __future__ import annotations

from torch import Tensor, nn

from avsbench_kit.nn.blocks import AttentionSubLayer
from avsbench_kit.registry import FUSIONS


class AudioTokenAttention(nn.Module):
    """``LN(P + Attn(P, a, a))`` with the raw audio token ``a`` as the only key and value."""

    def __init__(self, dim: int = 256, heads: int = 8, kind: str = "softmax", bias: bool = True):
        super().__init__()
        self.cross_attn = AttentionSubLayer(dim, heads, bias=bias, kind=kind, out_bias=True)

    def forward(self, pixels: Tensor, shapes: list[tuple[int, int]], queries: Tensor, audio: Tensor) -> Tensor:
        return self.cross_attn(pixels, audio)


@FUSIONS.register("dissipation")
def raw_cross_attention(dim: int) -> nn.Module:
    return AudioTokenAttention(dim, heads=8, kind="softmax")


@FUSIONS.register("sigmoid")
def sigmoid_cross_attention(dim: int) -> nn.Module:
    return AudioTokenAttention(dim, heads=4, kind="sigmoid", bias=False)
