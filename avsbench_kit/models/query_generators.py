"""Query generators of AVESFormer: the prompt query generator (PQG) and none.

A generator maps the audio token ``[B, 1, C]`` to audio queries ``[B, N_q, C]``. The baselines
register AVSegFormer's QG and the bias query generator (BQG) into the same registry.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from avsbench_kit.nn.blocks import AttentionSubLayer, FeedForward
from avsbench_kit.registry import QUERY_GENERATORS


class PromptQueryGenerator(nn.Module):
    """PQG (paper section 4.1): the audio token is a prompt in front of N_q learnable queries.

    Self-attention over ``[audio | queries]`` lets every query read the audio (N_q + 1 keys, so
    softmax cannot dissipate); the prompt is dropped at the output. Layer shape follows
    AVSegFormer's QG layers (8 heads, no projection bias, FFN 1024 with GELU, post-norm) minus
    their cross-attention, which the prompt makes unnecessary.
    """

    def __init__(self, dim: int = 256, queries: int = 16, layers: int = 3, heads: int = 8, hidden: int = 1024):
        super().__init__()
        self.query = nn.Embedding(queries, dim)
        self.layers = nn.ModuleList(
            nn.ModuleDict({"self_attn": AttentionSubLayer(dim, heads, bias=False), "ffn": FeedForward(dim, hidden)})
            for _ in range(layers)
        )

    def forward(self, audio: Tensor) -> Tensor:
        tokens = torch.cat([audio, self.query.weight[None].expand(audio.shape[0], -1, -1)], dim=1)
        for layer in self.layers:
            tokens = layer["ffn"](layer["self_attn"](tokens))
        return tokens[:, 1:]


class NoQueryGenerator(nn.Module):
    """Without a generator the raw audio token is the only query (paper Table 4, "w/o QG")."""

    def forward(self, audio: Tensor) -> Tensor:
        return audio


@QUERY_GENERATORS.register("pqg")
def prompt_query_generator(dim: int, queries: int) -> nn.Module:
    return PromptQueryGenerator(dim, queries)


@QUERY_GENERATORS.register("none")
def no_query_generator(dim: int, queries: int) -> nn.Module:
    return NoQueryGenerator()
