"""The baselines' parts compute what their released forms compute, with the released sizes."""

import torch
from torch import nn

from avskit.baselines.channel_attention import ChannelAttentionMixer
from avskit.baselines.query_generators import AttentionQueryGenerator, BiasQueryGenerator
from avskit.baselines.tpavi import TPAVI


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def naive_tpavi(block: TPAVI, x: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
    """The release's 'dot' mode written out: the full N x N affinity of theta(x) and phi(audio broadcast)."""
    b, n, _ = x.shape
    a = block.align_channel(audio)[:, None, :].expand(b, n, -1)  # audio repeated over all positions
    theta, phi, g = block.theta(x), block.phi(a), block.g(x)
    f = theta @ phi.transpose(1, 2) / n  # [B, N, N]
    y = f @ g
    z = block.bn(block.W_z(y).transpose(1, 2)).transpose(1, 2)
    return block.norm(x + z)


def test_tpavi_factorised_form_equals_full_affinity():
    torch.manual_seed(0)
    block = TPAVI(dim=32, audio_dim=12, inter=16)
    for p in (block.W_z.weight, block.W_z.bias, block.bn.weight, block.bn.bias):
        nn.init.normal_(p)  # the release zero-initialises these; make the test see through them
    block.bn.running_mean.normal_()
    block.bn.running_var.uniform_(0.5, 2.0)
    x, audio = torch.randn(3, 49, 32), torch.randn(3, 12)
    block.eval()
    torch.testing.assert_close(block(x, audio), naive_tpavi(block, x, audio), rtol=1e-4, atol=1e-4)
    block.train()  # batch statistics too
    torch.testing.assert_close(block(x, audio), naive_tpavi(block, x, audio), rtol=1e-4, atol=1e-4)


def test_released_part_sizes():
    assert count(TPAVI(256, 128)) == 165_760
    assert count(ChannelAttentionMixer(256)) == 262_400
    qg = AttentionQueryGenerator(256, 300)
    assert count(qg) - qg.learnable_query.weight.numel() == 6_385_152
    assert qg.learnable_query.weight.numel() == 76_800


def test_channel_mixer_runs_at_batch_one_and_gates_channels():
    torch.manual_seed(0)
    mixer = ChannelAttentionMixer(64)
    x, audio = torch.randn(1, 64, 7, 7), torch.randn(1, 1, 64)
    out = mixer(x, audio)  # the release squeezes the batch dimension away here and crashes
    assert out.shape == x.shape
    gate = out / x
    torch.testing.assert_close(gate, gate[:, :, :1, :1].expand_as(gate))  # one factor per channel
    assert ((gate > 0) & (gate < 1)).all()


def test_bias_query_generator_is_repeated_audio_plus_bias():
    bqg = BiasQueryGenerator(8, queries=5)
    audio = torch.randn(2, 1, 8)
    torch.testing.assert_close(bqg(audio), audio.expand(2, 5, 8) + bqg.bias.weight)


def test_avsegformer_gates_the_mask_feature_before_the_query_maps():
    """REFERENCE.md (corrected): mask_feature = CHA(mask_feature, audio) first; einsum, MLP and residual use the gated map."""
    from avsbench_kit.models.mask_head import MaskHead
    from avskit.baselines.channel_attention import ChannelAttentionMixer

    torch.manual_seed(0)
    head = MaskHead(256, queries=5, classes=1, mixer=ChannelAttentionMixer(256)).eval()
    s4, d8 = torch.randn(1, 256, 16, 16), torch.randn(1, 256, 8, 8)
    queries, audio = torch.randn(1, 5, 256), torch.randn(1, 1, 256)
    with torch.no_grad():
        gated = head.mixer(head.mask_feature(s4, d8), audio)
        expected = head.classifier(gated + head.query_mlp(torch.einsum("bqc,bchw->bqhw", queries, gated)))
        ungated = head.mask_feature(s4, d8)
        old_order = head.classifier(head.mixer(ungated + head.query_mlp(torch.einsum("bqc,bchw->bqhw", queries, ungated)), audio))
        out = head(s4, d8, queries, audio)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)
    assert (out - old_order).abs().max() > 1e-3  # the order matters, and this is the release's


def test_avsbench_residual_unit_adds_relu_of_its_input():
    """REFERENCE.md (corrected): the release's first ReLU is in place, so the skip adds relu(x)."""
    from avskit.baselines.avsbench import ResidualConvUnit

    unit = ResidualConvUnit(8)
    for conv in (unit.conv1, unit.conv2):
        torch.nn.init.zeros_(conv.weight)
        torch.nn.init.zeros_(conv.bias)
    x = torch.randn(1, 8, 4, 4)
    torch.testing.assert_close(unit(x), torch.relu(x))
    assert (x < 0).any()  # so relu(x) != x here
