"""AVSegFormer (Gao et al., AAAI 2024), ResNet-50 config, at T=1 and any batch size.

It computes what the release's forward computes, without the parts that forward never uses: the
second backbone branch (layer3_2/layer4_2), the SimpleFPN and the attn_fc head. The channel mixer
keeps the batch dimension, so batch 1 runs (the release crashes there).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from avsbench_kit.models.backbones import build_backbone
from avsbench_kit.models.base import AudioPath, AVSModel
from avsbench_kit.models.decoder import level_positions
from avsbench_kit.models.mask_head import InputProjection, MaskHead
from avsbench_kit.models.vggish import VGGish
from avsbench_kit.nn.blocks import AttentionSubLayer, DeformableSelfAttention, FeedForward, maps_to_tokens, tokens_to_maps
from avsbench_kit.nn.deformable import reference_points
from avsbench_kit.registry import FAMILIES, QUERY_GENERATORS
from avskit.baselines.channel_attention import ChannelAttentionMixer

EMBED_DIM = 256


class PixelEncoderLayer(nn.Module):
    def __init__(self, dim: int = 256, levels: int = 3, hidden: int = 2048, dropout: float = 0.1):
        super().__init__()
        self.self_attn = DeformableSelfAttention(dim, levels, heads=8, points=4, dropout=dropout)
        self.ffn = FeedForward(dim, hidden, dropout)

    def forward(self, tokens: Tensor, pos: Tensor, reference: Tensor, shapes: list[tuple[int, int]]) -> Tensor:
        return self.ffn(self.self_attn(tokens, pos, reference, shapes))


class PixelEncoder(nn.Module):
    """6 post-norm layers of multi-scale deformable self-attention + FFN over strides 8/16/32."""

    def __init__(self, dim: int = 256, layers: int = 6, levels: int = 3):
        super().__init__()
        self.level_embed = nn.Parameter(torch.empty(levels, dim).normal_())
        self.layers = nn.ModuleList(PixelEncoderLayer(dim, levels) for _ in range(layers))

    def forward(self, maps: list[Tensor]) -> tuple[list[Tensor], Tensor]:
        tokens, shapes = maps_to_tokens(maps)
        pos = level_positions(shapes, self.level_embed)
        reference = reference_points(shapes, tokens.device, tokens.dtype)
        for layer in self.layers:
            tokens = layer(tokens, pos, reference, shapes)
        return tokens_to_maps(tokens, shapes), tokens


class QueryDecoderLayer(nn.Module):
    def __init__(self, dim: int = 256, heads: int = 8, hidden: int = 2048, dropout: float = 0.1):
        super().__init__()
        self.self_attn = AttentionSubLayer(dim, heads, dropout=dropout)
        self.cross_attn = AttentionSubLayer(dim, heads, dropout=dropout)
        self.ffn = FeedForward(dim, hidden, dropout)

    def forward(self, queries: Tensor, memory: Tensor) -> Tensor:
        return self.ffn(self.cross_attn(self.self_attn(queries), memory))


class QueryDecoder(nn.Module):
    """6 post-norm layers: self-attention, cross-attention over the whole memory, FFN; no positions."""

    def __init__(self, dim: int = 256, layers: int = 6):
        super().__init__()
        self.layers = nn.ModuleList(QueryDecoderLayer(dim) for _ in range(layers))

    def forward(self, queries: Tensor, memory: Tensor) -> Tensor:
        for layer in self.layers:
            queries = layer(queries, memory)
        return queries  # only the last layer's output is used


class AVSegFormer(AVSModel):
    parts = ("audio_backbone", "audio_proj", "visual_backbone", "input_proj", "query_generator", "pixel_encoder", "query_decoder", "mask_head")
    breakdown_groups = {
        "fusion (CHA mixer)": ("mask_head.mixer",),
        "audio cross-attention (QG)": ("query_generator.layers.*.cross_attn",),
    }
    audio_visual_sites = (("mask_head.mixer*", "pixels-audio"),)  # channel attention: no spatial map
    audio_paths = (AudioPath("queries -> query decoder", "query_decoder", 0), AudioPath("audio token -> mask head (CHA mixer)", "mask_head", 3))

    def __init__(self, backbone: str = "resnet50", qg: str = "qg", queries: int = 300, classes: int = 1,
                 backbone_weights: str | None = None, vggish_weights: str | None = None):
        super().__init__()
        self.audio_backbone = VGGish(vggish_weights)
        self.audio_proj = nn.Linear(128, EMBED_DIM)
        self.visual_backbone = build_backbone(backbone, backbone_weights)
        self.input_proj = InputProjection(self.visual_backbone.channels, EMBED_DIM)
        self.query_generator = QUERY_GENERATORS.get(qg)(EMBED_DIM, queries)
        self.pixel_encoder = PixelEncoder(EMBED_DIM)
        self.query_decoder = QueryDecoder(EMBED_DIM)
        self.mask_head = MaskHead(EMBED_DIM, queries, classes, mixer=ChannelAttentionMixer(EMBED_DIM))

    def segment(self, image: Tensor, audio: Tensor) -> Tensor:
        audio_token = self.audio_proj(self.audio_backbone(audio)).unsqueeze(1)
        levels = self.input_proj(self.visual_backbone(image))
        queries = self.query_generator(audio_token)
        maps, memory = self.pixel_encoder(levels[1:])
        queries = self.query_decoder(queries, memory)
        return self.mask_head(levels[0], maps[0], queries, audio_token)


@FAMILIES.register("avsegformer")
def build_avsegformer(spec) -> AVSModel:
    return AVSegFormer(spec.backbone, spec.qg, spec.queries, spec.classes, spec.backbone_weights, spec.vggish_weights)
