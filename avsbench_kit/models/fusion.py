"""Audio-visual fusion inside the ELF decoder's transformer layers.

A fusion sub-layer maps the multi-scale pixel tokens ``[B, S, C]`` to updated tokens, given the
level shapes, the generated audio queries ``[B, N_q, C]`` and the raw audio token ``[B, 1, C]``.
AVESFormer's default is cross-attention from the pixels to the generated queries (paper Eq. 7);
the baselines register the alternatives of Table 5.
"""

from __future__ import annotations

from torch import Tensor, nn

from avsbench_kit.nn.blocks import AttentionSubLayer
from avsbench_kit.registry import FUSIONS


class QueryCrossAttention(nn.Module):
    """``LN(P + CA(P, F_gen, F_gen))``: pixels attend to the N_q generated audio queries."""

    def __init__(self, dim: int = 256, heads: int = 8, dropout: float = 0.0):
        super().__init__()
        self.cross_attn = AttentionSubLayer(dim, heads, dropout=dropout)

    def forward(self, pixels: Tensor, shapes: list[tuple[int, int]], queries: Tensor, audio: Tensor) -> Tensor:
        return self.cross_attn(pixels, queries)


@FUSIONS.register("cross_attention")
def query_cross_attention(dim: int) -> nn.Module:
    return QueryCrossAttention(dim)
