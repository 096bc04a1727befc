"""AVESFormer (paper section 4): PQG + ELF decoder + AVSegFormer's mask head, one frame at a time."""

from __future__ import annotations

from torch import Tensor, nn

from avsbench_kit.models.backbones import build_backbone
from avsbench_kit.models.base import AudioPath, AVSModel
from avsbench_kit.models.decoder import ElfDecoder
from avsbench_kit.models.mask_head import InputProjection, MaskHead
from avsbench_kit.models.vggish import VGGish
from avsbench_kit.registry import FAMILIES, QUERY_GENERATORS

EMBED_DIM = 256
AUDIO_DIM = 128


class AVESFormer(AVSModel):
    parts = ("audio_backbone", "audio_proj", "visual_backbone", "input_proj", "query_generator", "decoder", "mask_head")
    breakdown_groups = {
        "fusion": ("decoder.stages.*.layers.*.fusion",),
        "audio cross-attention (QG)": ("query_generator.layers.*.cross_attn",),
    }
    # the decoder's fusion: pixels (rows) attend to the audio queries (keys); figures 7, 8 and 9 draw these maps
    audio_visual_sites = (("decoder.stages.*.fusion*", "pixels-audio"),)
    # where audio-derived tensors enter the rest of the network (`avskit pathways` patches each one)
    audio_paths = (AudioPath("queries -> decoder fusion", "decoder", 1), AudioPath("audio token -> decoder", "decoder", 2),
                   AudioPath("queries -> mask head", "mask_head", 2))

    def __init__(self, backbone: str = "resnet50", qg: str = "pqg", fusion: str = "cross_attention", stages: str = "CTT",
                 queries: int = 16, classes: int = 1, backbone_weights: str | None = None, vggish_weights: str | None = None):
        super().__init__()
        self.audio_backbone = VGGish(vggish_weights)
        self.audio_proj = nn.Linear(AUDIO_DIM, EMBED_DIM)
        self.visual_backbone = build_backbone(backbone, backbone_weights)
        self.input_proj = InputProjection(self.visual_backbone.channels, EMBED_DIM)
        self.query_generator = QUERY_GENERATORS.get(qg)(EMBED_DIM, queries)
        self.decoder = ElfDecoder(stages, 2, EMBED_DIM, fusion)
        self.mask_head = MaskHead(EMBED_DIM, queries, classes)

    def segment(self, image: Tensor, audio: Tensor) -> Tensor:
        audio_token = self.audio_proj(self.audio_backbone(audio)).unsqueeze(1)  # [B, 1, C]
        levels = self.input_proj(self.visual_backbone(image))  # strides 4, 8, 16, 32
        queries = self.query_generator(audio_token)  # [B, N_q, C]
        decoded = self.decoder(levels[1:], queries, audio_token)
        return self.mask_head(levels[0], decoded[0], queries)


@FAMILIES.register("avesformer")
def build_avesformer(spec) -> AVSModel:
    return AVESFormer(spec.backbone, spec.qg, spec.fusion, spec.stages, spec.queries, spec.classes,
                      spec.backbone_weights, spec.vggish_weights)
