"""ECMVAE (Mao et al., ICCV 2023), the released test-time model at T=1 (OpenNLPLab/MMVAE-AVS ``AVSMMVAE``).

Backbone (PVT-v2-b5 or ResNet-50) -> a "basic" neck to 128 channels at each stage -> the prior
branch of the multimodal VAE: three latent encoders (image-specific from the RGB frame,
audio-specific from the VGGish embedding, audio-visual common from both), combined into two codes
that are tiled and fused into the 1/32 neck map by a 1x1 convolution -> ECMVAE's own TPAVI at all four
stages -> a nearest-upsampling FPN decoder -> [B, 1, H, W] logits. VGGish is kept apart by the
release (a separate ``audio_extractor``); here it is the model's ``audio_backbone`` and its weights
come from ``vggish_weights``.

What the release computes, kept: each latent is ``mu + eps * exp(logvar / 2)``. The release draws
eps at test time (``latent=sample``, in the same order: image, audio, audio-visual); the default
``latent=mean`` sets eps to zero, the deterministic form a latency or attention measurement wants,
with the same operations. The posterior neck (``neck_post``) is computed at test time and its result
discarded; it runs here too (its time is part of the release's), and the parameter count says it is
not live. Left out: the training-only posterior branch and what never runs (``audio_neck``, the first
decoder block's lateral unit). The VAE encoders' fully connected layers are built for 224x224 frames
(7x7 at stride 32), as released, so the model takes 224x224 input only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avsbench_kit.errors import UserError
from avsbench_kit.models.backbones import build_backbone
from avsbench_kit.models.base import AudioPath, AVSModel
from avsbench_kit.models.vggish import VGGish
from avsbench_kit.registry import FAMILIES
from avskit.baselines.tpavi import TPAVI

NECK = 128  # cfg.MODEL.NECK_CHANNEL
LATENT = 16  # cfg.MODEL.VAE_LATENT_SIZE
FRAME = 224  # cfg.DATA.IMG_SIZE: the VAE encoders flatten a 7x7 map


class ConvBN(nn.Module):
    """The release's ``BasicConv2d``: a bias-free convolution, BatchNorm, an optional ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, relu: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False)
        self.norm = nn.BatchNorm2d(cout)
        self.relu = relu

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm(self.conv(x))
        return F.relu(x) if self.relu else x


def basic_neck(channels: tuple[int, ...]) -> nn.ModuleList:
    """One ``DimReduce`` per stage: 1x1, 3x3, 3x3 convolutions with BatchNorm, no activation."""
    return nn.ModuleList(nn.Sequential(ConvBN(c, NECK, 1), ConvBN(NECK, NECK, 3), ConvBN(NECK, NECK, 3)) for c in channels)


class ResidualBlock(nn.Module):
    """``x + ReLU(BN(conv(ReLU(BN(conv(x))))))``."""

    def __init__(self, dim: int = NECK):
        super().__init__()
        self.first = ConvBN(dim, dim, 3, relu=True)
        self.second = ConvBN(dim, dim, 3, relu=True)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.second(self.first(x))


class FusionBlock(nn.Module):
    """``up2(out_unit(path + lateral_unit(skip)))`` with nearest upsampling; the first block has no skip."""

    def __init__(self, dim: int = NECK, lateral: bool = True):
        super().__init__()
        self.lateral_unit = ResidualBlock(dim) if lateral else None
        self.out_unit = ResidualBlock(dim)

    def forward(self, path: Tensor, skip: Tensor | None = None) -> Tensor:
        if self.lateral_unit is not None and skip is not None:
            path = path + self.lateral_unit(skip)
        return F.interpolate(self.out_unit(path), scale_factor=2, mode="nearest")


class Decoder(nn.Module):
    """``simple_decoder_no_modulelist``: four fusion blocks from stride 32 to 2, then the head to full size."""

    def __init__(self, dim: int = NECK):
        super().__init__()
        self.blocks = nn.ModuleList([FusionBlock(dim, lateral=False)] + [FusionBlock(dim) for _ in range(3)])
        self.head = nn.Sequential(nn.Conv2d(dim, dim // 2, 3, padding=1), nn.Upsample(scale_factor=2, mode="nearest"),
                                  nn.Conv2d(dim // 2, dim // 4, 3, padding=1), nn.ReLU(), nn.Conv2d(dim // 4, 1, 1))

    def forward(self, maps: list[Tensor]) -> Tensor:
        x = self.blocks[0](maps[3])
        for block, skip in zip(self.blocks[1:], maps[2::-1], strict=True):
            x = block(x, skip)
        return self.head(x)


class ImageEncoder(nn.Module):
    """Five stride-2 4x4 convolutions with BatchNorm and LeakyReLU on the RGB frame, flattened (C, H, W)."""

    def __init__(self, widths: tuple[int, ...]):
        super().__init__()
        cins = (3,) + widths[:-1]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 4, stride=2, padding=1) for a, b in zip(cins, widths, strict=True))
        self.norms = nn.ModuleList(nn.BatchNorm2d(b) for b in widths)
        self.flat = widths[-1] * (FRAME // 32) ** 2

    def forward(self, image: Tensor) -> Tensor:
        x = image
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = F.leaky_relu(norm(conv(x)), 0.01)
        return x.flatten(1)


class Gaussian(nn.Module):
    """``fc1`` (mean) and ``fc2`` (log-variance) heads, then ``mu + eps * exp(logvar / 2)``."""

    def __init__(self, cin: int):
        super().__init__()
        self.fc1 = nn.Linear(cin, LATENT)
        self.fc2 = nn.Linear(cin, LATENT)

    def forward(self, x: Tensor, sample: bool) -> Tensor:
        mu, logvar = self.fc1(x), self.fc2(x)
        std = logvar.mul(0.5).exp()
        # the release draws eps as a float32 normal on the model's device; mean: eps = 0 (z = mu exactly)
        eps = torch.empty(std.shape, device=std.device).normal_().to(std) if sample else torch.zeros_like(std)
        return eps.mul(std).add(mu)


class PriorVAE(nn.Module):
    """The prior branch of ``mm_vae_model`` (test time): two codes ``sc_v``, ``sc_a`` fused into the 1/32 map."""

    def __init__(self, audio_dim: int = 128):
        super().__init__()
        self.image = ImageEncoder((16, 32, 64, 128, 128))  # enc_vs
        self.image_latent = Gaussian(self.image.flat)
        self.audio_latent = Gaussian(audio_dim)  # enc_as
        self.common_image = ImageEncoder((16, 32, 64, 64, 64))  # enc_vac's image branch
        self.common_vector = nn.Linear(self.common_image.flat, NECK // 4)  # fc_gt_vector
        self.common_latent = Gaussian(audio_dim + NECK // 4)
        self.visual_code = nn.Linear(2 * LATENT, LATENT)  # sc1_prior
        self.audio_code = nn.Linear(2 * LATENT, LATENT)  # sc2_prior
        self.fuse = nn.Conv2d(NECK + 2 * LATENT, NECK, 1)  # noise_model_prior

    def forward(self, image: Tensor, embedding: Tensor, top: Tensor, sample: bool) -> Tensor:
        z_v = self.image_latent(self.image(image), sample)
        z_a = self.audio_latent(embedding, sample)
        z_c = self.common_latent(torch.cat([embedding, self.common_vector(self.common_image(image))], 1), sample)
        codes = torch.cat([self.visual_code(torch.cat([z_v, z_c], 1)), self.audio_code(torch.cat([z_a, z_c], 1))], 1)
        tiled = codes[:, :, None, None].expand(-1, -1, *top.shape[-2:])
        return self.fuse(torch.cat([top, tiled], 1))


class ECMVAE(AVSModel):
    parts = ("audio_backbone", "visual_backbone", "neck", "neck_post", "vae", "tpavi", "decoder")
    breakdown_groups = {"fusion (TPAVI)": ("tpavi.*",), "VAE (prior branch)": ("vae.*",)}
    frame_size = FRAME  # the one input size it is built for (the demo runs it there)
    audio_visual_sites = (("tpavi.*", "pixels-audio"),)
    audio_paths = (AudioPath("audio -> VAE latent", "vae", 1), *(AudioPath(f"audio -> TPAVI stage {i + 1}", f"tpavi.{i}", 1) for i in range(4)))

    def __init__(self, backbone: str = "pvt_v2_b5", latent: str = "mean", backbone_weights: str | None = None,
                 vggish_weights: str | None = None):
        super().__init__()
        self.sample = latent == "sample"
        self.audio_backbone = VGGish(vggish_weights)
        self.visual_backbone = build_backbone(backbone, backbone_weights)
        self.neck = basic_neck(self.visual_backbone.channels)
        self.neck_post = basic_neck(self.visual_backbone.channels)  # computed and discarded at test time, as released
        self.vae = PriorVAE()
        self.tpavi = nn.ModuleList(TPAVI(NECK, audio_dim=NECK, inter=NECK // 2, align=False, normalise=True) for _ in range(4))
        self.decoder = Decoder()

    def segment(self, image: Tensor, audio: Tensor) -> Tensor:
        if tuple(image.shape[-2:]) != (FRAME, FRAME):
            raise UserError(f"ECMVAE takes {FRAME}x{FRAME} frames only (its VAE encoders' linear layers are built for a 7x7 map "
                            f"at stride 32, as released), got {image.shape[-2]}x{image.shape[-1]}")
        embedding = self.audio_backbone(audio)  # [B, 128], no PCA
        feats = self.visual_backbone(image)
        maps = [neck(f) for neck, f in zip(self.neck, feats, strict=True)]
        for neck, f in zip(self.neck_post, feats, strict=True):
            neck(f)  # the release's posterior neck: its result is not used at test time
        maps[3] = self.vae(image, embedding, maps[3], self.sample)
        maps = [tpavi.forward_map(m, embedding) for tpavi, m in zip(self.tpavi, maps, strict=True)]
        return self.decoder(maps)


@FAMILIES.register("ecmvae")
def build_ecmvae(spec) -> AVSModel:
    return ECMVAE(spec.backbone, spec.latent or "mean", spec.backbone_weights, spec.vggish_weights)
