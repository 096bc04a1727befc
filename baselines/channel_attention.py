"""AVSegFormer's channel-attention mixer (CHA, "CrossModalMixer"), fixed to run at batch 1.

The audio token attends over all pixels (8 heads, softmax over pixels); the projected result,
through a sigmoid, gates the channels of the visual map. The release squeezes every singleton
dimension of the gate, which drops the batch dimension at B=1 and crashes; here the gate keeps
its ``[B, C]`` shape.
"""

from __future__ import annotations

from torch import Tensor, nn

from avsbench_kit.nn.attention import attend
from avsbench_kit.registry import FUSIONS


class ChannelAttentionMixer(nn.Module):
    def __init__(self, dim: int = 256, heads: int = 8):
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.kv_proj = nn.Linear(dim, 2 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)
        self.site = ""

    def gate(self, tokens: Tensor, audio: Tensor) -> Tensor:
        """Channel gate ``[B, C]`` in (0, 1) from pixels ``[B, N, C]`` and the audio token ``[B, 1, C]``."""
        b, n, c = tokens.shape
        d = c // self.heads
        q = self.q_proj(audio).view(b, 1, self.heads, d).transpose(1, 2)
        k, v = self.kv_proj(tokens).view(b, n, 2, self.heads, d).permute(2, 0, 3, 1, 4)
        out = attend(q, k, v, "softmax", site=self.site, record_as="cha")  # [B, heads, 1, d]
        return self.proj(out.transpose(1, 2).reshape(b, c)).sigmoid()

    def forward(self, x: Tensor, audio: Tensor) -> Tensor:
        """Gate the channels of a map ``[B, C, H, W]`` (AVSegFormer's mask head)."""
        g = self.gate(x.flatten(2).transpose(1, 2), audio)
        return x * g[:, :, None, None]


class ChannelAttentionFusion(nn.Module):
    """CHA as the ELF decoder's fusion: ``LN(P + P * gate(P, a))`` over all levels' pixels."""

    def __init__(self, dim: int = 256):
        super().__init__()
        self.mixer = ChannelAttentionMixer(dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, pixels: Tensor, shapes: list[tuple[int, int]], queries: Tensor, audio: Tensor) -> Tensor:
        return self.norm(pixels + pixels * self.mixer.gate(pixels, audio).unsqueeze(1))


@FUSIONS.register("cha")
def channel_attention_fusion(dim: int) -> nn.Module:
    return ChannelAttentionFusion(dim)
