"""A researcher's own model, named by reference (FILE.py:factory or package.module:factory), through
params, profile, dissipation and compare; the probe sees hand-written softmax attention."""

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from avsbench_kit import UserError, build_from_spec
from avsbench_kit.probes import capture_attention
from avsbench_kit.results import load_records
from avsbench_kit.spec import spec_from_text

from helpers import run

ROOT = Path(__file__).resolve().parents[1]

MODEL_FILE = textwrap.dedent('''
    import torch
    from torch import nn


    class CrossToAudio(nn.Module):
        """Hand-written cross-attention of 6 learned queries to the single audio token."""

        def __init__(self, dim):
            super().__init__()
            self.queries = nn.Parameter(torch.randn(6, dim))
            self.q, self.k = nn.Linear(dim, dim), nn.Linear(dim, dim)

        def forward(self, audio_token):
            q = self.q(self.queries).expand(audio_token.shape[0], -1, -1)
            weights = torch.softmax(q @ self.k(audio_token).transpose(1, 2), dim=-1)  # [B, 6, 1]
            return self.queries + weights @ audio_token


    class PixelsToQueries(nn.Module):
        """Hand-written attention of the queries over the 7x7 image tokens (49 keys at 224)."""

        def __init__(self, dim):
            super().__init__()
            self.k = nn.Linear(dim, dim)
            nn.init.normal_(self.k.weight, std=12 / dim ** 0.5)

        def forward(self, queries, tokens):
            weights = (queries @ self.k(tokens).transpose(-2, -1)).softmax(-1)  # [B, 6, 49]
            return queries + weights @ tokens


    class Model(nn.Module):
        def __init__(self, dim=32):
            super().__init__()
            self.image = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
                                       nn.Conv2d(32, dim, 32, stride=32), nn.ReLU())
            self.audio = nn.Sequential(nn.Flatten(), nn.Linear(96 * 64, dim))
            self.audio_queries = CrossToAudio(dim)
            self.pixels = PixelsToQueries(dim)
            self.classify = nn.Linear(dim, 5)

        def forward(self, image, audio):
            feature = self.image(image)
            tokens = feature.flatten(2).transpose(1, 2)
            token = self.audio(audio).unsqueeze(1)
            queries = self.pixels(self.audio_queries(token), tokens)
            events = nn.functional.softmax(self.classify(token[:, 0]), dim=-1)  # 2-D: not attention
            mask = torch.einsum("bqc,bchw->bqhw", queries, feature).mean(1, keepdim=True)
            return mask, events


    def build(dim=32):
        return Model(dim)


    CONSTANT = 3


    def returns_int():
        return 7


    class Broken(nn.Module):
        def forward(self, image, audio):
            return image @ audio


    def bad_forward():
        return Broken()


    def with_features():
        class Features(nn.Module):
            def __init__(self):
                super().__init__()
                self.proj = nn.Linear(128, 1)

            def forward(self, image, feature):
                return image.mean(1, keepdim=True) * self.proj(feature)[:, :, None, None]

        return Features(), lambda batch, size: (torch.randn(batch, 3, size, size), torch.randn(batch, 128))
''')


@pytest.fixture
def model_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("elsewhere")  # outside the package
    path = folder / "my_model.py"
    path.write_text(MODEL_FILE)
    return path


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "avskit", *args], cwd=ROOT, capture_output=True, text=True, timeout=900)


def test_params_in_a_real_process_then_profile_and_dissipation(model_file, tmp_path, capsys):
    """A file outside the package is imported by a fresh process (params, --json alone on stdout);
    profile and dissipation of the same reference run in-process."""
    ref = f"{model_file}:build"
    params = _cli("params", ref, "--json")
    assert params.returncode == 0, params.stderr
    report = json.loads(params.stdout)
    model = build_from_spec(spec_from_text(ref)).inner
    assert report["declared"] == sum(p.numel() for p in model.parameters())
    assert set(report["modules"]) == {"image", "audio", "audio_queries", "pixels", "classify"}
    assert report["modules"]["classify"]["live"] == 0  # the 2-D event head does not reach the logits

    code, out, err = run(capsys, "profile", ref, "--iters", "3", "--warmup", "1", "--results", str(tmp_path / "r.jsonl"), "--json")
    assert code == 0, err
    result = json.loads(out)["results"][0]
    assert 0.9 <= result["coverage"] <= 1.1 and {m["name"] for m in result["modules"] if m["depth"] == 1} >= {"image", "pixels"}
    assert result["flops"] > 0 and len(result["samples_ms"]) == 3
    record = load_records(tmp_path / "r.jsonl")[0]
    assert record["spec"]["reference"] == ref and record["spec"]["sha256"] == hashlib.sha256(model_file.read_bytes()).hexdigest()

    code, out, err = run(capsys, "dissipation", ref, "--json")
    assert code == 0, err
    sites = json.loads(out)["sites"]
    assert [(s["site"], s["kind"], s["n_queries"], s["n_keys"]) for s in sites] == [
        ("audio_queries", "softmax-op", 6, 1), ("pixels", "softmax-op", 6, 49)]
    assert [s["site"] for s in sites if s["dissipated"]] == ["audio_queries"]  # flagged, and nothing else


def test_zoo_and_reference_interleaved_in_one_run(capsys, model_file, tmp_path):
    code, out, err = run(capsys, "profile", "avesformer-r18", f"{model_file}:build[dim=16]", "--size", "64", "--iters", "3",
                         "--warmup", "1", "--depth", "1", "--channels-last", "--results", str(tmp_path / "r.jsonl"), "--json")
    assert code == 0, err
    zoo, zoo_fast, mine, mine_fast = json.loads(out)["results"]
    assert mine["model"] == f"{model_file}:build[dim=16]" and zoo["ratio"] == 1.0 and mine["ratio"] > 0
    assert mine_fast["path"] == "channels_last" and mine_fast["max_abs_diff"] < 1e-4  # the speed paths apply too
    assert mine["spec"]["kwargs"] == {"dim": 16}


def test_compare_against_a_referenced_base_and_resume(capsys, model_file, tmp_path):
    args = ["compare", "--base", f"{model_file}:build", "--models", "avesformer-r18", "--size", "64", "--iters", "2",
            "--warmup", "0", "--results", str(tmp_path / "r.jsonl"), "--json"]
    code, out, err = run(capsys, *args)
    assert code == 0, err
    report = json.loads(out)
    assert [v["model"] for v in report["variants"]] == [f"{model_file}:build", "avesformer-r18"]
    assert report["variants"][0]["ratio_to_anchor"] == 1.0 and report["variants"][1]["dissipated_sites"] == 0
    code, out, err = run(capsys, *args)
    assert code == 0 and json.loads(out)["measured"] == []  # resumed: the reference and its hash match


def test_factory_with_its_own_inputs(capsys, model_file):
    code, out, err = run(capsys, "params", f"{model_file}:with_features", "--json")
    assert code == 0, err
    assert json.loads(out)["live"] == 129


@pytest.mark.parametrize("ref,message", [
    ("{dir}/missing.py:build", "no such file {dir}/missing.py"),
    ("{dir}/fails.py:build", "importing {dir}/fails.py failed: ValueError: broken at import"),
    ("{file}:nothing", "has no 'nothing'"),
    ("{file}:CONSTANT", "CONSTANT is a int, not callable"),
    ("{file}:returns_int", "returns_int returned int, not an nn.Module"),
    ("{file}:bad_forward", "the forward failed on inputs of shape [1, 3, 64, 64], [1, 1, 96, 64]: RuntimeError"),
    ("no_such_module_anywhere:build", "importing no_such_module_anywhere failed: ModuleNotFoundError"),
])
def test_bad_references_are_one_line(capsys, model_file, ref, message):
    (model_file.parent / "fails.py").write_text("raise ValueError('broken at import')\n")
    fill = {"dir": model_file.parent, "file": model_file}
    code, out, err = run(capsys, "params", ref.format(**fill), "--size", "64")
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("warning:")]
    assert code == 2 and out == "" and "Traceback" not in err
    assert len(lines) == 1 and message.format(**fill) in lines[0], err


class HandWritten(nn.Module):
    """A single-key cross-attention, a 49-key self-attention and a 2-D classifier softmax, all by hand."""

    def forward(self, x, token):
        one = torch.softmax(x @ token.transpose(1, 2), dim=-1) @ token  # [B, 49, 1]
        many = (x @ x.transpose(1, 2)).softmax(-1) @ x  # [B, 49, 49]
        classes = torch.nn.functional.softmax(x.mean(1), dim=-1)  # [B, C]: not attention
        return one + many + classes[:, None]


def test_probe_records_hand_written_softmax_and_changes_nothing():
    model = nn.Sequential()
    model.add_module("block", HandWritten())
    x, token = torch.randn(2, 49, 8), torch.randn(2, 1, 8)
    plain = model.block(x, token)
    with capture_attention(model.block) as recorder:
        probed = model.block(x, token)
    assert torch.equal(plain, probed)
    rows = [(r.site, r.kind, r.n_queries, r.n_keys, r.metrics.dissipated, r.call) for r in recorder.records]
    assert rows == [("", "softmax-op", 49, 1, True, 0), ("", "softmax-op", 49, 49, False, 1)]


def test_own_models_softmaxes_are_not_counted_twice():
    from avsbench_kit import build_model

    model = build_model("avesformer-r18")
    with torch.inference_mode(), capture_attention(model) as recorder:
        model(torch.randn(1, 3, 64, 64), torch.randn(1, 1, 96, 64))
    assert recorder.records and not [r for r in recorder.records if r.kind == "softmax-op"]
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    with capture_attention(mha) as recorder:
        mha(torch.randn(1, 5, 8), torch.randn(1, 3, 8), torch.randn(1, 3, 8))
    assert [r.kind for r in recorder.records] == ["mha"]


def test_a_reference_is_not_a_zoo_name():
    with pytest.raises(UserError, match="unknown model"):
        spec_from_text("avesformer-r99")


def test_the_docs_example_model(capsys, tmp_path):
    """examples/tiny_avs.py, as docs/foreign-models.md runs it."""
    ref = str(ROOT / "examples" / "tiny_avs.py") + ":build"
    code, out, err = run(capsys, "params", ref, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["modules"]["event_head"] == {"declared": 650, "live": 0, "trainable": 650}
    code, out, err = run(capsys, "profile", "avesformer-r18", ref + "[dim=32]", "--size", "64", "--iters", "2", "--warmup", "0",
                         "--depth", "1", "--results", str(tmp_path / "r.jsonl"), "--json")
    assert code == 0, err
    assert json.loads(out)["results"][1]["spec"]["kwargs"] == {"dim": 32}
    code, out, err = run(capsys, "dissipation", ref, "--out", str(tmp_path / "figs"), "--json")
    assert code == 0, err
    sites = json.loads(out)["sites"]
    assert [(s["site"], s["n_keys"], s["dissipated"]) for s in sites] == [("audio_queries", 1, True), ("query_to_image", 49, False)]
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == ["attention_sites.png", "attention_sites.svg"]
    code, out, err = run(capsys, "dissipation", ref.replace(":build", ":build_with_features"), "--json")
    assert code == 0 and json.loads(out)["input"] == "the factory's example_inputs(1, 224)"


@pytest.mark.parametrize("command", ["train", "eval"])
def test_train_and_eval_refuse_a_reference_in_one_line(capsys, model_file, command):
    code, out, err = run(capsys, command, f"{model_file}:build", "--size", "64", "--videos", "8")
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("warning:")]
    assert code == 2 and "Traceback" not in err and len(lines) == 1 and "take zoo models" in lines[0]


def test_compare_models_needs_a_model(capsys, tmp_path):
    code, out, err = run(capsys, "compare", "--models", ",", "--results", str(tmp_path / "r.jsonl"))
    assert code == 2 and out == "" and "--models needs at least one model" in err
    assert not (tmp_path / "r.jsonl.d").exists()
