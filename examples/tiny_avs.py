"""A small audio-visual segmentation model written the way research code often is, for
docs/foreign-models.md: attention by hand (``softmax(q @ k^T)``), no nn.MultiheadAttention.

    avskit params examples/tiny_avs.py:build
    avskit profile avesformer-r18 examples/tiny_avs.py:build[dim=96]
    avskit dissipation examples/tiny_avs.py:build

``build`` takes the image ``[B, 3, H, W]`` and a VGGish log-mel example ``[B, 1, 96, 64]`` (the
zoo's contract); ``build_with_features`` shows the other convention: the factory returns
``(module, example_inputs)`` and the audio is a precomputed ``[B, 128]`` feature.

Its learned queries first read the audio by cross-attention to the *one* audio token (a softmax
over a single key: every probability is 1, the dissipation AVESFormer's paper is about), then
attend over the image tokens (a softmax over H/32 x W/32 keys, 49 at 224x224, which does not
dissipate). An audio-event classifier's softmax over a 2-D ``[B, classes]`` tensor is not an
attention, and the probe leaves it out.
"""

from __future__ import annotations

from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def hand_attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """``softmax(q k^T / sqrt(d)) v`` written out, as most research code does."""
    weights = (q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5).softmax(-1)
    return weights @ v


class ImageEncoder(nn.Module):
    """Five stride-2 convolutions: ``[B, 3, H, W]`` -> ``[B, dim, H/32, W/32]``."""

    def __init__(self, dim: int):
        super().__init__()
        widths = (3, 16, 32, 64, dim, dim)
        self.layers = nn.Sequential(*[nn.Sequential(nn.Conv2d(a, b, 3, stride=2, padding=1), nn.BatchNorm2d(b), nn.ReLU())
                                      for a, b in pairwise(widths)])

    def forward(self, image: Tensor) -> Tensor:
        return self.layers(image)


class AudioEncoder(nn.Module):
    """A log-mel example ``[B, 1, 96, 64]`` -> one audio token ``[B, 1, dim]``."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 32, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU())
        self.proj = nn.Linear(64, dim)

    def forward(self, log_mel: Tensor) -> Tensor:
        return self.proj(self.conv(log_mel).mean((2, 3))).unsqueeze(1)


class AudioQueries(nn.Module):
    """Learned queries that read the audio token: cross-attention over a single key."""

    def __init__(self, dim: int, queries: int):
        super().__init__()
        self.queries = nn.Parameter(torch.randn(queries, dim))
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, audio_token: Tensor) -> Tensor:
        queries = self.queries.expand(audio_token.shape[0], -1, -1)
        return queries + hand_attention(self.q(queries), self.k(audio_token), self.v(audio_token))


class QueryToImage(nn.Module):
    """The queries attend over the image tokens (H/32 x W/32 keys)."""

    def __init__(self, dim: int):
        super().__init__()
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        for proj in (self.q, self.k):  # sharper than PyTorch's default init, as a trained model would be
            nn.init.normal_(proj.weight, std=12 / dim**0.5)

    def forward(self, queries: Tensor, tokens: Tensor) -> Tensor:
        return queries + hand_attention(self.q(queries), self.k(tokens), self.v(tokens))


class TinyAVS(nn.Module):
    def __init__(self, dim: int = 64, queries: int = 8, classes: int = 1, audio: str = "log-mel"):
        super().__init__()
        self.image_encoder = ImageEncoder(dim)
        self.audio_encoder = AudioEncoder(dim) if audio == "log-mel" else nn.Linear(128, dim)
        self.audio_queries = AudioQueries(dim, queries)
        self.query_to_image = QueryToImage(dim)
        self.event_head = nn.Linear(dim, 10)  # an audio-event classifier: a 2-D softmax, not attention
        self.mask_head = nn.Conv2d(queries, classes, 1)
        self.audio = audio

    def forward(self, image: Tensor, audio: Tensor) -> tuple[Tensor, Tensor]:
        feature = self.image_encoder(image)  # [B, C, h, w]
        tokens = feature.flatten(2).transpose(1, 2)  # [B, h*w, C]
        audio_token = self.audio_encoder(audio) if self.audio == "log-mel" else self.audio_encoder(audio).unsqueeze(1)
        queries = self.query_to_image(self.audio_queries(audio_token), tokens)  # [B, N_q, C]
        events = F.softmax(self.event_head(audio_token[:, 0]), dim=-1)  # [B, 10]
        maps = torch.einsum("bqc,bchw->bqhw", queries, feature)
        logits = F.interpolate(self.mask_head(maps), size=image.shape[-2:], mode="bilinear", align_corners=False)
        return logits, events  # the logits first, as the released AVSegFormer returns (pred, mask_feature)


def build(dim: int = 64, queries: int = 8, classes: int = 1) -> TinyAVS:
    """The zoo's input convention: image and a VGGish log-mel example."""
    return TinyAVS(dim, queries, classes)


def build_with_features(dim: int = 64, queries: int = 8):
    """Another convention: a precomputed 128-d audio feature per frame; the factory says how to make inputs."""
    model = TinyAVS(dim, queries, audio="feature")

    def example_inputs(batch: int, size: int) -> tuple[Tensor, Tensor]:
        gen = torch.Generator().manual_seed(0)
        return torch.randn(batch, 3, size, size, generator=gen), torch.randn(batch, 128, generator=gen)

    return model, example_inputs
