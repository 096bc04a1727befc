"""AVSegFormer's mask head, shared by AVESFormer (without a mixer) and AVSegFormer (with CHA)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avsbench_kit.nn.blocks import conv_norm


class InputProjection(nn.Module):
    """``1x1 conv -> GroupNorm(32)`` from each backbone stage to the embedding width."""

    def __init__(self, channels: tuple[int, ...], dim: int = 256):
        super().__init__()
        self.levels = nn.ModuleList(conv_norm(c, dim) for c in channels)

    def forward(self, feats: list[Tensor]) -> list[Tensor]:
        return [proj(f) for proj, f in zip(self.levels, feats, strict=True)]


class MaskHead(nn.Module):
    """Stride-4 mask feature, N_q query maps, query MLP, optional audio mixer, upsampling classifier.

    mask_feature = out_conv(lateral(stride-4 level) + upsample(decoded stride-8 level)), gated by
    the audio mixer when there is one (AVSegFormer's release gates it here, before the query maps:
    the einsum, the MLP and the residual all use the gated map); the N_q maps
    ``einsum(queries, mask_feature)`` pass a 1x1-conv MLP N_q -> 2048 -> 2048 -> C and are added
    back; the classifier is 3x3 conv C->128, x4 bilinear, 3x3 conv 128->32, ReLU, 1x1 conv -> classes.
    """

    def __init__(self, dim: int = 256, queries: int = 16, classes: int = 1, hidden: int = 2048, mixer: nn.Module | None = None):
        super().__init__()
        self.lateral = conv_norm(dim, dim)
        self.out_conv = conv_norm(dim, dim, kernel=3, relu=True)
        self.query_mlp = nn.Sequential(
            nn.Conv2d(queries, hidden, 1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, dim, 1),
        )
        self.mixer = mixer
        self.classifier = nn.Sequential(
            nn.Conv2d(dim, 128, 3, padding=1),
            nn.Upsample(scale_factor=4, mode="bilinear", align_corners=False),
            nn.Conv2d(128, 32, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(32, classes, 1, bias=False),
        )

    def mask_feature(self, stride4: Tensor, decoded8: Tensor) -> Tensor:
        lateral = self.lateral(stride4)
        up = F.interpolate(decoded8, size=lateral.shape[-2:], mode="bilinear", align_corners=False)
        return self.out_conv(lateral + up)

    def forward(self, stride4: Tensor, decoded8: Tensor, queries: Tensor, audio: Tensor | None = None) -> Tensor:
        feature = self.mask_feature(stride4, decoded8)
        if self.mixer is not None:
            feature = self.mixer(feature, audio)
        maps = torch.einsum("bqc,bchw->bqhw", queries, feature)
        return self.classifier(feature + self.query_mlp(maps))
