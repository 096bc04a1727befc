"""AVSegFormer's query generator (QG) and the bias query generator (BQG)."""

from __future__ import annotations

from torch import Tensor, nn

from avsbench_kit.nn.blocks import AttentionSubLayer, FeedForward
from avsbench_kit.registry import QUERY_GENERATORS


class AttentionQueryGenerator(nn.Module):
    """QG as released ("AttentionGenerator") plus the learnable embedding its head adds.

    300 learnable queries, 6 post-norm layers of self-attention -> cross-attention to the single
    audio token -> FFN 1024 (GELU); attention with 8 heads and no bias. The cross-attention has one
    key, so its softmax is identically 1: every query receives the same audio value (dissipation,
    paper Figure 4a). AVSegFormer's head then adds a second learnable embedding; it is kept here
    (``learnable_query``) so that QG means the same thing in every model.
    """

    def __init__(self, dim: int = 256, queries: int = 300, layers: int = 6, heads: int = 8, hidden: int = 1024):
        super().__init__()
        self.query = nn.Embedding(queries, dim)
        self.layers = nn.ModuleList(
            nn.ModuleDict({
                "self_attn": AttentionSubLayer(dim, heads, bias=False),
                "cross_attn": AttentionSubLayer(dim, heads, bias=False),
                "ffn": FeedForward(dim, hidden),
            })
            for _ in range(layers)
        )
        self.learnable_query = nn.Embedding(queries, dim)

    def forward(self, audio: Tensor) -> Tensor:
        q = self.query.weight[None].expand(audio.shape[0], -1, -1)
        for layer in self.layers:
            q = layer["ffn"](layer["cross_attn"](layer["self_attn"](q), audio))
        return q + self.learnable_query.weight[None]


class BiasQueryGenerator(nn.Module):
    """BQG: the audio token repeated N_q times plus a learnable bias per query.

    It is AVSegFormer's "RepeatGenerator" followed by the head's learnable embedding.
    """

    def __init__(self, dim: int = 256, queries: int = 16):
        super().__init__()
        self.bias = nn.Embedding(queries, dim)

    def forward(self, audio: Tensor) -> Tensor:
        return audio + self.bias.weight[None]


@QUERY_GENERATORS.register("qg")
def attention_query_generator(dim: int, queries: int) -> nn.Module:
    return AttentionQueryGenerator(dim, queries)


@QUERY_GENERATORS.register("bqg")
def bias_query_generator(dim: int, queries: int) -> nn.Module:
    return BiasQueryGenerator(dim, queries)
