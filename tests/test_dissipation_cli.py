"""`avskit dissipation`: the acceptance verdicts, figures with provenance, and bad input."""

import json

import numpy as np
import pytest
import soundfile
from PIL import Image

from avsbench_kit.results import load_records

from helpers import run


def flagged_sites(capsys, *args):
    code, out, err = run(capsys, "dissipation", *args, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert {"site", "kind", "n_queries", "n_keys", "entropy_norm", "row_diversity", "dissipated"} <= set(report["sites"][0])
    return {s["site"] for s in report["sites"] if s["dissipated"]}, report


def test_default_avesformer_has_no_flagged_site(capsys):
    flagged, report = flagged_sites(capsys, "avesformer-r18")
    assert flagged == set()
    assert "synthetic S4 frame" in report["input"]


def test_raw_single_token_cross_attention_is_flagged(capsys):
    flagged, _ = flagged_sites(capsys, "avesformer-r18", "--set", "fusion=dissipation")
    assert flagged and all(".fusion.cross_attn" in site for site in flagged)


def test_avsegformer_query_generator_is_flagged(capsys):
    flagged, _ = flagged_sites(capsys, "avesformer-r18", "--set", "qg=qg")
    # every cross-attention to the single audio token; the identical audio value each query receives
    # can also make later self-attention rows alike, but nothing outside QG is flagged
    assert {f"query_generator.layers.{i}.cross_attn.attn" for i in range(6)} <= flagged
    assert all(site.startswith("query_generator.") for site in flagged)


def test_user_image_and_audio(capsys, tmp_path):
    image = tmp_path / "frame.png"
    Image.fromarray((np.random.default_rng(0).random((120, 160, 3)) * 255).astype(np.uint8)).save(image)
    wav = tmp_path / "clip.wav"
    soundfile.write(wav, (0.3 * np.sin(2 * np.pi * 440 * np.arange(22050) / 22050)).astype(np.float32), 22050)
    code, out, err = run(capsys, "dissipation", "avesformer-r18", "--image", str(image), "--audio", str(wav), "--json")
    assert code == 0, err
    assert "frame.png" in json.loads(out)["input"]


@pytest.mark.parametrize("given,expected", [
    ("image", ("frame.png", "the default synthetic sound")),
    ("audio", ("the default synthetic S4 frame", "first 0.96 s of")),
])
def test_one_half_given_the_other_is_the_default(capsys, tmp_path, given, expected):
    image = tmp_path / "frame.png"
    Image.fromarray(np.zeros((64, 64, 3), dtype=np.uint8)).save(image)
    wav = tmp_path / "clip.wav"
    soundfile.write(wav, (0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.float32), 16000)
    args = ["--image", str(image)] if given == "image" else ["--audio", str(wav)]
    code, out, err = run(capsys, "dissipation", "avesformer-r18", *args)  # the figures' provenance: the test above
    assert code == 0, err
    said = " ".join(out.split())
    assert all(part in said for part in expected)  # the console names the input used


@pytest.mark.parametrize("case,message", [
    ("bad-image", "is not a readable image"),
    ("missing-audio", "--audio: no such file"),
    ("bad-audio", "is not a readable sound file"),
    ("short-audio", "shorter than one 0.96 s"),
])
def test_bad_inputs(capsys, tmp_path, case, message):
    image = tmp_path / "frame.png"
    Image.fromarray(np.zeros((64, 64, 3), dtype=np.uint8)).save(image)
    wav = tmp_path / "clip.wav"
    soundfile.write(wav, np.zeros(16000, dtype=np.float32), 16000)
    args = {"bad-image": ["--image", str(tmp_path / "clip.wav"), "--audio", str(wav)],
            "missing-audio": ["--image", str(image), "--audio", str(tmp_path / "nope.wav")],
            "bad-audio": ["--image", str(image), "--audio", str(image)],
            "short-audio": ["--image", str(image), "--audio", str(_short(tmp_path))]}[case]
    code, out, err = run(capsys, "dissipation", "avesformer-r18", *args, "--out", str(tmp_path / "figs"))
    assert code == 2 and out == ""
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("warning:")]
    assert len(lines) == 1 and message in lines[0], err
    assert not (tmp_path / "figs").exists()


def _short(tmp_path):
    path = tmp_path / "short.wav"
    soundfile.write(path, np.zeros(8000, dtype=np.float32), 16000)
    return path


SUMMARY_KEYS = {"n", "degenerate", "area", "energy_ratio", "ciou", "ciou_area", "pointing_hit", "roc_auc", "ciou@0.5", "ciou_area@0.5", "auc"}


def _frames_report(capsys, tmp_path, *args):
    store = tmp_path / "records.jsonl"
    code, out, err = run(capsys, "dissipation", "avesformer-r18", *args, "--data", "synthetic:s4", "--frames", "16", "--size", "64",
                         "--videos", "40", "--results", str(store), "--json")
    assert code == 0, err
    return json.loads(out), load_records(store)


def test_many_frames_give_dissipation_shares_and_localisation_per_site(capsys, tmp_path):
    """Issue #16 item 2: the probe over N test frames; the fusion sites' maps scored against the
    sounding object; with fusion=dissipation (one audio key) every fusion map is degenerate."""
    report, records = _frames_report(capsys, tmp_path)
    assert report["frames"] == 16 and report["subset"] == "s4"
    fusion = [s for s in report["sites"] if ".fusion." in s["site"]]
    assert fusion and all(isinstance(s["localisation"], dict) for s in fusion)
    for site in fusion:
        loc = site["localisation"]
        assert loc["maps"] == 16 and len(loc["query_roc_auc"]) == 16  # one map per PQG query
        chosen = loc["selected"]  # chosen on the val split's frames, scored on the test frames
        assert 0 <= chosen["query"] < 16 and chosen["chosen_on"] == "val" and chosen["val_frames"] == 16
        assert set(loc["mean"]) == SUMMARY_KEYS and set(chosen) == SUMMARY_KEYS | {"query", "chosen_on", "val_frames", "val_roc_auc"}
        assert loc["mean"]["n"] == 16 and loc["mean"]["degenerate"] == 0
        assert loc["mean"]["energy_ratio"]["mean"] > 0 and set(loc["mean"]["energy_ratio"]) == {"mean", "ci95", "n"}
        assert 0 <= site["dissipated_share"] <= 1 and site["row_diversity"]["n"] == 16
    others = [s for s in report["sites"] if ".fusion." not in s["site"]]
    assert all(s["localisation"] is None for s in others)  # not audio-to-visual sites: not scored
    assert [r["kind"] for r in records] == ["attention_frames"] and records[0]["value"] == 16
    assert records[0]["provenance"]["data"] == "synthetic:s4" and records[0]["sites"] == report["sites"]

    dissipated, _ = _frames_report(capsys, tmp_path, "--set", "fusion=dissipation")
    fusion = [s for s in dissipated["sites"] if ".fusion." in s["site"]]
    assert fusion and all(s["dissipated_share"] == 1.0 for s in fusion)
    assert all(s["localisation"]["mean"]["degenerate"] == 16 and s["localisation"]["mean"]["energy_ratio"]["mean"] is None for s in fusion)


def test_channel_attention_has_no_spatial_map(capsys, tmp_path):
    report, _ = _frames_report(capsys, tmp_path, "--set", "fusion=cha")
    fusion = [s for s in report["sites"] if ".fusion" in s["site"]]
    assert fusion and all(s["localisation"] == "no spatial map" for s in fusion)


def test_many_frames_refuse_single_frame_options(capsys, tmp_path):
    code, out, err = run(capsys, "dissipation", "avesformer-r18", "--data", "synthetic:s4", "--image", "x.png")
    assert code == 2 and out == "" and "--image, --audio and --out are for one frame" in err
    code, out, err = run(capsys, "dissipation", "avesformer-r18", "--data", str(tmp_path / "nope"), "--subset", "s4")
    assert code == 2 and out == ""


def test_the_selected_query_is_chosen_on_val_frames_not_on_the_test_frames():
    """Query 0 points best on the test frames, queries 1 and 2 tie on the val frames: query 1 (the
    lower index of the tie) is reported, with its test scores; the test frames never choose."""
    import torch

    from avsbench_kit.probes.localisation import score_map
    from avskit.analyses.attention_frames import _summary, select_queries

    mask = torch.zeros(8, 8)
    mask[2:5, 2:5] = 1
    good, bad = mask.clone() + 0.01 * torch.arange(64).view(8, 8), 1 - mask + 0.01 * torch.arange(64).view(8, 8)
    val_sites = [{"site": "fusion", "call": 0, "localisation": {"maps": 3, "query_roc_auc": [0.6, 0.9, 0.9]}},
                 {"site": "single", "call": 0, "localisation": {"maps": 1, "query_roc_auc": [0.7]}}]
    picks = select_queries(val_sites, 16)
    assert picks == {("fusion", 0): {"query": 1, "chosen_on": "val", "val_frames": 16, "val_roc_auc": 0.9}}  # one map: nothing to choose
    entry = {"site": "fusion", "call": 0, "kind": "softmax", "n_queries": 64, "n_keys": 3, "orientation": "keys", "why": None,
             "dissipated": [False] * 2, "entropy": [0.5] * 2, "diversity": [0.1] * 2,
             "maps": [[score_map(good, mask)] * 2, [score_map(bad, mask)] * 2, [score_map(bad, mask)] * 2]}
    loc = _summary(entry, picks[("fusion", 0)])["localisation"]
    assert loc["query_roc_auc"][0] > loc["query_roc_auc"][1]  # on the test frames query 0 is the best ...
    assert loc["selected"]["query"] == 1 and loc["selected"]["roc_auc"]["mean"] == loc["query_roc_auc"][1]  # ... yet query 1 is reported
    assert "best" not in loc  # no in-sample best
