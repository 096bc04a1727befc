"""AVSBench's TPAVI model (Zhou et al., ECCV 2022), ResNet-50, at T=1.

Backbone stages -> sum of four dilated 3x3 convolutions to 256 channels -> TPAVI at all four
stages -> DPT-style FPN decoder from stride 32 to 4 -> output convolutions to full resolution.
Unlike the release (hard-coded T=5, ``.cuda()`` in forward) it runs any batch on any device; the
unused RCU of the first fusion block and the second backbone branch are left out.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from avsbench_kit.models.backbones import build_backbone
from avsbench_kit.models.base import AudioPath, AVSModel
from avsbench_kit.models.vggish import VGGish
from avsbench_kit.registry import FAMILIES
from avskit.baselines.tpavi import TPAVI

DIM = 256


class DilatedConvSum(nn.Module):
    """AVSBench's "Classifier_Module": the sum of 3x3 convolutions with dilations 3, 6, 12, 18."""

    def __init__(self, cin: int, cout: int = DIM, dilations: tuple[int, ...] = (3, 6, 12, 18)):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(cin, cout, 3, padding=d, dilation=d) for d in dilations)

    def forward(self, x: Tensor) -> Tensor:
        out = self.convs[0](x)
        for conv in self.convs[1:]:
            out = out + conv(x)
        return out


class ResidualConvUnit(nn.Module):
    def __init__(self, dim: int = DIM):
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim, 3, padding=1)
        self.conv2 = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        # the release's first ReLU is in place, so its skip connection adds relu(x), not x
        x = F.relu(x)
        return x + self.conv2(F.relu(self.conv1(x)))


class FeatureFusionBlock(nn.Module):
    """``out = path (+ RCU1(lateral))``, ``RCU2(out)``, x2 bilinear (align_corners=True)."""

    def __init__(self, dim: int = DIM, lateral: bool = True):
        super().__init__()
        self.lateral_unit = ResidualConvUnit(dim) if lateral else None
        self.out_unit = ResidualConvUnit(dim)

    def forward(self, path: Tensor, lateral: Tensor | None = None) -> Tensor:
        if self.lateral_unit is not None and lateral is not None:
            path = path + self.lateral_unit(lateral)
        out = self.out_unit(path)
        return F.interpolate(out, scale_factor=2, mode="bilinear", align_corners=True)


class FpnDecoder(nn.Module):
    def __init__(self, dim: int = DIM):
        super().__init__()
        self.path4 = FeatureFusionBlock(dim, lateral=False)
        self.path3 = FeatureFusionBlock(dim)
        self.path2 = FeatureFusionBlock(dim)
        self.path1 = FeatureFusionBlock(dim)

    def forward(self, maps: list[Tensor]) -> Tensor:
        x = self.path4(maps[3])
        x = self.path3(x, maps[2])
        x = self.path2(x, maps[1])
        return self.path1(x, maps[0])  # stride 2


class AVSBenchModel(AVSModel):
    parts = ("audio_backbone", "visual_backbone", "stage_convs", "tpavi", "decoder", "output_head")
    breakdown_groups = {"fusion (TPAVI)": ("tpavi.*",)}
    audio_visual_sites = (("tpavi.*", "pixels-audio"),)  # each stage's pixels against the audio
    audio_paths = tuple(AudioPath(f"audio -> TPAVI stage {i + 1}", f"tpavi.{i}", 1) for i in range(4))

    def __init__(self, backbone: str = "resnet50", classes: int = 1, backbone_weights: str | None = None, vggish_weights: str | None = None):
        super().__init__()
        self.audio_backbone = VGGish(vggish_weights)
        self.visual_backbone = build_backbone(backbone, backbone_weights)
        self.stage_convs = nn.ModuleList(DilatedConvSum(c) for c in self.visual_backbone.channels)
        self.tpavi = nn.ModuleList(TPAVI(DIM, audio_dim=128) for _ in range(4))
        self.decoder = FpnDecoder(DIM)
        self.output_head = nn.Sequential(
            nn.Conv2d(DIM, 128, 3, padding=1),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(128, 32, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(32, classes, 1),
        )

    def segment(self, image: Tensor, audio: Tensor) -> Tensor:
        embedding = self.audio_backbone(audio)  # [B, 128]
        feats = self.visual_backbone(image)
        maps = [tpavi.forward_map(conv(f), embedding) for conv, tpavi, f in zip(self.stage_convs, self.tpavi, feats, strict=True)]
        return self.output_head(self.decoder(maps))


@FAMILIES.register("avsbench")
def build_avsbench(spec) -> AVSModel:
    return AVSBenchModel(spec.backbone, spec.classes, spec.backbone_weights, spec.vggish_weights)
