"""CAVP (issue #30) against its release: the stored outputs in tests/data/released/cavp_*.json came from the
released code (cyh-0/CAVP) run on CPU with the patches listed in each file; weights and inputs come from the
rule in released.py. The model's outputs, its front end and its sigmoid attention (a wrong-family file: test_weights_files.py)."""

import json
import math

import pytest
import torch

from avsbench_kit import build_model, make_spec
from avsbench_kit.audio_cavp import clip_inputs, log_mel
from avsbench_kit.profiling.params import count_parameters

from released import check_release_logits, load, model_state, noise_tensor, rule_tensor


@pytest.fixture(scope="module")
def s4_file(tmp_path_factory):
    """The S4 checkpoint in the release's format ({'model': DDP state dict}, 'module.' keys), weights by the rule."""
    data = load("cavp_r50_s4")
    path = tmp_path_factory.mktemp("cavp") / "cavp-s4.pth"
    state = model_state(data["keys"])
    torch.save({"model": {f"module.{k}": v for k, v in state.items()}, "epoch": 59, "iteration": 0}, path)
    return path, state


def _inputs(data):
    return (rule_tensor("input.image", data["inputs"]["input.image"], scale=data["input_scale"]),
            rule_tensor("input.audio_log_mel", data["inputs"]["input.audio_log_mel"], scale=data["input_scale"]))


@pytest.mark.parametrize("stored", ["cavp_r50_s4", "cavp_r50_avss"])
def test_cavp_equals_the_released_code(tmp_path, s4_file, stored):
    """Release-exact logits in float64 (<= 1e-4) through --set weights= on a release-format file; the binary
    form's one logit is the release's object-minus-background (its sign is the release's argmax)."""
    data = load(stored)
    path, state = s4_file
    overrides = {}
    if stored.endswith("avss"):  # the AVSS release differs in its classifier only: the same rule for every other key
        head = model_state({k: v for k, v in data["keys"].items() if k.startswith("segment.upsample.classifier.")})
        path = tmp_path / "cavp-avss.pth"
        torch.save({"model": {f"module.{k}": v for k, v in (state | head).items()}}, path)
        overrides = {"classes": 71}
    model = build_model("cavp-r50", weights=str(path), **overrides)
    assert model.weights_report.format == "cavp-release"
    image, audio = _inputs(data)
    expected = torch.tensor(data["output"], dtype=torch.float64)
    from avsbench_kit.probes.capture import capture_attention

    with torch.no_grad():
        out32 = model.release_logits(image, audio)
        model.double()
        with capture_attention(model) as recorder:
            out64 = model.release_logits(image.double(), audio.double())
        ours = model(image.double(), audio.double())
    # the probe's view of the sigmoid map is the release's attn_v (pixels <- audio, per head)
    attention = recorder.find("fusion.blocks.0.attn")[0].weights
    assert list(attention.shape) == data["attention_shape"]
    assert (attention.double().flatten()[::97] - torch.tensor(data["attention"], dtype=torch.float64)).abs().max() <= 1e-6
    assert list(out64.shape) == data["output_shape"]
    check_release_logits(stored, data, out64, out32)
    assert expected.std() > 0.3  # logits that vary (std 0.35 for S4, 1.2 for AVSS under the rule), not a collapsed output
    if stored.endswith("s4"):
        assert ours.shape == (1, 1, 224, 224) and torch.equal(ours, out64[:, 1:2] - out64[:, 0:1])
    else:
        assert torch.equal(ours, out64)


def test_cavp_counts_equal_the_release():
    """Declared and live counts equal the release's (live: what the logits depend on by autograd);
    pos_embed_v/a and the audio network's cls_head are declared, not live."""
    data = load("cavp_r50_s4")
    model = build_model("cavp-r50")
    counts = count_parameters(model, size=64)  # what the logits depend on does not depend on the frame size
    assert counts.declared == data["counts"]["declared"]
    assert counts.live == data["counts"]["called"]
    unused = counts.declared - counts.live
    assert unused == 128 * 128 * 304 + 304 + (304 * 2 + 2)  # pos_embed_v, pos_embed_a, cls_head
    assert counts.parts["fusion"]["declared"] - counts.parts["fusion"]["live"] == 128 * 128 * 304 + 304


def test_cavp_front_end_equals_the_release():
    """The crop (10 s around the middle, a 5 s clip's second half tiled), the split into frames and the
    log-mel in the release's dB scale, against the release's own transform run on the same waveforms."""
    data = load("cavp_front_end")
    for case in data["cases"].values():
        clip = noise_tensor(f"input.waveform_{case['seconds']}s", [1, 16000 * case["seconds"]], std=0.1)
        out = clip_inputs(clip, case["pieces"])
        assert list(out.shape) == case["shape"]
        expected = torch.tensor(case["output"])
        assert (out.flatten()[:: case["step"]] - expected).abs().max() <= 1e-5
    # the quirk, said as a fact: frame 0 of a 5 s clip hears the clip's second half (from 2.5 s), not its start
    clip = noise_tensor("clip", [1, 80000], std=0.1)
    assert torch.equal(clip_inputs(clip)[0], log_mel(clip[0, 40000:56000]))


def test_sigmoid_fusion_map_is_probed_and_read_right():
    """The probe records CAVP's fusion as sigmoid attention over one key: not dissipated at random
    weights (its pixels weigh the audio differently), and dissipated once every pixel's score is equal."""
    from avskit.analyses.dissipation import capture, synthetic_sample

    spec = make_spec("cavp-r50")
    sample = synthetic_sample(64)
    record = [r for r in capture(spec, sample).records if r.site == "fusion.blocks.0.attn"]
    assert [r.kind for r in record] == ["sigmoid", "sigmoid"]  # pixels <- audio, then the discarded audio <- pixels
    pixels = record[0]
    assert (pixels.n_queries, pixels.n_keys) == (16 * 16, 1) and not pixels.metrics.dissipated
    assert pixels.metrics.row_diversity > 0.01
    flat = build_model("cavp-r50")
    with torch.no_grad():
        flat.fusion.blocks[0].attn.q_proj.weight.zero_()  # every score 0: sigmoid 0.5 at every pixel
    from avsbench_kit.probes.capture import capture_attention

    with torch.inference_mode(), capture_attention(flat) as recorder:
        flat(sample.image, sample.audio("cavp"))
    constant = recorder.find("fusion.blocks.0.attn")[0]
    assert constant.metrics.dissipated and math.isclose(float(constant.weights.mean()), 0.5, abs_tol=1e-6)


def test_cavp_reads_its_own_audio_from_the_datasets(tmp_path):
    """A synthetic frame's input through CAVP's front end; an AVSBench-layout root read from its wav."""
    from avsbench_kit.data.frames import SyntheticFrames

    frames = SyntheticFrames("s4", "test", videos=8, size=64, front_end="cavp")
    image, audio, mask, meta = frames[0]
    assert audio.shape == (1, 96, 64) and torch.equal(audio, log_mel(torch.from_numpy(frames._frame(0).waveform)))
    assert not torch.equal(audio, SyntheticFrames("s4", "test", videos=8, size=64)[0][1])
    assert json.dumps(meta)
    import soundfile

    from avsbench_kit.data.avsbench import read_wav_cavp

    wave = noise_tensor("wav", [80000, 2], std=0.1)  # 5 s, stereo, at 16 kHz
    soundfile.write(tmp_path / "clip.wav", wave.numpy(), 16000, subtype="FLOAT")
    assert torch.allclose(read_wav_cavp(tmp_path / "clip.wav"), clip_inputs(wave.T.contiguous())[:, 0], atol=1e-6)
