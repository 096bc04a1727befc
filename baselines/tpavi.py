"""TPAVI (Zhou et al., ECCV 2022, ``mode='dot'``) in its exact factorised form at T=1.

The release computes ``f = theta(x)^T phi(a)`` over all T*H*W positions, divides by N and takes
``y = f g(x)``: an N x N affinity. Because the audio is broadcast over H, W, ``phi(a)`` is the same
vector p at every position, so ``f[i, j] = theta(x_i) . p`` for every j and

    y_i = (theta(x_i) . p) * mean_j g(x_j) = (x_i . W_theta^T p + b_theta . p) * g(mean_j x_j)

(g is affine). That is O(N C) instead of O(N^2 C), with the same result up to float rounding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avsbench_kit.nn.attention import notify, observing
from avsbench_kit.registry import FUSIONS


def l2_normalise(x: Tensor) -> Tensor:
    """``x / sqrt(sum x^2 + 1e-6)`` over the last dimension (ECMVAE's ``torch_L2normalize``)."""
    return x / (x.pow(2).sum(-1, keepdim=True) + 1e-6).sqrt()


class TPAVI(nn.Module):
    """``LN(x + BN(W_z y))`` with the 1x1 convolutions of the release as Linear layers on tokens.

    ECMVAE's variant (``align=False, normalise=True``): no audio projection (its audio is as wide as
    the visual), both inputs L2-normalised per token first, so the residual adds the normalised visual.
    """

    def __init__(self, dim: int = 256, audio_dim: int = 128, inter: int = 128, align: bool = True, normalise: bool = False):
        super().__init__()
        self.normalise = normalise
        self.align_channel = nn.Linear(audio_dim, dim) if align else nn.Identity()
        self.theta = nn.Linear(dim, inter)
        self.phi = nn.Linear(dim, inter)
        self.g = nn.Linear(dim, inter)
        self.W_z = nn.Linear(inter, dim)
        self.bn = nn.BatchNorm1d(dim)
        self.norm = nn.LayerNorm(dim)
        for p in (self.W_z.weight, self.W_z.bias, self.bn.weight, self.bn.bias):
            nn.init.zeros_(p)  # the block starts as LN(x), as released
        self.site = ""

    def affinity_scores(self, tokens: Tensor, audio: Tensor) -> Tensor:
        """``s_i = theta(x_i) . p`` ``[B, N]``: row i of the (rank-one) affinity, before the 1/N."""
        p = self.phi(self.align_channel(audio))  # [B, inter]
        w = p @ self.theta.weight  # [B, C]
        return (tokens @ w.unsqueeze(-1)).squeeze(-1) + (p @ self.theta.bias).unsqueeze(-1)

    def forward(self, tokens: Tensor, audio: Tensor) -> Tensor:
        """tokens ``[B, N, C]``, audio ``[B, audio_dim]`` -> ``[B, N, C]``."""
        if self.normalise:
            tokens, audio = l2_normalise(tokens), l2_normalise(audio)
        scores = self.affinity_scores(tokens, audio)  # [B, N]
        if observing():  # the affinity f[i, j] = s_i / N is the same for every j: one distinct (audio) key
            notify(self.site, "tpavi", (scores / tokens.shape[1])[:, None, :, None])
        g_mean = self.g(tokens.mean(1))  # [B, inter]
        # W_z(y_i) = s_i * (W_z g_mean) + b_z, with y_i = s_i * g_mean
        update = scores.unsqueeze(-1) * F.linear(g_mean, self.W_z.weight).unsqueeze(1) + self.W_z.bias
        update = self.bn(update.transpose(1, 2)).transpose(1, 2)
        return self.norm(tokens + update)

    def forward_map(self, x: Tensor, audio: Tensor) -> Tensor:
        b, c, h, w = x.shape
        out = self(x.flatten(2).transpose(1, 2), audio)
        return out.transpose(1, 2).reshape(b, c, h, w)


class TPAVIFusion(nn.Module):
    """TPAVI as the ELF decoder's fusion: applied to each level with the raw audio token."""

    def __init__(self, dim: int = 256):
        super().__init__()
        self.tpavi = TPAVI(dim, audio_dim=dim)

    def forward(self, pixels: Tensor, shapes: list[tuple[int, int]], queries: Tensor, audio: Tensor) -> Tensor:
        parts = pixels.split([h * w for h, w in shapes], dim=1)
        return torch.cat([self.tpavi(part, audio[:, 0]) for part in parts], dim=1)


@FUSIONS.register("tpavi")
def tpavi_fusion(dim: int) -> nn.Module:
    return TPAVIFusion(dim)
