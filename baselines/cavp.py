"""CAVP (Chen et al., CVPR 2024), the released test-time model at T=1 (cyh-0/CAVP ``models/cavp_model.py``,
``CAVP.forward_inference``, the DeepLabV3+ configuration the release trains on AVSBench).

Deep-stem ResNet-50 (three 3x3 convolutions, 64-64-128 channels; layer 4 without stride and dilated
2, 4, 8 block by block: output stride 16) -> DeepLabV3+ neck: ASPP (1x1 and 3x3 at rates 6, 12, 18,
plus image pooling, LeakyReLU) to 256 channels, upsampled with ``align_corners=True`` to stride 4 and
concatenated with a 48-channel reduction of layer 1: 304 channels -> a 304-256-304 MLP per pixel ->
one cross-attention block (4 heads, bias-free q/k/v) whose scores are **sigmoids**: each pixel weighs
the single audio token by its own sigmoid, not by a softmax over one key -> LayerNorm -> two 3x3
conv+BN+ReLU layers and a 1x1 classifier -> bilinear to the input size.

The audio is the release's own: a VGGish-shaped network whose last layer is 4096 -> 304, trained with
the model (not frozen), fed the release's own log-mel (:mod:`avsbench_kit.audio_cavp`; ``spec.FRONT_ENDS`` says so), not AVSBench's.

Kept as released: the attention block's residual adds to the *normalised* pixels; its audio<-visual
branch is computed and discarded at depth 1 (it runs here too: its time is part of the release's);
``pos_embed_v`` (1 x 16384 x 304) and ``pos_embed_a`` are declared and never added; the audio network's
``cls_head`` is declared and never called. The parameter count says each of these is not live.
The binary release classifies two classes (background, object) with a softmax; avskit's binary contract
is one logit, so ``forward`` returns ``logit(object) - logit(background)`` (its sigmoid is the release's
softmax probability of the object; its sign is the release's argmax) and :meth:`CAVP.release_logits` the
release's two. AVSS (``classes=71``) returns the 71 logits as they are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import Mlp
from timm.models.resnet import Bottleneck, ResNet
from torch import Tensor, nn

from avsbench_kit.models.base import AudioPath, AVSModel
from avsbench_kit.models.vggish import vggish_features
from avsbench_kit.nn.attention import MultiHeadAttention
from avsbench_kit.registry import FAMILIES

DIM = 304  # 256 (ASPP) + 48 (reduced layer 1)
HEADS = 4
POS_TOKENS = 128 * 128  # the release's PatchEmbed(img_size=(128, 128)): pos_embed_v's length, never used


class DeepStemResNet50(ResNet):
    """The release's ``resnet50(deep_stem=True, stem_width=64)`` with layer 4 made stride 1 and dilated
    2, 4, 8 block by block (``Backbone._nostride_dilate``): timm's ResNet has the same stem and names.
    Returns layer 1 (stride 4) and layer 4 (stride 16), the two maps DeepLabV3+ reads."""

    def __init__(self):
        super().__init__(Bottleneck, [3, 4, 6, 3], stem_type="deep", stem_width=64, num_classes=0, global_pool="")
        for n, block in enumerate(self.layer4):
            rate = 2 ** (n + 1)
            for conv in block.modules():
                if not isinstance(conv, nn.Conv2d):
                    continue
                conv.stride = (1, 1)
                if conv.kernel_size == (3, 3):
                    conv.dilation, conv.padding = (rate, rate), (rate, rate)

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        low = self.layer1(self.maxpool(self.act1(self.bn1(self.conv1(image)))))
        return low, self.layer4(self.layer3(self.layer2(low)))


def conv_bn(cin: int, cout: int, kernel: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


class ASPP(nn.Module):
    """The release's ASPP: four parallel convolutions (BN and LeakyReLU over their concatenation), reduced
    to ``out`` channels, plus the reduced image-pooling branch broadcast over the map; BN and LeakyReLU."""

    def __init__(self, cin: int = 2048, out: int = 256, hidden: int = 256, rates: tuple[int, ...] = (6, 12, 18)):
        super().__init__()
        self.map_convs = nn.ModuleList([nn.Conv2d(cin, hidden, 1, bias=False)]
                                       + [nn.Conv2d(cin, hidden, 3, padding=r, dilation=r, bias=False) for r in rates])
        self.map_bn = nn.BatchNorm2d(hidden * 4)
        self.global_pooling_conv = nn.Conv2d(cin, hidden, 1, bias=False)
        self.global_pooling_bn = nn.BatchNorm2d(hidden)
        self.red_conv = nn.Conv2d(hidden * 4, out, 1, bias=False)
        self.pool_red_conv = nn.Conv2d(hidden, out, 1, bias=False)
        self.red_bn = nn.BatchNorm2d(out)

    def forward(self, x: Tensor) -> Tensor:
        out = self.red_conv(F.leaky_relu(self.map_bn(torch.cat([conv(x) for conv in self.map_convs], 1))))
        pool = x.mean((2, 3), keepdim=True)
        pool = self.pool_red_conv(F.leaky_relu(self.global_pooling_bn(self.global_pooling_conv(pool))))
        return F.leaky_relu(self.red_bn(out + pool))


class CrossAttentionBlock(nn.Module):
    """The release's ``Block`` in mode "CA": both streams through ``norm1``; pixels <- audio (sigmoid
    attention), residual onto the normalised pixels, then ``+ MLP(norm2(.))``; then audio <- pixels in the
    same way, whose result a depth-1 model discards."""

    def __init__(self, dim: int = DIM, heads: int = HEADS):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, heads, bias=False, kind="sigmoid", out_bias=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, dim * 4, dim)

    def attend(self, query: Tensor, context: Tensor) -> Tensor:
        query = query + self.attn(query, context, context)
        return query + self.mlp(self.norm2(query))

    def forward(self, pixels: Tensor, audio: Tensor) -> tuple[Tensor, Tensor]:
        pixels, audio = self.norm1(pixels), self.norm1(audio)
        pixels = self.attend(pixels, audio)
        return pixels, self.attend(audio, pixels)


class SigmoidFusion(nn.Module):
    """The release's ``CROSS_ATTENTION`` at depth 1: token embeddings, the block, a final LayerNorm."""

    def __init__(self, dim: int = DIM, depth: int = 1):
        super().__init__()
        self.visual_embed = nn.Linear(dim, dim)  # patch_embed_v.proj
        self.audio_embed = nn.Linear(dim, dim)  # patch_embed_a.proj
        self.pos_embed_v = nn.Parameter(torch.zeros(1, POS_TOKENS, dim))  # declared, never added (as released)
        self.pos_embed_a = nn.Parameter(torch.zeros(1, 1, dim))
        self.blocks = nn.ModuleList(CrossAttentionBlock(dim) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

    def forward(self, pixels: Tensor, audio: Tensor) -> Tensor:
        pixels, audio = self.visual_embed(pixels), self.audio_embed(audio)
        for block in self.blocks:
            pixels, audio = block(pixels, audio)  # the last block's audio is discarded
        return self.norm(pixels)


class CAVPAudio(nn.Module):
    """The release's ``AudioModel("vgg")``: VGGish's layers with a 4096 -> 304 last layer (ReLU after it),
    trained with the model; ``cls_head`` is declared and never called at test time."""

    def __init__(self, out: int = DIM):
        super().__init__()
        self.features = vggish_features()
        self.embeddings = nn.Sequential(nn.Linear(512 * 4 * 6, 4096), nn.ReLU(inplace=True), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
                                        nn.Linear(4096, out), nn.ReLU(inplace=True))
        self.cls_head = nn.Linear(out, 2)

    def forward(self, log_mel: Tensor) -> Tensor:
        return self.embeddings(self.features(log_mel).permute(0, 2, 3, 1).flatten(1))


class CAVP(AVSModel):
    parts = ("audio_backbone", "visual_backbone", "aspp", "reduce", "visual_projector", "fusion", "head")
    breakdown_groups = {"DeepLabV3+ neck (ASPP, reduce)": ("aspp", "reduce"), "fusion (sigmoid cross-attention)": ("fusion",)}
    audio_visual_sites = (("fusion.blocks.*.attn", "pixels-audio"),)
    audio_paths = (AudioPath("audio -> sigmoid fusion", "fusion", 1),)

    def __init__(self, classes: int = 1):
        super().__init__()
        self.audio_backbone = CAVPAudio()
        self.visual_backbone = DeepStemResNet50()
        self.aspp = ASPP()
        self.reduce = nn.Sequential(*conv_bn(256, 48, 1))
        self.visual_projector = Mlp(DIM, 256, DIM)
        self.fusion = SigmoidFusion()
        released = 2 if classes == 1 else classes  # the binary release classifies background and object
        self.head = nn.Sequential(*conv_bn(DIM, 256, 3), *conv_bn(256, 256, 3), nn.Conv2d(256, released, 1))
        self.classes = classes
        self._init_random()

    def _init_random(self) -> None:
        """Random weights that keep the signal's size (He for every convolution and linear layer outside
        timm's ResNet, which has its own; zero biases), as VGGish's random weights do. PyTorch's defaults
        shrink the varying part of the features under the biases through the audio network's nine layers
        and the three linear layers before the attention, which leaves a random model's sigmoid map flat."""
        for name, module in self.named_modules():
            if not name.startswith("visual_backbone") and isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def release_logits(self, image: Tensor, audio: Tensor) -> Tensor:
        """The release's ``forward_inference(image, audio)[0]``: ``[B, 2 or 71, H, W]``."""
        low, top = self.visual_backbone(image)
        top = F.interpolate(self.aspp(top), size=low.shape[-2:], mode="bilinear", align_corners=True)
        maps = torch.cat([top, self.reduce(low)], 1)
        b, c, h, w = maps.shape
        pixels = self.visual_projector(maps.flatten(2).transpose(1, 2))
        fused = self.fusion(pixels, self.audio_backbone(audio)[:, None, :])
        logits = self.head(fused.transpose(1, 2).reshape(b, c, h, w))
        return F.interpolate(logits, size=image.shape[-2:], mode="bilinear", align_corners=False)

    def segment(self, image: Tensor, audio: Tensor) -> Tensor:
        logits = self.release_logits(image, audio)
        return logits[:, 1:2] - logits[:, 0:1] if self.classes == 1 else logits


@FAMILIES.register("cavp")
def build_cavp(spec) -> AVSModel:
    return CAVP(spec.classes)
