"""The avskit command line: JSON schemas, help, and one-line errors with exit status 2."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from avsbench_kit.results import load_records

from helpers import run

ROOT = Path(__file__).resolve().parents[1]


def test_models_json(capsys):
    code, out, _ = run(capsys, "models", "--json")
    assert code == 0
    info = json.loads(out)
    assert [m["name"] for m in info["models"]] == ["avesformer-r18", "avesformer-r50", "avsegformer-r50", "avsbench-r50",
                                                   "avsegformer-pvt", "avsbench-pvt", "ecmvae-pvt", "ecmvae-r50", "catr-pvt", "cavp-r50"]
    assert set(info["axes"]["fusion"]) == {"cross_attention", "dissipation", "tpavi", "cha", "sigmoid"}
    assert set(info["axes"]["qg"]) == {"pqg", "qg", "bqg", "none"}
    assert {m["name"]: m["reported_params_m"] for m in info["models"]}["avesformer-r18"] == 108


def test_models_table(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0 and "avsegformer-r50" in out and "variant axes" in out


def test_params_json_schema(capsys):
    code, out, err = run(capsys, "params", "avsegformer-r50", "--size", "64", "--json")
    assert code == 0
    report = json.loads(out)
    assert {"model", "declared", "live", "trainable", "reported", "modules"} <= set(report)
    assert report["live"] == report["released"]["live"] == 126_737_216
    assert report["reported"] == {"params_m": 151, "source": "paper Table 3"}
    assert report["modules"]["audio_backbone"] == {"declared": 72_141_184, "live": 72_141_184, "trainable": 0}
    assert sum(part["declared"] for part in report["modules"].values()) == report["declared"]
    assert "RANDOM weights" in err  # the loud notice goes to stderr, never into the JSON


def test_params_with_overrides_table(capsys):
    code, out, _ = run(capsys, "params", "avesformer-r50", "--set", "qg=qg", "--size", "64")
    assert code == 0
    assert "avesformer-r50[qg=qg,queries=300]" in out
    assert "reported (paper Table 6): 131M" in out


def test_demo_json(capsys):
    code, out, _ = run(capsys, "demo", "--size", "64", "--json")
    assert code == 0
    rows = json.loads(out)["models"]
    assert [r["model"] for r in rows] == ["avesformer-r18", "avesformer-r50", "avsegformer-r50", "avsbench-r50", "avsegformer-pvt", "avsbench-pvt",
                                          "ecmvae-pvt", "ecmvae-r50", "catr-pvt", "cavp-r50"]
    assert all(r["output_shape"] == [1, 1, r["size"], r["size"]] for r in rows)
    assert [r["size"] for r in rows] == [64] * 6 + [224, 224, 64, 64]  # ECMVAE is built for 224x224 frames only
    assert all(r["live"] <= r["declared"] for r in rows)


@pytest.mark.parametrize(
    "args,message",
    [
        (["params", "nope"], "unknown model 'nope'"),
        (["params", "avesformer-r50", "--set", "foo=1"], "unknown override key 'foo'"),
        (["params", "avesformer-r50", "--set", "stages=CXZ"], "stages='CXZ' is not accepted"),
        (["params", "avesformer-r50", "--set", "queries=0"], "queries='0' is not accepted"),
        (["params", "avesformer-r50", "--set", "fusion=nonsense"], "fusion='nonsense' is not accepted"),
        (["params", "avesformer-r50", "--set", "fusion"], "--set expects key=value"),
        (["params", "avsbench-r50", "--set", "qg=pqg"], "qg does not apply to avsbench-r50"),
        (["params", "avesformer-r50", "--set", "vggish_weights=/nonexistent.pth"], "no such file"),
        (["params", "avesformer-r50", "--size", "100"], "multiples of 32 (e.g. 224), got 100x100"),
        (["params", "avesformer-r50", "--size", "8"], "--size"),
        (["params", "avesformer-r50", "--bogus"], "No such option"),
        (["params"], "Missing argument"),
        (["nosuchcommand"], "No such command"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, args, message):
    code, out, err = run(capsys, *args)
    assert code == 2
    assert out == ""
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("warning:")]
    assert len(lines) == 1, err
    assert lines[0].startswith("avskit: error: ") and message in lines[0]
    assert "Traceback" not in err


@pytest.mark.parametrize("args", [[], ["--help"], ["params", "--help"]])
def test_help(capsys, args):
    code, out, _ = run(capsys, *args)
    assert code == 0
    assert "Usage" in out
    if args[:1] == ["params"]:
        assert "Examples" in out and "--set" in out


def test_script_exit_status_in_a_real_process():
    proc = subprocess.run(
        [sys.executable, "-m", "avskit", "params", "avesformer-r50", "--set", "stages=CXZ"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines()[-1].startswith("avskit: error: stages=")
    assert "Traceback" not in proc.stderr


def test_profile_json_schema_and_record(capsys, tmp_path):
    store = tmp_path / "records.jsonl"
    trace = tmp_path / "trace.json"
    code, out, err = run(capsys, "profile", "avesformer-r18", "avsbench-r50", "--size", "64", "--warmup", "1", "--iters", "3",
                         "--channels-last", "--results", str(store), "--trace", str(trace), "--plot", str(tmp_path / "lat.png"), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert {"results", "env", "peak_gflops"} <= set(report)
    assert report["env"]["threads"] >= 1 and report["env"]["device"] == "cpu"
    results = report["results"]
    assert [(r["model"], r["path"]) for r in results] == [
        ("avesformer-r18", "eager"), ("avesformer-r18", "channels_last"), ("avsbench-r50", "eager"), ("avsbench-r50", "channels_last")]
    for r in results:
        assert {"model", "spec", "latency_ms", "ratio", "params", "flops", "gflops_per_s", "utilization", "coverage", "modules"} <= set(r)
        assert set(r["latency_ms"]) == {"median", "mean", "iqr", "p90", "n"} and r["latency_ms"]["n"] == 3
        assert len(r["samples_ms"]) == 3 and sorted(r["samples_ms"])[1] == pytest.approx(r["latency_ms"]["median"], abs=1e-3)
        assert r["flops"] > 0 and 0 < r["utilization"]
    assert results[0]["ratio"] == 1.0
    eager = results[0]
    assert 0.5 < eager["coverage"] < 1.5  # tiny inputs on a shared machine; the 224 acceptance run is in the docs
    assert {m["name"] for m in eager["modules"] if m["depth"] == 1} == set(build_model_parts("avesformer-r18"))
    assert all({"name", "latency_ms", "share", "params", "flops"} <= set(m) for m in eager["modules"])
    fast = results[1]
    assert fast["max_abs_diff"] < 1e-3 and fast["modules"] == [] and fast["speedup_vs_eager"] > 0
    records = load_records(store)
    assert len(records) == 4 and records[0]["metric"] == "latency_ms" and records[0]["provenance"]["path"] == "eager"
    assert records[1]["provenance"]["threads"] == report["env"]["threads"]
    assert json.loads(trace.read_text())["traceEvents"]
    assert all(len(r["samples_ms"]) == 3 for r in records)  # every timed round is kept in the store
    from PIL import Image

    plot = Image.open(tmp_path / "lat.png")
    assert report["plot"] == str(tmp_path / "lat.png") and plot.format == "PNG" and plot.size[1] > 300


def build_model_parts(name):
    from avsbench_kit import build_model

    return build_model(name).parts


@pytest.mark.parametrize(
    "args,message",
    [
        (["--device", "cuda"], "no CUDA device is available"),
        (["--device", "tpu"], "--device 'tpu' is not accepted"),
        (["--batch", "0"], "--batch must be at least 1"),
        (["--dtype", "fp8"], "--dtype 'fp8' is not accepted; choose one of: fp32, bf16, fp16"),
        (["--cuda-graphs"], "--cuda-graphs needs --device cuda"),
        (["--size", "100"], "--size must be a multiple of 32"),
        (["--iters", "1"], "--iters must be at least 2"),
        (["--trace", "/nonexistent-avskit-dir/trace.json"], "--trace: directory /nonexistent-avskit-dir does not exist"),
        (["--results", "/proc/records.jsonl"], "--results: cannot write /proc/records.jsonl"),
        (["--plot", "lat.txt"], "--plot lat.txt: give a file ending in .png, .svg or .pdf"),
        (["--plot", "/nonexistent-avskit-dir/lat.png"], "--plot: directory /nonexistent-avskit-dir does not exist"),
    ],
)
def test_profile_bad_input(capsys, args, message):
    code, out, err = run(capsys, "profile", "avesformer-r18", *args)
    assert code == 2 and out == ""
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("warning:")]
    assert len(lines) == 1 and message in lines[0], err


@pytest.mark.parametrize("name", ["cli", "baselines", "analyses"])
def test_one_copy_of_each_module(monkeypatch, name):
    """The checkout's top-level pieces are modules of avskit; their bare names are refused (a second
    copy would register every part twice)."""
    import importlib

    monkeypatch.syspath_prepend(str(ROOT))
    with pytest.raises(ImportError, match=f"import avskit.{name}"):
        importlib.import_module(name)
    assert importlib.import_module(f"avskit.{name}").__name__ == f"avskit.{name}"


def test_console_headers_are_short_and_keep_reported_apart():
    from avskit.commands.console import short_header

    assert short_header("ratio to avesformer-r50, cpu (measured)") == "cpu ratio\n(here)"
    assert short_header("ratio to avesformer-r50 (reported)") == "ratio\n(paper)"
    assert short_header("latency ms, RTX 3090 (reported)") == "RTX ms\n(paper)"
    assert short_header("latency ms, cuda (measured)") == "cuda ms\n(here)"
    assert short_header("model") == "model"
