"""avskit's parts against outputs of the released code, stored as test data (tests/data/released:
key names, shapes, the released outputs; weights and inputs come from the rule in released.py).

Issue #10's exactness bar (max |avskit - released| <= 1e-4): AVSegFormer's channel-attention mixer,
query generator and query decoder; the whole AVSegFormer and AVSBench models (#10), ECMVAE and CATR (#18).
"""

import pytest
import torch

from avsbench_kit import build_model, make_spec
from avskit.baselines.channel_attention import ChannelAttentionMixer

from released import check_release_logits, load, model_state, rule_state, rule_tensor


def test_channel_mixer_equals_the_released_crossmodalmixer():
    data = load("avsegformer_crossmodalmixer")
    mixer = ChannelAttentionMixer(256).eval()
    assert {k: list(v.shape) for k, v in mixer.state_dict().items()} == data["keys"]  # the release's names and shapes
    mixer.load_state_dict(rule_state(data["keys"]))
    inputs = {name: rule_tensor(name, shape, scale=data["input_scale"]) for name, shape in data["inputs"].items()}
    with torch.no_grad():
        out = mixer(inputs["input.feature_map"], inputs["input.audio"])
    expected = torch.tensor(data["output"]).reshape(data["output_shape"])
    assert (out - expected).abs().max() <= 1e-4
    assert expected.abs().max() > 0.1  # a real signal, not a collapsed gate


def test_query_generator_equals_the_released_attention_generator():
    from avskit.baselines.query_generators import AttentionQueryGenerator
    from avskit.baselines.released import query_generator_state

    data = load("avsegformer_query_generator")
    qg = AttentionQueryGenerator(256, 300).eval()
    mapped = query_generator_state(rule_state(data["keys"]))
    assert set(mapped) == set(qg.state_dict())  # every parameter mapped, nothing left over
    qg.load_state_dict(mapped)
    audio = rule_tensor("input.audio_token", data["inputs"]["input.audio_token"], scale=data["input_scale"])
    expected = torch.tensor(data["output"]).reshape(10, 256)
    with torch.no_grad():
        out = qg(audio)[0, ::30]
        assert (out - expected).abs().max() <= 1e-4
        qg.layers[0]["cross_attn"].norm.weight.mul_(-1)  # a wrong map must show: flip one norm
        assert (qg(audio)[0, ::30] - expected).abs().max() > 1e-3


def test_query_decoder_equals_the_released_decoder():
    from avskit.baselines.avsegformer import QueryDecoder
    from avskit.baselines.released import query_decoder_state

    data = load("avsegformer_query_decoder")
    decoder = QueryDecoder(256).eval()
    mapped = query_decoder_state(rule_state(data["keys"]))
    assert set(mapped) == set(decoder.state_dict())
    decoder.load_state_dict(mapped)
    query, memory = (rule_tensor(name, shape, scale=data["input_scale"]) for name, shape in data["inputs"].items())
    expected = torch.tensor(data["output"]).reshape(10, 256)
    with torch.no_grad():
        out = decoder(query, memory)[0, ::30]
    assert (out - expected).abs().max() <= 1e-4


# Whole released models: (stored released output, avskit model, --set values). S4 and MS3 share one
# file per model: the releases build the same network for both (same keys, same output).
WHOLE_MODELS = [
    ("avsegformer_r50_s4", "avsegformer-r50", {}),
    ("avsegformer_r50_avss", "avsegformer-r50", {"classes": 71}),
    ("avsegformer_pvt_s4", "avsegformer-pvt", {}),
    ("avsegformer_pvt_avss", "avsegformer-pvt", {"classes": 71}),
    ("avsbench_r50_s4", "avsbench-r50", {}),
    ("avsbench_r50_avss", "avsbench-r50", {"classes": 71}),
    ("avsbench_pvt_s4", "avsbench-pvt", {}),
    ("avsbench_pvt_avss", "avsbench-pvt", {"classes": 71}),
]


def released_files(data: dict, folder) -> dict[str, str]:
    """The stored key list's weights, made by the rule and saved in the released format(s)."""
    path = folder / "released.pth"
    torch.save(model_state(data["keys"]), path)
    sets = {"weights": str(path)}
    if "vggish_keys" in data:  # AVSBench keeps VGGish in its own file
        torch.save(model_state(data["vggish_keys"]), folder / "vggish.pth")
        sets["vggish_weights"] = str(folder / "vggish.pth")
    return sets


def released_inputs(data: dict) -> tuple[torch.Tensor, torch.Tensor]:
    shapes = data["inputs"]
    return (rule_tensor("input.image", shapes["input.image"], scale=data["input_scale"]),
            rule_tensor("input.audio_log_mel", shapes["input.audio_log_mel"], scale=data["input_scale"]))


@pytest.mark.parametrize("stored,model_name,overrides", WHOLE_MODELS, ids=[w[0] for w in WHOLE_MODELS])
def test_whole_model_equals_the_released_code(tmp_path, stored, model_name, overrides):
    """Issue #10's bar: the released checkpoint format loaded through weights= gives the released
    logits to 1e-4 (max abs). The stored outputs came from the released code run in float64 in a
    scratch folder; avskit runs in float64 here too, so the bar measures the computation, not float32
    summation order. In float32 (as users run it) the same comparison stays within 1e-3, with logits
    of std 2-18 (observed 4e-5 to 1.3e-4)."""
    data = load(stored)
    model = build_model(model_name, **released_files(data, tmp_path), **overrides)
    report = model.weights_report
    assert report.format == ("avsegformer-release" if model_name.startswith("avsegformer") else "avsbench-release")
    image, audio = released_inputs(data)
    expected = torch.tensor(data["output"], dtype=torch.float64)
    with torch.no_grad():
        out32 = model(image, audio)
        out64 = model.double()(image.double(), audio.double())
    assert list(out64.shape) == data["output_shape"]
    diff64 = (out64.flatten()[:: data["step"]] - expected).abs().max().item()
    diff32 = (out32.double().flatten()[:: data["step"]] - expected).abs().max().item()
    print(f"{stored}: max abs diff float64 {diff64:.2g}, float32 {diff32:.2g}, logit std {expected.std():.3g}")
    assert diff64 <= 1e-4
    assert diff32 <= 1e-3
    assert expected.std() > 1.0  # logits of a real size, not a collapsed output


# ECMVAE and CATR (issue #18): the stored outputs came from the releases run in a scratch folder with the
# patches listed in each file ("patches"); "counts" holds what that run measured of the release (its live
# count: parameters the test-time output depends on by autograd, VGGish apart). CATR's 2048-wide run uses a
# 96 frame (resized to 192 inside, its output at 96) to keep the suite fast; the 256-wide run is the
# release's literal pipeline (224 -> 448 -> 224).
RELEASE_MODELS = [
    ("ecmvae_pvt_mean", "ecmvae-pvt", {}),
    ("ecmvae_r50_mean", "ecmvae-r50", {}),
    ("catr_pvt_ffn256_224", "catr-pvt", {}),
    ("catr_pvt_ffn2048_96", "catr-pvt", {"temporal_ffn": 2048}),
]


@pytest.mark.parametrize("stored,model_name,overrides", RELEASE_MODELS, ids=[w[0] for w in RELEASE_MODELS])
def test_ecmvae_and_catr_equal_the_released_code(tmp_path, stored, model_name, overrides):
    from avsbench_kit.profiling.params import count_parameters

    data = load(stored)
    model = build_model(model_name, **released_files(data, tmp_path), **overrides)
    family = model.spec.family
    assert model.weights_report.format == f"{family}-release"
    image, audio = released_inputs(data)
    # the live count (what `avskit params` reports) equals the release's, VGGish added
    counts = count_parameters(model, size=224 if family == "ecmvae" else 96)
    assert counts.live == data["counts"]["live"] + data["counts"]["vggish"]
    expected = torch.tensor(data["output"], dtype=torch.float64)
    step = data["step"]
    with torch.no_grad():
        out32 = model(image, audio)
        model.double()
        out64 = model(image.double(), audio.double())
    assert list(out64.shape[-2:]) == data["output_shape"][-2:] and out64.shape[:2] == (1, 1)
    check_release_logits(stored, data, out64, out32)
    assert expected.std() > 1.0
    if stored == "ecmvae_r50_mean":  # latent=sample draws as the release does: the same eps from the same seed
        sample = load("ecmvae_r50_sample")
        model.sample = True
        with torch.no_grad():
            torch.manual_seed(1234)
            drawn = model(image.double(), audio.double()).flatten()[::step]
        reference = torch.tensor(sample["output"], dtype=torch.float64)
        assert (drawn - reference).abs().max() <= 1e-4
        assert (reference - expected).abs().max() > 1e-3  # the draw matters: sampled differs from the mean


def test_catr_attention_sites_and_the_dissipated_audio_attention_at_t1():
    """The probe sees CATR's attention (its nn.MultiheadAttention sites, as avskit's attention): at T=1 the
    video-to-audio cross-attention has one key, so it is dissipated; the score's two-way softmax is no site."""
    from avskit.analyses.dissipation import probe_sites, synthetic_sample

    sites, _ = probe_sites(make_spec("catr-pvt", {"input_upsample": False}), synthetic_sample(64))
    by_site = {s["site"]: s for s in sites if not s["site"].startswith("visual_backbone")}
    expected = ({f"spatial_encoder.{n}.self_attn" for n in range(3)}
                | {f"temporal_encoder.layers.{n}.{part}" for n in range(3) for part in ("encoder.self_attn", "av_atten", "va_atten")}
                | {f"decoder.layers.{n}.{part}" for n in range(3) for part in ("self_attn", "cross_attn")})
    assert set(by_site) == expected
    assert all(by_site[f"temporal_encoder.layers.{n}.av_atten"]["dissipated"] for n in range(3))
    assert by_site["temporal_encoder.layers.0.av_atten"]["n_keys"] == 1
    assert not any(by_site[s]["dissipated"] for s in expected if not s.endswith("av_atten"))
