"""Parameter counts: VGGish, the baselines' live counts against the released code's, live detection."""

import pytest
import torch
from torch import nn

from avsbench_kit import build_model
from avsbench_kit.models.vggish import VGGISH_PARAMS, VGGish
from avsbench_kit.profiling.params import count_parameters, live_parameter_ids
from avsbench_kit.reported import RELEASED, released_live


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_vggish_size():
    assert VGGISH_PARAMS == 72_141_184
    assert count(VGGish()) == VGGISH_PARAMS


def test_released_live_figures_follow_reference():
    # REFERENCE.md: declared totals minus the parts the released forward never uses
    assert released_live("avsegformer-r50") == 150_902_528 - 22_063_104 - 1_770_240 - 331_968
    assert released_live("avsbench-r50") == 163_542_145 - 22_063_104 - 1_180_160


def test_avsegformer_live_equals_released_live():
    model = build_model("avsegformer-r50")
    counts = count_parameters(model, size=64)
    assert counts.live == counts.declared == released_live("avsegformer-r50") == 126_737_216
    # per-part figures of REFERENCE.md section 1
    assert counts.parts["audio_backbone"]["live"] == 72_141_184
    assert counts.parts["visual_backbone"]["live"] == 45_571_136 - 22_063_104
    encoder_decoder = count(model.pixel_encoder) - model.pixel_encoder.level_embed.numel() + count(model.query_decoder)
    assert encoder_decoder == 17_017_536
    head = model.mask_head
    assert count(head.out_conv) == 590_592
    assert count(head.query_mlp) == 5_337_344
    assert count(head.classifier) == 331_968
    assert count(head.mixer) == 262_400
    assert counts.trainable == counts.declared - VGGISH_PARAMS  # VGGish frozen


@pytest.mark.parametrize("name", ["avsegformer-pvt", "avsbench-pvt"])
def test_pvt_models_hold_the_releases_live_parameters(name):
    """timm's pvt_v2_b5 (no classifier) has the 81,443,008 parameters of the releases' PVT-v2-b5, so
    the PVT configurations declare what the releases' forward uses."""
    model = build_model(name)
    assert count(model.visual_backbone) == 81_443_008
    assert count(model) == released_live(name)


def test_avsbench_live_equals_released_live():
    model = build_model("avsbench-r50")
    counts = count_parameters(model, size=64)
    assert counts.live == counts.declared == released_live("avsbench-r50") == 140_298_881
    assert sum(count(t) for t in model.tpavi) == 4 * 165_760


def test_live_detection_finds_unused_parameters():
    # CCC has no transformer layer: positions, and so the level embedding, are never used
    counts = count_parameters(build_model("avesformer-r18", stages="CCC"), size=64)
    assert counts.declared - counts.live == 3 * 256
    assert counts.parts["decoder"]["declared"] - counts.parts["decoder"]["live"] == 3 * 256


def test_live_detection_on_a_foreign_module():
    class Foreign(nn.Module):
        def __init__(self):
            super().__init__()
            self.used = nn.Linear(4, 4)
            self.unused = nn.Linear(4, 4)
            self.frozen = nn.Linear(4, 4).requires_grad_(False)

        def forward(self, image, audio):
            return self.used(self.frozen(image))

    model = Foreign()
    live = live_parameter_ids(model, torch.randn(2, 4), torch.randn(2, 4))
    assert live == {id(p) for p in (*model.used.parameters(), *model.frozen.parameters())}
    assert not any(p.requires_grad for p in model.frozen.parameters())  # flags restored


def test_reported_unused_parts_are_named():
    assert set(RELEASED) == {"avsegformer-r50", "avsbench-r50", "avsegformer-pvt", "avsbench-pvt", "ecmvae-pvt", "ecmvae-r50", "catr-pvt", "cavp-r50"}
