"""Every zoo model and every variant-axis value runs forward at batch 1 and 2 with the right shape."""

import pytest
import torch

from avsbench_kit import UserError, build_model, make_spec
from avsbench_kit.registry import FUSIONS, QUERY_GENERATORS
from avsbench_kit.spec import BACKBONES, ZOO

VARIANTS = (
    [("avesformer-r18", {"qg": name}) for name in ("pqg", "qg", "bqg", "none")]
    + [("avesformer-r18", {"fusion": name}) for name in ("cross_attention", "dissipation", "tpavi", "cha", "sigmoid")]
    + [("avesformer-r18", {"stages": s}) for s in ("TTT", "TCT", "TTC", "CCC")]
    + [("avesformer-r18", {"queries": n}) for n in (8, 256)]
    + [("avesformer-r18", {"classes": 71})]
    + [("avsegformer-r50", {"qg": name}) for name in ("pqg", "bqg", "none")]
    + [("avsegformer-r50", {"backbone": "resnet18", "classes": 71})]
    + [("avsbench-r50", {"backbone": "resnet18", "classes": 71})]
)


@pytest.fixture(scope="module")
def r18():
    """One avesformer-r18 for the tests that only feed it inputs (a build takes a second)."""
    return build_model("avesformer-r18")


def run(model, image, audio):
    with torch.inference_mode():
        return model(image, audio)


def test_axes_cover_the_registries():
    assert set(QUERY_GENERATORS.names()) == {"pqg", "qg", "bqg", "none"}
    assert set(FUSIONS.names()) == {"cross_attention", "dissipation", "tpavi", "cha", "sigmoid"}
    assert set(BACKBONES) == {"resnet18", "resnet50", "pvt_v2_b5"}
    tested = {(k, str(v)) for _, o in VARIANTS for k, v in o.items()}
    for qg in QUERY_GENERATORS.names():
        assert ("qg", qg) in tested
    for fusion in FUSIONS.names():
        assert ("fusion", fusion) in tested


# ecmvae-pvt left out: ecmvae-r50 runs the same code (at 224x224, the only size ECMVAE is built for)
@pytest.mark.parametrize("name", [name for name in ZOO if name != "ecmvae-pvt"])
def test_zoo_model_batch_one_and_two(name, small_inputs):
    image, audio = small_inputs
    model = build_model(name)
    size = getattr(model, "frame_size", None) or 64
    if size != 64:
        image = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    both = run(model, image, audio)
    one = run(model, image[:1], audio[:1])
    assert both.shape == (2, 1, size, size)
    assert one.shape == (1, 1, size, size)
    assert torch.isfinite(both).all()
    # frames are independent samples: batch 1 gives what batch 2 gives for the same frame
    torch.testing.assert_close(one[0], both[0], rtol=1e-4, atol=1e-4)
    _declared_audio_paths_are_complete(model, image, audio)


def _declared_audio_paths_are_complete(model, image, audio):
    """Issue #28 item 4: patching every declared audio path with a donor run's tensors (the other
    frame's audio) reproduces the donor run's output. Zero-initialised weights (TPAVI's output
    projection) are filled first, so that the output depends on the audio and the check can fail."""
    from avsbench_kit.probes.pathways import completeness, declared_paths
    from avsbench_kit.probes.pathways import run as patched_run

    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 0 and not p.any():
                p.normal_(0, 0.05)
    paths = declared_paths(model)
    clean, _ = patched_run(model, image, audio, paths)
    donor_out, kept = patched_run(model, image, audio.flip(0), paths)
    assert (clean - donor_out).abs().max() > 1e-3  # the audio matters
    every, _ = patched_run(model, image, audio, paths, kept)
    assert completeness(every, donor_out) <= 1e-5


@pytest.mark.parametrize("name,overrides", VARIANTS, ids=lambda v: str(v))
def test_variant_forward(name, overrides, small_inputs):
    image, audio = small_inputs
    model = build_model(name, **overrides)
    classes = overrides.get("classes", 1)
    assert run(model, image, audio).shape == (2, classes, 64, 64)
    assert run(model, image[:1], audio[:1]).shape == (1, classes, 64, 64)


def test_full_resolution_224():
    model = build_model("avesformer-r50")
    image, audio = torch.randn(1, 3, 224, 224), torch.randn(1, 1, 96, 64)
    assert run(model, image, audio).shape == (1, 1, 224, 224)


def test_non_square_input():
    model = build_model("avsegformer-r50")
    assert run(model, torch.randn(1, 3, 96, 160), torch.randn(1, 1, 96, 64)).shape == (1, 1, 96, 160)


@pytest.mark.parametrize(
    "image_shape,audio_shape,message",
    [
        ((1, 3, 224, 200), (1, 1, 96, 64), "multiples of 32"),
        ((1, 1, 224, 224), (1, 1, 96, 64), "[B, 3, H, W]"),
        ((1, 3, 224, 224), (1, 96, 64), "[B, 1, 96, 64]"),
        ((2, 3, 64, 64), (1, 1, 96, 64), "batch"),
    ],
)
def test_wrong_input_shapes_are_user_errors(image_shape, audio_shape, message, r18):
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]")):
        r18(torch.randn(image_shape), torch.randn(audio_shape))


def test_audio_changes_the_output(r18):
    """The audio path is wired in: a different sound gives a different mask."""
    model = r18
    image = torch.randn(1, 3, 64, 64)
    a = run(model, image, torch.randn(1, 1, 96, 64))
    b = run(model, image, torch.randn(1, 1, 96, 64))
    assert not torch.allclose(a, b)


def test_spec_is_attached():
    model = build_model("avesformer-r50", stages="TTT")
    assert model.spec == make_spec("avesformer-r50", {"stages": "TTT"})
    assert [s.kind for s in model.decoder.stages] == ["T", "T", "T"]


def test_ecmvae_refuses_another_frame_size(small_inputs):
    model = build_model("ecmvae-r50")
    with pytest.raises(UserError, match="ECMVAE takes 224x224 frames only"):
        model(*small_inputs)
