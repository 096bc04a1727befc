"""The training engine: the paper's losses, deterministic and resumable training, evaluation, checkpoints."""

import pytest
import torch

from avsbench_kit import UserError, build_model
from avsbench_kit.checkpoints import load_checkpoint, run_differences, save_checkpoint, trainable_state
from avsbench_kit.data.frames import SyntheticFrames
from avsbench_kit.engine import TrainConfig, evaluate, train
from avsbench_kit.losses import dice_loss, iou_loss, segmentation_loss
from avsbench_kit.results import load_records


def test_losses_by_hand():
    target = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])
    probs = torch.tensor([[[1.0, 1.0], [0.0, 0.0]]])
    assert dice_loss(probs, target).item() == pytest.approx(1 - 2 * 1 / (2 + 2 + 0.002))
    assert iou_loss(probs, target).item() == pytest.approx(1 - (1 + 1) / (3 + 1))
    assert dice_loss(target, target).item() == pytest.approx(0.0, abs=1e-3)


def test_segmentation_loss_adds_the_auxiliary_term():
    logits, target = torch.randn(2, 1, 8, 8), (torch.rand(2, 8, 8) > 0.5).float()
    feature = torch.randn(2, 4, 4, 4)
    main = segmentation_loss(logits, target, "s4")
    assert segmentation_loss(logits, target, "s4", feature) > main
    semantic = segmentation_loss(torch.randn(2, 5, 8, 8), torch.randint(0, 5, (2, 8, 8)), "avss")
    assert semantic.item() > 0


def small_run(tmp_path, steps, checkpoint=None, kill_at=None):
    torch.manual_seed(0)
    model = build_model("avesformer-r18")
    data = SyntheticFrames("s4", "train", videos=10, size=64)

    def progress(step, loss):
        if step == kill_at:
            raise KeyboardInterrupt

    result = train(model, data, TrainConfig(steps=steps, batch=2, checkpoint_every=2), checkpoint, progress)
    return model, result


def test_training_is_deterministic_and_resumable(tmp_path):
    straight, r1 = small_run(tmp_path, 4)
    ckpt = tmp_path / "run" / "last.pt"
    with pytest.raises(KeyboardInterrupt):
        small_run(tmp_path, 4, ckpt, kill_at=3)  # killed during step 3: the step-2 checkpoint stays
    assert torch.load(ckpt, weights_only=True)["step"] == 2
    resumed, r2 = small_run(tmp_path, 4, ckpt)
    assert r2["steps"] == 4 and r1["loss"] == pytest.approx(r2["loss"], rel=1e-5)
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    assert not list(ckpt.parent.glob(".*partial"))  # written atomically
    saved = torch.load(ckpt, weights_only=True)
    assert not any(k.startswith("audio_backbone.") for k in saved["model"])  # frozen: rebuilt from the seed
    assert "optimizer" not in saved and saved["frozen"]["parameters"] == 72_141_184  # a finished run keeps weights only


def test_validation_curve_leaves_training_bit_identical(tmp_path):
    """--val-every: the curve comes at every N steps and at the end, and the weights after training are
    exactly those of the same run without it; a warmup is part of the run's identity."""
    import copy

    from avsbench_kit.engine import lr_schedule, run_identity
    from avskit.analyses.attention_frames import compact, probe_model

    val = SyntheticFrames("s4", "val", videos=10, size=64)
    first = build_model("avesformer-r18")
    runs = []
    for val_every in (0, 2):
        model = copy.deepcopy(first)  # the same initial weights
        cfg = TrainConfig(steps=3, batch=2, warmup=2, val_every=val_every)
        result = train(model, SyntheticFrames("s4", "train", videos=10, size=64), cfg,
                       validate=lambda m: {**evaluate(m, val, "s4"), "attention": compact(probe_model(m, val, "s4", [0, 1]))})
        runs.append((model, result))
    (plain, r0), (validated, r1) = runs
    assert "val_curve" not in r0 and [point["step"] for point in r1["val_curve"]] == [2, 3]
    assert set(r1["val_curve"][0]) == {"step", "jaccard", "f_score", "attention"}
    sites = r1["val_curve"][-1]["attention"]  # the fusion sites' attention as the run learns
    assert sites and all(".fusion." in a["site"] and set(a) == {"site", "call", "dissipated_share", "row_diversity", "energy_ratio"}
                         for a in sites)
    for (name, a), b in zip(plain.state_dict().items(), validated.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    lrs = []
    scheduler = lr_schedule(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0), TrainConfig(steps=10, warmup=4))
    for _ in range(6):
        lrs.append(scheduler.get_last_lr()[0])
        scheduler.optimizer.step()
        scheduler.step()
    assert lrs[:4] == pytest.approx([0.25, 0.5 * 0.9 ** 0.9, 0.75 * 0.8 ** 0.9, 0.7 ** 0.9])  # warmup x polynomial decay
    # a checkpoint written before warmup existed (no such key) resumes a run without warmup, not one with it
    old = {k: v for k, v in run_identity(TrainConfig(warmup=0), 1).items() if k != "warmup"}
    assert run_differences(old, run_identity(TrainConfig(warmup=0), 1)) == []
    assert run_differences(old, run_identity(TrainConfig(warmup=4), 1)) == ["warmup: 0 there, 4 here"]


def test_training_changes_only_trainable_weights(tmp_path):
    model, _ = small_run(tmp_path, 1)
    torch.manual_seed(0)  # the same initial weights as small_run's
    fresh = build_model("avesformer-r18")
    torch.testing.assert_close(model.audio_backbone.features[0].weight, fresh.audio_backbone.features[0].weight)
    assert not torch.allclose(model.mask_head.classifier[0].weight, fresh.mask_head.classifier[0].weight)


def test_evaluate_reports_official_metrics():
    model = build_model("avesformer-r18")
    data = SyntheticFrames("s4", "test", videos=20, size=64)
    out = evaluate(model, data, "s4")
    assert set(out) == {"jaccard", "f_score"} and 0 <= out["jaccard"] <= 1 and 0 <= out["f_score"] <= 1
    assert len(data) == 3 * 5  # test split: 15% of 20 videos, all 5 frames


def test_checkpoint_errors(tmp_path):
    model = build_model("avesformer-r18")
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"model": trainable_state(model)})
    load_checkpoint(path, build_model("avesformer-r18"))
    with pytest.raises(UserError, match="does not fit this model"):
        load_checkpoint(path, build_model("avesformer-r18", queries=32))
    path.write_bytes(b"junk")
    with pytest.raises(UserError, match="not a readable checkpoint"):
        load_checkpoint(path, model)
    with pytest.raises(UserError, match="no such file"):
        load_checkpoint(tmp_path / "none.pt", model)


def test_train_and_eval_commands(capsys, tmp_path):
    import json

    from avskit import cli

    args = ["avesformer-r18", "--data", "synthetic:s4", "--size", "64", "--videos", "8", "--results", str(tmp_path / "r.jsonl")]
    code = cli.main(["train", *args, "--steps", "2", "--batch", "2", "--val-every", "0", "--seed", "3", "--out", str(tmp_path / "run"),
                     "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads(captured.out)
    assert set(report["test"]) == {"jaccard", "f_score"} and report["train"]["steps"] == 2
    assert (tmp_path / "run" / "last.pt").is_file()
    code = cli.main(["eval", *args, "--checkpoint", str(tmp_path / "run" / "last.pt"), "--json"])
    captured = capsys.readouterr()
    assert code == 0 and json.loads(captured.out)["test"] == report["test"]  # the same weights, the same test split
    code = cli.main(["eval", *args, "--json"])
    captured = capsys.readouterr()
    assert code == 0 and json.loads(captured.out)["initial_weights"] and "initial (untrained) weights" in captured.err
    records = load_records(tmp_path / "r.jsonl")
    assert len(records) == 6 and records[0]["provenance"]["data"] == "synthetic:s4"
    _pathways_on_the_trained_checkpoint_and_a_model_without_paths(capsys, tmp_path)  # the checkpoint trained above


@pytest.mark.parametrize("args,message", [
    (["train", "avesformer-r18", "--data", "synthetic:xyz"], "choose synthetic:s4"),
    (["train", "avesformer-r18", "--data", "/nonexistent"], "say which one with --subset"),
    (["train", "avesformer-r18", "--data", "/nonexistent", "--subset", "s4"], "is not a directory"),
    (["train", "avesformer-r18", "--data", "/nonexistent", "--subset", "xyz"], "--subset 'xyz' is not accepted"),
    (["train", "avesformer-r18", "--data", "synthetic:avss"], "add --set classes=71"),
    (["train", "avesformer-r18", "--steps", "3", "--epochs", "1"], "not both"),
    (["eval", "avesformer-r18", "--checkpoint", "/nonexistent.pt"], "no such file"),
])
def test_train_eval_bad_input(capsys, args, message):
    from avskit import cli

    code = cli.main(args)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(("warning:", "note:"))]
    assert code == 2 and len(lines) == 1 and message in lines[0], err


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal only happens where there is no CUDA device")
def test_train_refuses_cuda_without_a_device(capsys):
    from avskit import cli

    code = cli.main(["train", "avesformer-r18", "--device", "cuda", "--steps", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "no CUDA device is available" in err


def test_pretrained_vggish_is_not_stored(tmp_path):
    from avsbench_kit.models.vggish import VGGish

    path = tmp_path / "vggish.pth"
    torch.save(VGGish().state_dict(), path)
    model = build_model("avesformer-r18", vggish_weights=str(path))
    state = trainable_state(model)
    assert not any(k.startswith("audio_backbone.") for k in state)
    save_checkpoint(tmp_path / "c.pt", {"model": state})
    load_checkpoint(tmp_path / "c.pt", build_model("avesformer-r18", vggish_weights=str(path)))


def test_frozen_audio_features_are_served_from_one_pass():
    from avsbench_kit.engine import FrozenAudioFeatures

    model = build_model("avesformer-r18")
    data = SyntheticFrames("s4", "train", videos=10, size=64)
    features = FrozenAudioFeatures.of(model, data, chunk=3)
    image, audio, _ = (t for t in __import__("avsbench_kit.data.frames", fromlist=["collate"]).collate([data[4], data[1]]))
    with torch.inference_mode():
        direct = model(image, audio)
        with features.serving():
            features.keys = [4, 1]
            served = model(image, audio)
            features.keys = None
            unkeyed = model(image, audio)  # no keys: the backbone runs as usual
        after = model(image, audio)
    torch.testing.assert_close(served, direct, rtol=1e-5, atol=1e-5)
    assert torch.equal(unkeyed, direct) and torch.equal(after, direct)
    assert "forward" not in vars(model.audio_backbone)  # the patch is gone


def _train(capsys, tmp_path, *extra):
    from avskit import cli

    code = cli.main(["train", "avesformer-r18", "--size", "64", "--videos", "8", "--steps", "2", "--batch", "2", "--val-every", "0",
                     "--out", str(tmp_path / "ck"), "--results", str(tmp_path / "r.jsonl"), *extra])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("second,differs", [
    (["--audio-blind"], "audio_blind: False there, True here"),
    (["--steps", "4"], "steps: 2 there, 4 here"),
    (["--data", "synthetic:ms3"], "subset: 's4' there, 'ms3' here"),
])
def test_resume_never_mixes_runs(capsys, tmp_path, second, differs):
    code, err = _train(capsys, tmp_path)
    assert code == 0, err
    before = (tmp_path / "ck" / "last.pt").read_bytes()
    code, err = _train(capsys, tmp_path, *second)
    assert code == 2 and "belongs to another run" in err and differs in err and "--restart" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "ck" / "last.pt").read_bytes() == before  # the first run's checkpoint is untouched
    code, err = _train(capsys, tmp_path, *second, "--restart")
    assert code == 0, err


def test_the_same_run_resumes_and_eval_refuses_another_model(capsys, tmp_path):
    from avskit import cli

    assert _train(capsys, tmp_path)[0] == 0
    code, err = _train(capsys, tmp_path)  # the same command again: finished, nothing to redo
    assert code == 0 and "belongs to another run" not in err
    code = cli.main(["eval", "avesformer-r18", "--set", "stages=TTT", "--size", "64", "--videos", "8",
                     "--checkpoint", str(tmp_path / "ck" / "last.pt"), "--results", str(tmp_path / "r.jsonl")])
    err = capsys.readouterr().err
    assert code == 2 and "was trained as avesformer-r18, not avesformer-r18[stages=TTT]" in err


def test_frozen_weights_that_differ_are_refused(tmp_path):
    ckpt = tmp_path / "run" / "last.pt"
    model, _ = small_run(tmp_path, 2, ckpt)
    state = torch.load(ckpt, weights_only=True)
    state["frozen"]["sha256"] = "0" * 64
    torch.save(state, ckpt)
    with pytest.raises(UserError, match="frozen weights rebuilt here differ"):
        load_checkpoint(ckpt, model)


def _pathways_on_the_trained_checkpoint_and_a_model_without_paths(capsys, tmp_path):
    """Issue #28 item 4: `avskit pathways` on a tiny trained checkpoint, swap and zero, each declared
    path with J patched, the drop and its CI, the completeness check OK, a `pathways` record; a
    model reference that declares no paths is one line and exit 2."""
    import json

    from avskit import cli

    store = tmp_path / "pathways.jsonl"
    args = ["pathways", "avesformer-r18", "--set", f"weights={tmp_path / 'run' / 'last.pt'}", "--size", "64", "--videos", "20",
            "--frames", "4", "--results", str(store)]
    code = cli.main([*args, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads(captured.out)
    names = {"queries -> decoder fusion", "audio token -> decoder", "queries -> mask head"}
    assert {(r["path"], r["mode"]) for r in report["paths"]} == {(n, m) for n in names for m in ("swap", "zero")}
    clean = report["clean_jaccard"]["mean"]
    for row in report["paths"] + report["whole_audio"]:
        assert row["drop"] == pytest.approx(clean - row["jaccard"], abs=1e-9) and row["drop_ci95"][0] <= row["drop"] <= row["drop_ci95"][1]
    assert all(check["ok"] for check in report["completeness"].values())
    record = [r for r in load_records(store) if r["kind"] == "pathways"][-1]
    assert record["provenance"]["weights_sha256"] and record["paths"] == report["paths"]
    assert cli.main([*args[:-4], "--frames", "2", *args[-2:]]) == 0 and "completeness (zero)" in capsys.readouterr().out  # the table

    source = tmp_path / "plain.py"
    source.write_text("from torch import nn\n\n\nclass Plain(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                      "        self.conv = nn.Conv2d(3, 1, 1)\n\n    def forward(self, image, audio):\n        return self.conv(image)\n\n\n"
                      "def make():\n    return Plain()\n")
    code = cli.main(["pathways", f"{source}:make", "--size", "64", "--videos", "20", "--frames", "2", "--results", str(store)])
    err = capsys.readouterr().err
    assert code == 2 and "declares no audio paths" in err and len(err.strip().splitlines()) == 1
