"""Speed paths are checked against eager's output; torch.compile runs on CPU (with inductor freezing)."""

import json
from pathlib import Path

import torch

from avsbench_kit import build_model
from avskit import cli
from avskit.analyses.profile import ProfileOptions, _speed_path_runner


def test_bf16_autocast_path_is_close_to_eager():
    # TTT: without the C layer, whose depthwise convolution runs per group in bf16 on an AVX2 CPU (6 s a forward)
    model = build_model("avesformer-r18", stages="TTT")
    image, audio = torch.randn(1, 3, 64, 64), torch.randn(1, 1, 96, 64)
    with torch.inference_mode():
        reference = model(image, audio)
        runner = _speed_path_runner(model.spec, model, image, audio, opts=ProfileOptions(dtype="bf16", size=64), device=torch.device("cpu"))
        out = runner.call()
    assert runner.path == "bf16"
    assert out.dtype == torch.bfloat16
    assert (out.float() - reference).abs().max() < 0.05 * reference.abs().max() + 1e-3
    assert model.visual_backbone.stem[0].weight.dtype == torch.float32  # eager model untouched


def test_compile_path_through_the_command(capsys, tmp_path):
    # the path (torch.compile with inductor freezing, checked against eager) on the docs' small model: inductor
    # takes about 90 s on a zoo model here, of which this test needs none
    tiny = str(Path(__file__).resolve().parents[1] / "examples" / "tiny_avs.py") + ":build[dim=32]"
    code = cli.main(["profile", tiny, "--size", "64", "--warmup", "1", "--iters", "2", "--compile",
                     "--results", str(tmp_path / "r.jsonl"), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    eager, compiled = report["results"]
    assert compiled["path"] == "compile"
    assert compiled["max_abs_diff"] < 1e-4
    assert compiled["prepare_s"] > 0 and compiled["speedup_vs_eager"] > 0
