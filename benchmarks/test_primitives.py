"""Fusion and attention primitives at the decoder's real shapes (batch 1, 224x224 input).

Run: ``make bench`` (writes runs/bench.json). Compare two runs: see benchmarks/README.md.
"""

import pytest
import torch
from conftest import DIM, SHAPES, TOKENS

from avsbench_kit.models.decoder import ConvolutionLayer, DecoderContext, TransformerLayer, level_positions
from avsbench_kit.nn.attention import attend, attention_probabilities
from avsbench_kit.nn.blocks import DeformableSelfAttention
from avsbench_kit.nn.deformable import reference_points
from avsbench_kit.registry import FUSIONS
from avskit.baselines.tpavi import TPAVI

HEADS = 8
ATTENTION_CASES = {
    "pixels->16 queries (ELF fusion)": (TOKENS, 16),
    "pixels->1 audio token (dissipation)": (TOKENS, 1),
    "300 queries self-attention (QG)": (300, 300),
    "300 queries->memory (AVSegFormer decoder)": (300, TOKENS),
}


def _qkv(lq, lk):
    d = DIM // HEADS
    return torch.randn(1, HEADS, lq, d), torch.randn(1, HEADS, lk, d), torch.randn(1, HEADS, lk, d)


@pytest.mark.benchmark(group="attention: fused SDPA")
@pytest.mark.parametrize("case", list(ATTENTION_CASES))
def test_attend_fused(benchmark, case):
    q, k, v = _qkv(*ATTENTION_CASES[case])
    benchmark(attend, q, k, v)


@pytest.mark.benchmark(group="attention: explicit probabilities")
@pytest.mark.parametrize("case", list(ATTENTION_CASES))
def test_attend_explicit(benchmark, case):
    q, k, v = _qkv(*ATTENTION_CASES[case])
    benchmark(lambda: torch.matmul(attention_probabilities(q, k), v))


@pytest.mark.benchmark(group="fusion sub-layer (1029 tokens)")
@pytest.mark.parametrize("name", ["cross_attention", "dissipation", "tpavi", "cha", "sigmoid"])
def test_fusion(benchmark, name):
    fusion = FUSIONS.get(name)(DIM).eval()
    pixels, queries, audio = torch.randn(1, TOKENS, DIM), torch.randn(1, 16, DIM), torch.randn(1, 1, DIM)
    benchmark(fusion, pixels, SHAPES, queries, audio)


@pytest.mark.benchmark(group="decoder layer (1029 tokens)")
@pytest.mark.parametrize("kind", ["C", "T"])
def test_decoder_layer(benchmark, kind):
    layer = (ConvolutionLayer(DIM) if kind == "C" else TransformerLayer(DIM)).eval()
    level_embed = torch.zeros(3, DIM)
    ctx = DecoderContext(SHAPES, torch.randn(1, 16, DIM), torch.randn(1, 1, DIM), level_positions(SHAPES, level_embed),
                         reference_points(SHAPES, torch.device("cpu"), torch.float32))
    benchmark(layer, torch.randn(1, TOKENS, DIM), ctx)


@pytest.mark.benchmark(group="deformable self-attention (1029 tokens)")
def test_deformable_self_attention(benchmark):
    block = DeformableSelfAttention(DIM).eval()
    x = torch.randn(1, TOKENS, DIM)
    pos = level_positions(SHAPES, torch.zeros(3, DIM))
    ref = reference_points(SHAPES, torch.device("cpu"), torch.float32)
    benchmark(block, x, pos, ref, SHAPES)


@pytest.mark.benchmark(group="TPAVI at stride 4 (3136 tokens)")
@pytest.mark.parametrize("form", ["factorised", "full N x N"])
def test_tpavi(benchmark, form):
    block = TPAVI(DIM, 128).eval()
    x, audio = torch.randn(1, 56 * 56, DIM), torch.randn(1, 128)

    def full():
        a = block.align_channel(audio)[:, None, :].expand(1, x.shape[1], -1)
        f = block.theta(x) @ block.phi(a).transpose(1, 2) / x.shape[1]
        y = f @ block.g(x)
        return block.norm(x + block.bn(block.W_z(y).transpose(1, 2)).transpose(1, 2))

    benchmark(block if form == "factorised" else full, *((x, audio) if form == "factorised" else ()))
