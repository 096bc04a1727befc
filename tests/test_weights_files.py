"""weights=: the formats a whole-model file may come in, and every wrong file as one line, exit 2,
no output file (issue #10). Released-format files are made from the stored key lists by the rule
in released.py; the equality of their outputs with the released code's is tests/test_released_outputs.py."""

import json
import os
from pathlib import Path
from typing import NamedTuple

import pytest
import torch

from avsbench_kit import UserError, build_model
from avsbench_kit.checkpoints import CHECKPOINT_FORMAT, trainable_state
from avsbench_kit.results import load_records

from helpers import run
from released import load, model_state


class Result(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def avskit(capsys, monkeypatch):
    """``avskit ARGS`` in-process from the folder ``cwd`` (the exit status and one-line errors of a real
    process are tests/test_cli.py's)."""
    def call(*args: str, cwd: Path) -> Result:
        monkeypatch.chdir(cwd)
        return Result(*run(capsys, *args))

    return call


def one_line_error(result: Result, *fragments: str) -> str:
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def avsegformer_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("released")
    path = folder / "AVSegFormer_res50_s4.pth"
    torch.save(model_state(load("avsegformer_r50_s4")["keys"]), path)
    yield path
    path.unlink()  # 0.6 GB


def test_wrappers_and_module_prefix_are_unwrapped(tmp_path):
    """{'state_dict': ...}, {'model': ...} and a module. prefix (DataParallel) all load."""
    torch.manual_seed(0)
    state = build_model("avesformer-r18").state_dict()
    for name, obj in (("bare", state), ("sd", {"state_dict": state}), ("model", {"model": state}),
                      ("module", {"state_dict": {f"module.{k}": v for k, v in state.items()}})):
        torch.save(obj, tmp_path / f"{name}.pth")
        model = build_model("avesformer-r18", weights=str(tmp_path / f"{name}.pth"))
        assert model.weights_report.format == "avskit-state-dict"
        torch.testing.assert_close(model.state_dict()["mask_head.classifier.4.weight"], state["mask_head.classifier.4.weight"])


def test_avskit_checkpoint_loads_and_names_its_model(tmp_path):
    torch.manual_seed(1)
    trained = build_model("avesformer-r18")
    state = {"format": CHECKPOINT_FORMAT, "model": trainable_state(trained), "step": 7,
             "run": {"spec": trained.spec.to_dict(), "seed": 1}, "frozen": {}}
    torch.save(state, tmp_path / "last.pt")
    model = build_model("avesformer-r18", weights=str(tmp_path / "last.pt"))
    assert model.weights_report.format == "avskit-checkpoint" and "step 7" in model.weights_report.description
    torch.testing.assert_close(model.state_dict()["mask_head.classifier.4.weight"], trained.state_dict()["mask_head.classifier.4.weight"])
    with pytest.raises(UserError, match="an avskit checkpoint of avesformer-r18, not of avesformer-r50"):
        build_model("avesformer-r50", weights=str(tmp_path / "last.pt"))


def test_released_avsegformer_reports_what_it_dropped(avsegformer_file):
    model = build_model("avsegformer-r50", weights=str(avsegformer_file))
    report = model.weights_report
    groups = report.dropped_groups()
    # the second backbone branch, SimpleFPN and attn_fc: in the file, never used by the forward
    assert set(groups) == {"backbone.layer3_2", "backbone.layer4_2", "head.fpn", "head.attn_fc"}
    assert report.loaded == len(model.state_dict()) and not report.filled and not report.kept
    assert model.audio_backbone.pretrained  # VGGish came from the file: no random-weights notice


def test_avss_avsbench_gets_zero_align_channel_bias(tmp_path):
    data = load("avsbench_r50_avss")
    state = model_state(data["keys"])
    assert "tpavi_b1.align_channel.bias" not in state  # the AVSS release builds it without a bias
    torch.save(state, tmp_path / "AVSS_resnet_miou_best.pth")
    model = build_model("avsbench-r50", weights=str(tmp_path / "AVSS_resnet_miou_best.pth"), classes=71)
    assert model.weights_report.filled == [f"tpavi.{i}.align_channel.bias" for i in range(4)]
    assert not model.tpavi[0].align_channel.bias.any()
    assert model.weights_report.kept  # VGGish is not in an AVSBench file: it says so


def test_params_json_and_profile_plot_on_a_released_file(tmp_path, avsegformer_file, avskit):
    """The acceptance commands: params --json names the format and counts; profile runs on the file."""
    result = avskit("params", "avsegformer-r50", "--set", f"weights={avsegformer_file}", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["weights"]["format"] == "avsegformer-release"
    assert report["weights"]["loaded"] == 740 and len(report["weights"]["dropped"]) == 185
    assert len(report["weights"]["sha256"]) == 64
    result = avskit("profile", "avsegformer-r50", "--set", f"weights={avsegformer_file}", "--iters", "2", "--warmup", "0",
                    "--size", "64", "--results", str(tmp_path / "r.jsonl"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    from avsbench_kit.results import load_records

    [record] = load_records(tmp_path / "r.jsonl")  # the latency record says which weights were measured
    assert record["provenance"]["weights_sha256"] == report["weights"]["sha256"]


def _code_pickle(path: Path, marker: Path) -> None:
    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"model.weight": Payload()}, path)


WRONG = {
    "r18-for-r50": ("avesformer-r50", ["avskit state dict does not fit avesformer-r50", "wrong shape"]),
    "truncated": ("avsegformer-r50", ["not a readable PyTorch state dict"]),
    "pvt-for-resnet": ("avsegformer-r50", ["backbone is PVT-v2", "uses resnet50"]),
    "code": ("avsegformer-r50", ["refused, it asks to run code"]),
    "avsbench-for-avsegformer": ("avsegformer-r50", ["checkpoint of the AVSBench release", "belongs to the avsegformer family"]),
    "unknown": ("avsegformer-r50", ["not a format avskit knows", "first keys: a.weight"]),
    "avss-for-s4": ("avsbench-r50", ["wrong shape output_head.4.weight", "--set classes=71"]),
    "ecmvae-for-catr": ("catr-pvt", ["checkpoint of the ECMVAE release", "belongs to the catr family", "ecmvae-pvt, ecmvae-r50"]),
    "r50-for-pvt": ("ecmvae-pvt", ["backbone is a ResNet", "uses pvt_v2_b5", "use ecmvae-r50"]),
    "cavp-for-avesformer": ("avesformer-r18", ["checkpoint of the CAVP release", "belongs to the avesformer family", "cavp-r50"]),
    "ecmvae-for-cavp": ("cavp-r50", ["checkpoint of the ECMVAE release", "belongs to the cavp family"]),
    "catr-2048-for-256": ("catr-pvt", ["wrong shape temporal_encoder.layers.0.encoder.ffn.net.0.weight: (2048, 256) in the file",
                                       "--set temporal_ffn=2048"]),
}


def _wrong_file(kind: str, folder: Path) -> Path:
    path = folder / f"{kind}.pth"
    if kind == "r18-for-r50":
        torch.save(build_model("avesformer-r18").state_dict(), path)
    elif kind == "truncated":
        torch.save({"w": torch.zeros(1000, 1000)}, path)
        path.write_bytes(path.read_bytes()[:100_000])
    elif kind == "pvt-for-resnet":
        torch.save({"head.transformer.encoder.layers.0.norm1.weight": torch.ones(256), "vggish.features.0.weight": torch.ones(1),
                    "backbone.patch_embed1.proj.weight": torch.ones(64, 3, 7, 7)}, path)
    elif kind == "code":
        _code_pickle(path, folder / "ran")
    elif kind == "avsbench-for-avsegformer":
        torch.save({"tpavi_b1.g.weight": torch.ones(1), "path1.resConfUnit1.conv1.weight": torch.ones(1)}, path)
    elif kind == "unknown":
        torch.save({"a.weight": torch.ones(1)}, path)
    elif kind == "avss-for-s4":
        torch.save(model_state(load("avsbench_r50_avss")["keys"]), path)
    elif kind == "ecmvae-for-catr":
        torch.save({"mm_vae_model.enc_vs.fc1.weight": torch.ones(1), "neck_prior.conv_list.0.reduce.0.conv.weight": torch.ones(1)}, path)
    elif kind == "r50-for-pvt":
        torch.save({"mm_vae_model.enc_vs.fc1.weight": torch.ones(1), "neck_prior.conv_list.0.reduce.0.conv.weight": torch.ones(1),
                    "encoder.layer4.0.conv1.weight": torch.ones(1)}, path)
    elif kind == "cavp-for-avesformer":  # a release checkpoint: {'model': DDP state dict}
        torch.save({"model": {"module.cross_att.patch_embed_v.proj.weight": torch.ones(1), "module.segment.aspp.red_bn.weight": torch.ones(1)},
                    "epoch": 1}, path)
    elif kind == "ecmvae-for-cavp":
        torch.save({"mm_vae_model.enc_vs.fc1.weight": torch.ones(1), "neck_prior.conv_list.0.reduce.0.conv.weight": torch.ones(1)}, path)
    elif kind == "catr-2048-for-256":  # every key at its shape, each a broadcast zero (a few KB on disk)
        torch.save({k: torch.zeros(()).expand(shape) for k, shape in load("catr_pvt_ffn2048_96")["keys"].items()}, path)
    return path


@pytest.mark.parametrize("kind", list(WRONG))
def test_wrong_weights_file_is_one_line_and_writes_nothing(tmp_path, kind, avskit):
    model, fragments = WRONG[kind]
    path = _wrong_file(kind, tmp_path)
    plot = tmp_path / "lat.png"
    result = avskit("profile", model, "--set", f"weights={path}", "--iters", "2", "--size", "64", "--plot", str(plot),
                    "--results", str(tmp_path / "r.jsonl"), cwd=tmp_path)
    line = one_line_error(result, str(path), *fragments)
    assert not plot.exists() and not (tmp_path / "r.jsonl").exists(), line
    assert not (tmp_path / "ran").exists()  # the pickle's command never ran


def test_eval_and_report_with_released_checkpoints_on_synth_output(tmp_path, avsegformer_file, capsys, monkeypatch):
    """The whole measured-accuracy path: synthetic data in the AVSBench layout, released-format
    checkpoints under the releases' file names, eval with a bar, then report --eval-data --weights-dir
    (in this process: the path is the point, not the process; the figures are built, not saved)."""
    from helpers import run, save_only

    save_only(monkeypatch)

    def avskit(*args, cwd=None):
        code, out, err = run(capsys, *args)
        return type("Result", (), {"returncode": code, "stdout": out, "stderr": err})

    monkeypatch.chdir(tmp_path)
    data = tmp_path / "AVSBench"
    assert avskit("synth", "--subset", "s4", "--out", str(data / "Single-source"), "--videos", "7", "--size", "64", cwd=tmp_path).returncode == 0
    weights = tmp_path / "checkpoints"
    (weights / "AVSegFormer_res50_s4").mkdir(parents=True)
    os.link(avsegformer_file, weights / "AVSegFormer_res50_s4" / "S4_best.pth")
    avsbench = load("avsbench_r50_s4")
    torch.save(model_state(avsbench["keys"]), weights / "S4_resnet_best.pth")
    torch.save(model_state(avsbench["vggish_keys"]), weights / "vggish-10086976.pth")

    result = avskit("eval", "avsegformer-r50", "--set", f"weights={weights / 'AVSegFormer_res50_s4' / 'S4_best.pth'}",
                    "--data", str(data / "Single-source"), "--subset", "s4", "--size", "64", "--json",
                    "--results", str(tmp_path / "eval.jsonl"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["weights_file"]["format"] == "avsegformer-release" and not report["initial_weights"]
    assert 0 <= report["test"]["jaccard"] <= 1

    store, out = tmp_path / "store.jsonl", tmp_path / "report"
    result = avskit("report", "--no-measure", "--eval-data", str(data), "--weights-dir", str(weights),
                    "--results", str(store), "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "released avsegformer-r50 on s4" in result.stdout and "released avsbench-r50 on s4" in result.stdout
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    evals = [r for r in records if r["kind"] == "eval"]
    assert {(r["model"].split("[")[0], r["metric"]) for r in evals} == {
        (m, k) for m in ("avsegformer-r50", "avsbench-r50") for k in ("jaccard", "f_score")}
    assert all(len(r["provenance"]["weights_sha256"]) == 64 for r in evals)
    table3 = (out / "tables" / "table3.md").read_text()
    assert "S4 J, released weights (measured)" in table3 and "S4 J (reported)" in table3

    # issue #16: the many-frame probe on the release's files over `avskit synth` output (TPAVI's maps scored)
    result = avskit("dissipation", "avsbench-r50", "--set", f"weights={weights / 'S4_resnet_best.pth'}",
                    "--set", f"vggish_weights={weights / 'vggish-10086976.pth'}", "--data", str(data / "Single-source"), "--subset", "s4",
                    "--frames", "8", "--size", "64", "--results", str(tmp_path / "frames.jsonl"), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    probed = json.loads(result.stdout)
    tpavi = [s for s in probed["sites"] if s["site"].startswith("tpavi.")]
    assert [s["site"] for s in tpavi] == [f"tpavi.{i}" for i in range(4)] and probed["frames"] == 5  # the split has 1 test video
    assert all(s["localisation"]["maps"] == 1 and s["localisation"]["mean"]["n"] == 5 for s in tpavi)
    record = load_records(tmp_path / "frames.jsonl")[0]
    assert record["kind"] == "attention_frames" and len(record["provenance"]["weights_sha256"]) == 64


def test_pvt_backbone_weights_in_the_releases_names(tmp_path):
    """backbone_weights=pvt_v2_b5.pth with the releases' key names (patch_embed1, block1.N, norm1 and
    a classifier head) loads into timm's pvt_v2_b5 through the key map."""
    keys = {k[len("backbone."):]: v for k, v in load("avsegformer_pvt_s4")["keys"].items() if k.startswith("backbone.")}
    state = model_state(keys)
    state |= {"head.weight": torch.zeros(1000, 512), "head.bias": torch.zeros(1000)}  # ImageNet classifier: ignored
    torch.save(state, tmp_path / "pvt_v2_b5.pth")
    model = build_model("avsbench-pvt", backbone_weights=str(tmp_path / "pvt_v2_b5.pth"))
    net = model.visual_backbone.net.state_dict()
    torch.testing.assert_close(net["stages.2.blocks.39.mlp.dwconv.weight"], state["block3.39.mlp.dwconv.dwconv.weight"])
    torch.testing.assert_close(net["stages.3.downsample.proj.weight"], state["patch_embed4.proj.weight"])
    torch.testing.assert_close(net["stages.0.norm.weight"], state["norm1.weight"])
    with pytest.raises(UserError, match="backbone_weights=imagenet is for ResNets"):
        build_model("avsbench-pvt", backbone_weights="imagenet")


def test_dissipation_draws_the_weighted_model_and_names_the_file(tmp_path, capsys):
    """Every figure, drawn once (they take seconds), from a user's frame: with weights, Figure 8 gains
    the real model's own fusion map, and every figure's provenance names the weights file and its
    SHA-256, the frame and the default sound it was paired with."""
    import numpy as np
    from PIL import Image

    from avsbench_kit.files import file_sha256

    from helpers import run

    data = load("avsbench_r50_s4")
    torch.save(model_state(data["keys"]), tmp_path / "S4_resnet_best.pth")
    torch.save(model_state(data["vggish_keys"]), tmp_path / "vggish.pth")
    image, out = tmp_path / "frame.png", tmp_path / "figs"
    Image.fromarray(np.zeros((64, 64, 3), dtype=np.uint8)).save(image)
    code, printed, err = run(capsys, "dissipation", "avsbench-r50", "--set", f"weights={tmp_path / 'S4_resnet_best.pth'}",
                             "--set", f"vggish_weights={tmp_path / 'vggish.pth'}", "--image", str(image), "--size", "64", "--out", str(out))
    assert code == 0, err
    stems = ("attention_sites", "fig4a_query_attention", "fig7_decoder_layers", "fig8_fusion_maps", "fig9_pqg_queries")
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{stem}.{ext}" for stem in stems for ext in ("png", "svg"))
    assert "wrote" in printed and Image.open(out / "fig8_fusion_maps.png").size[0] > 1000
    sha = file_sha256(tmp_path / "S4_resnet_best.pth")
    for name in stems:
        provenance = json.loads(Image.open(out / f"{name}.png").info["Description"])
        assert "frame.png" in provenance["input"] and "the default synthetic sound" in provenance["input"], name
        if name in ("fig8_fusion_maps", "fig4a_query_attention", "attention_sites"):
            assert sha in provenance["weights"] and "S4_resnet_best.pth" in provenance["weights"], name
    fig8 = json.loads(Image.open(out / "fig8_fusion_maps.png").info["Description"])
    assert fig8["panel weights"][-1] == "weights" and set(fig8["panel weights"][:-1]) == {"random"}
    assert "avesformer-r18" in (out / "fig9_pqg_queries.svg").read_text()  # the figures compare AVESFormer's own variants


def test_fine_tuned_checkpoint_rebuilds_its_frozen_vggish_from_the_start_file(tmp_path, avskit):
    """train --set weights=FILE fine-tunes; weights=last.pt then gets the frozen VGGish back from FILE
    (the checkpoint holds only trainable state) and evaluates to the run's own numbers."""
    torch.manual_seed(5)  # a VGGish no seed-0 build would give
    torch.save(build_model("avesformer-r18").state_dict(), tmp_path / "start.pth")
    run = tmp_path / "run"
    args = ("--data", "synthetic:s4", "--size", "64", "--videos", "7")
    trained = avskit("train", "avesformer-r18", "--set", f"weights={tmp_path / 'start.pth'}", "--steps", "2", "--batch", "2",
                     "--val-every", "0", "--out", str(run), "--json", *args, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-2000:]
    evaluated = avskit("eval", "avesformer-r18", "--set", f"weights={run / 'last.pt'}", "--json", *args, cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert json.loads(evaluated.stdout)["test"] == json.loads(trained.stdout)["test"]


def test_a_wrong_file_leaves_no_empty_output_folder(tmp_path, avskit):
    """--out is checked for writability before the work, but not created until something is written."""
    path = _wrong_file("unknown", tmp_path)
    out = tmp_path / "figs" / "nested"
    result = avskit("dissipation", "avesformer-r18", "--set", f"weights={path}", "--out", str(out), cwd=tmp_path)
    one_line_error(result, str(path), "not a format avskit knows")
    assert not (tmp_path / "figs").exists()
