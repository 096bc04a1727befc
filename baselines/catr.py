"""CATR (Li et al., ACM MM 2023), the released PVT-v2-b5 model at T=1 with its test pipeline around it
(aspirinone/CATR.github.io ``Pred_endecoder`` and ``test.py``).

The frame is resized x2 (the release's loader takes the 224 frame to 448; ``input_upsample=false``
turns it off) -> PVT-v2-b5 -> four sums of dilated convolutions to 256 channels -> the stride-8 level,
projected, becomes the video tokens; the VGGish embedding through Linear + LayerNorm is one audio token
appended to them -> two parallel encoders over the same [video; audio] sequence: a 3-layer spatial
encoder (its output is the decoder's memory) and a 3-layer temporal encoder with audio-video
cross-attention and a gated fusion of its layers (its output is the mask features' input) -> a
DETR-style decoder with 50 learned queries -> per query a mask kernel (einsum with an FPN's stride-16
features) and a score -> the best-scored query's mask, upsampled to the input size: [B, 1, H, W] logits.

Kept as released (REFERENCE.md section 9): the temporal layers' products taken twice without residual
or norm (``v * MHA(v, a, a)^2``, ``a * MHA(a, v + pos, v)^2``); the gate's second weight reads the
sigmoid of the already pooled first gate (the convolution it should read is computed and discarded);
sine positions computed in float32; LayerNorm eps 1e-12 on the audio token. Also run, as the release
runs them, with their results discarded: the stride-4 dilated-convolution head and the last temporal
layer's video-to-audio attention. Not built: what the forward never calls (``path1-4``,
``fusion_module``, the encoder-level ``av_atten``/``va_atten``, every ``Conv2d(5, 15680)``) and the
decoder's auxiliary per-layer outputs (training only). ``temporal_ffn`` is the temporal layers'
feed-forward width: the config is not public; 256 is the code's default (the paper's 177M), 2048 if
the config set ``dim_feedforward``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avsbench_kit.models.backbones import build_backbone
from avsbench_kit.models.base import AudioPath, AVSModel
from avsbench_kit.models.vggish import VGGish
from avsbench_kit.nn.attention import MultiHeadAttention
from avsbench_kit.nn.blocks import FeedForward
from avsbench_kit.nn.position import sine_position_encoding
from avsbench_kit.registry import FAMILIES
from avskit.baselines.avsbench import DilatedConvSum

DIM, HEADS, QUERIES, KERNEL_DIM = 256, 8, 50, 64


class EncoderLayer(nn.Module):
    """Post-norm: ``x = LN(x + SelfAttn(x + pos, x + pos, x))``, then ``LN(x + FFN(x))`` (ReLU)."""

    def __init__(self, hidden: int):
        super().__init__()
        self.self_attn = MultiHeadAttention(DIM, HEADS)
        self.norm1 = nn.LayerNorm(DIM)
        self.ffn = FeedForward(DIM, hidden, activation=nn.ReLU)

    def forward(self, x: Tensor, pos: Tensor) -> Tensor:
        q = x + pos
        return self.ffn(self.norm1(x + self.self_attn(q, q, x)))


class TemporalLayer(nn.Module):
    """An encoder layer over [video; audio], then audio-to-video and video-to-audio attention as products."""

    def __init__(self, hidden: int):
        super().__init__()
        self.encoder = EncoderLayer(hidden)
        self.av_atten = MultiHeadAttention(DIM, HEADS)  # video queries, audio keys
        self.va_atten = MultiHeadAttention(DIM, HEADS)  # audio queries, video keys (with positions)

    def forward(self, seq: Tensor, pos: Tensor, video_pos: Tensor, n_video: int) -> tuple[Tensor, Tensor]:
        memory = self.encoder(seq, pos)
        video, audio = memory[:, :n_video], memory[:, n_video:]
        weights = self.av_atten(video, audio, audio)
        video = video * weights * weights
        weights = self.va_atten(audio, video + video_pos, video)
        audio = audio * weights * weights
        return video, torch.cat([video, audio], 1)


def conv_bn_prelu() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(DIM, DIM, 3, padding=1), nn.BatchNorm2d(DIM), nn.PReLU())


class TemporalEncoder(nn.Module):
    """Three temporal layers, then the gated fusion of their video outputs E1 = layer 1, T1 = layer 2, T2 = layer 3."""

    def __init__(self, hidden: int, layers: int = 3):
        super().__init__()
        self.layers = nn.ModuleList(TemporalLayer(hidden) for _ in range(layers))
        self.attention_feature = nn.Conv2d(2 * DIM, 2, 3, padding=1)
        self.output1 = conv_bn_prelu()
        self.output2 = conv_bn_prelu()

    def forward(self, seq: Tensor, pos: Tensor, video_pos: Tensor, hw: tuple[int, int]) -> Tensor:
        n = hw[0] * hw[1]
        gates = []
        for layer in self.layers:
            video, seq = layer(seq, pos, video_pos, n)
            gates.append(video.transpose(1, 2).reshape(video.shape[0], DIM, *hw))
        e1, t1, t2 = gates
        g1 = F.adaptive_avg_pool2d(self.attention_feature(torch.cat([e1, t1], 1)).sigmoid(), 1)  # [B, 2, 1, 1]
        d1 = self.output1(g1[:, :1] * t1)
        self.attention_feature(torch.cat([t1, t2], 1))  # the release computes G2 this way, then overwrites it:
        g2 = g1.sigmoid().mean(1, keepdim=True)  # adaptive_avg_pool3d(sigmoid(G1), 1) pools G1's two channels
        return self.output2(d1 + g2 * t2)


class DecoderLayer(nn.Module):
    """DETR's post-norm decoder layer: self-attention, cross-attention to the memory, FFN (ReLU)."""

    def __init__(self, hidden: int = 2048):
        super().__init__()
        self.self_attn = MultiHeadAttention(DIM, HEADS)
        self.norm1 = nn.LayerNorm(DIM)
        self.cross_attn = MultiHeadAttention(DIM, HEADS)
        self.norm2 = nn.LayerNorm(DIM)
        self.ffn = FeedForward(DIM, hidden, activation=nn.ReLU)

    def forward(self, tgt: Tensor, memory: Tensor, pos: Tensor, query_pos: Tensor) -> Tensor:
        q = tgt + query_pos
        tgt = self.norm1(tgt + self.self_attn(q, q, tgt))
        tgt = self.norm2(tgt + self.cross_attn(tgt + query_pos, memory + pos, memory))
        return self.ffn(tgt)


class Decoder(nn.Module):
    def __init__(self, layers: int = 3):
        super().__init__()
        self.layers = nn.ModuleList(DecoderLayer() for _ in range(layers))
        self.norm = nn.LayerNorm(DIM)

    def forward(self, query_pos: Tensor, memory: Tensor, pos: Tensor) -> Tensor:
        tgt = torch.zeros_like(query_pos)
        for layer in self.layers:
            tgt = layer(tgt, memory, pos, query_pos)
        return self.norm(tgt)  # the last layer's output (the others feed the training loss only)


class MaskFeatures(nn.Module):
    """CATR's ``FPNSpatialDecoder`` with two FPN levels: from the stride-8 temporal memory to stride 16."""

    def __init__(self):
        super().__init__()
        dims = [DIM, DIM // 2, DIM // 4, DIM // 8]
        self.lay1, self.gn1 = nn.Conv2d(dims[0], dims[0], 3, padding=1), nn.GroupNorm(8, dims[0])
        self.lay2, self.gn2 = nn.Conv2d(dims[0], dims[1], 3, padding=1), nn.GroupNorm(8, dims[1])
        self.lay3, self.gn3 = nn.Conv2d(dims[1], dims[2], 3, padding=1), nn.GroupNorm(8, dims[2])
        self.lay4, self.gn4 = nn.Conv2d(dims[2], dims[3], 3, padding=1), nn.GroupNorm(8, dims[3])
        self.adapter1 = nn.Conv2d(DIM, dims[1], 1)
        self.adapter2 = nn.Conv2d(DIM, dims[2], 1)
        self.out_lay = nn.Conv2d(dims[3], KERNEL_DIM, 3, padding=1)

    def forward(self, x: Tensor, level32: Tensor, level16: Tensor) -> Tensor:
        x = F.relu(self.gn2(self.lay2(F.relu(self.gn1(self.lay1(x))))))
        fpn = self.adapter1(level32)  # the stride-8 map is sampled down to stride 32 (nearest), as released
        x = F.relu(self.gn3(self.lay3(fpn + F.interpolate(x, size=fpn.shape[-2:], mode="nearest"))))
        fpn = self.adapter2(level16)
        x = F.relu(self.gn4(self.lay4(fpn + F.interpolate(x, size=fpn.shape[-2:], mode="nearest"))))
        return self.out_lay(x)


class AudioProjection(nn.Module):
    """``FeatureResizer``: Linear(128, 256) and LayerNorm(eps=1e-12)."""

    def __init__(self, audio_dim: int = 128):
        super().__init__()
        self.fc = nn.Linear(audio_dim, DIM)
        self.layer_norm = nn.LayerNorm(DIM, eps=1e-12)

    def forward(self, x: Tensor) -> Tensor:
        return self.layer_norm(self.fc(x))


class CATR(AVSModel):
    parts = ("audio_backbone", "visual_backbone", "stage_convs", "vid_embed_proj", "audio_proj", "spatial_encoder",
             "temporal_encoder", "obj_queries", "decoder", "mask_decoder", "kernel_head", "score_head")
    breakdown_groups = {"transformer": ("spatial_encoder.*", "temporal_encoder.*", "decoder.*")}
    audio_visual_sites = (("temporal_encoder.layers.*.av_atten", "pixels-audio"), ("temporal_encoder.layers.*.va_atten", "audio-pixels"))
    # the audio token joins the video tokens: the sequence each encoder receives carries it
    audio_paths = (AudioPath("audio token -> spatial encoder", "spatial_encoder.0", 0),
                   AudioPath("audio token -> temporal encoder", "temporal_encoder", 0))

    def __init__(self, temporal_ffn: int = 256, input_upsample: bool = True, backbone_weights: str | None = None,
                 vggish_weights: str | None = None, backbone: str = "pvt_v2_b5"):
        super().__init__()
        self.input_upsample = input_upsample
        self.audio_backbone = VGGish(vggish_weights)
        self.visual_backbone = build_backbone(backbone, backbone_weights)
        self.stage_convs = nn.ModuleList(DilatedConvSum(c, DIM) for c in self.visual_backbone.channels)
        self.vid_embed_proj = nn.Conv2d(DIM, DIM, 1)
        self.audio_proj = AudioProjection()
        self.spatial_encoder = nn.ModuleList(EncoderLayer(2048) for _ in range(3))
        self.temporal_encoder = TemporalEncoder(temporal_ffn)
        self.obj_queries = nn.Embedding(QUERIES, DIM)
        self.decoder = Decoder()
        self.mask_decoder = MaskFeatures()
        self.kernel_head = nn.Sequential(nn.Linear(DIM, DIM), nn.ReLU(), nn.Linear(DIM, KERNEL_DIM))
        self.score_head = nn.Linear(DIM, 2)  # "is referred": softmax(...)[..., 0] scores each query

    def all_queries(self, image: Tensor, audio: Tensor) -> tuple[Tensor, Tensor]:
        """Every query's mask logits ``[B, 50, h, w]`` (stride 16 of the resized frame) and score ``[B, 50]``."""
        x = F.interpolate(image, size=(2 * image.shape[-2], 2 * image.shape[-1]), mode="bilinear", align_corners=False) \
            if self.input_upsample else image
        feats = self.visual_backbone(x)
        levels = [conv(f) for conv, f in zip(self.stage_convs, feats, strict=True)]  # levels[0] is unused, as released
        video = self.vid_embed_proj(levels[1])
        b, _, h, w = video.shape
        tokens = torch.cat([video.flatten(2).transpose(1, 2), self.audio_proj(self.audio_backbone(audio))[:, None]], 1)
        video_pos = sine_position_encoding(h, w, DIM // 2, device=x.device, normalise=True).to(x.dtype)[None].expand(b, -1, -1)
        pos = torch.cat([video_pos, torch.zeros_like(tokens[:, h * w:])], 1)  # no positions for the audio token
        memory = tokens
        for layer in self.spatial_encoder:
            memory = layer(memory, pos)
        video_memory = self.temporal_encoder(tokens, pos, video_pos, (h, w))
        hs = self.decoder(self.obj_queries.weight[None].expand(b, -1, -1), memory, pos)
        features = self.mask_decoder(video_memory, levels[3], levels[2])
        masks = torch.einsum("bnc,bchw->bnhw", self.kernel_head(hs), features)
        # softmax over the two "is referred" logits, on a 2-D view: a classifier's softmax, which the probes must not
        # take for an attention over two keys (they record softmaxes of rank 3 and more)
        return masks, self.score_head(hs).flatten(0, 1).softmax(-1)[:, 0].view(b, -1)

    def segment(self, image: Tensor, audio: Tensor) -> Tensor:
        masks, scores = self.all_queries(image, audio)
        best = masks[torch.arange(masks.shape[0], device=masks.device), scores.argmax(1)][:, None]  # [B, 1, h, w]
        return F.interpolate(best, size=image.shape[-2:], mode="bilinear", align_corners=False)

    def liveness_output(self, image: Tensor, audio: Tensor) -> Tensor:
        """What parameter counting differentiates: every query's mask and score (the choice of the best
        query is not differentiable, yet the score head decides it)."""
        masks, scores = self.all_queries(image, audio)
        return masks.sum() + scores.sum()


@FAMILIES.register("catr")
def build_catr(spec) -> AVSModel:
    return CATR(spec.temporal_ffn or 256, True if spec.input_upsample is None else spec.input_upsample,
                spec.backbone_weights, spec.vggish_weights)
