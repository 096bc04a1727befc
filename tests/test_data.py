"""The synthetic benchmark and the AVSBench readers, tested on `avskit synth` output and corrupted copies."""

import pickle
import shutil

import numpy as np
import pytest
import torch

from avsbench_kit import UserError
from avsbench_kit.data.avsbench import AVSBenchFrames
from avsbench_kit.data.synthetic import SUBSETS, synthetic_frame
from avsbench_kit.metrics import jaccard
from avskit import cli


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    roots = {}
    for subset in SUBSETS:
        root = tmp_path_factory.mktemp("synth") / subset
        assert cli.main(["synth", "--subset", subset, "--out", str(root), "--videos", "8", "--size", "64", "--json"]) == 0
        roots[subset] = root
    return roots


def test_frames_are_deterministic():
    a, b = synthetic_frame("ms3", 3, 5, 2), synthetic_frame("ms3", 3, 5, 2)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask) and np.array_equal(a.waveform, b.waveform)
    assert not np.array_equal(a.image, synthetic_frame("ms3", 3, 6, 2).image)


def test_subsets_sounding_counts():
    for video in range(30):
        s4 = synthetic_frame("s4", 0, video, 0, size=64)
        ms3 = synthetic_frame("ms3", 0, video, 0, size=64)
        assert 2 <= len(s4.objects) <= 5 and len(s4.sounding) == 1
        assert 2 <= len(ms3.sounding) <= 3 and len(ms3.sounding) <= len(ms3.objects)
    avss = synthetic_frame("avss", 0, 0, 0, size=64)
    assert set(np.unique(avss.mask)) - {0} == {avss.objects[i] + 1 for i in avss.sounding}


def test_audio_blind_segment_everything_only_guesses():
    """Segmenting every object, the best an audio-blind model can do short of guessing, scores about 1/n."""
    scores, chance = [], []
    for video in range(60):
        frame = synthetic_frame("s4", 0, video, 0, size=64)
        truth = torch.from_numpy(frame.mask[None].astype(np.float32))
        logits = torch.from_numpy(np.where(frame.everything, 10.0, -10.0)[None].astype(np.float32))
        scores.append(jaccard(logits, truth))
        chance.append(1 / len(frame.objects))
        assert frame.everything[frame.mask > 0].all()
    assert np.mean(scores) < 0.45
    assert abs(np.mean(scores) - np.mean(chance)) < 0.1


def test_ms3_keeps_a_silent_shape_so_the_blind_control_cannot_segment_everything():
    """MS3: two or three of four or five shapes sound; segmenting every shape scores about the sounding
    share of the shapes, never 1 (issue #33: with every shape sounding the audio was not needed)."""
    scores = []
    for video in range(60):
        frame = synthetic_frame("ms3", 0, video, 0, size=64)
        assert 4 <= len(frame.objects) <= 5 and 2 <= len(frame.sounding) <= 3
        truth = torch.from_numpy(frame.mask[None].astype(np.float32))
        scores.append(jaccard(torch.from_numpy(np.where(frame.everything, 10.0, -10.0)[None].astype(np.float32)), truth))
    assert max(scores) < 1 and np.mean(scores) < 0.65


@pytest.mark.parametrize("subset,split,frames", [("s4", "train", 1), ("s4", "test", 5), ("ms3", "train", 5), ("avss", "val", 5)])
def test_readers_on_synth_output(datasets, subset, split, frames):
    ds = AVSBenchFrames(datasets[subset], subset, split, size=64)
    assert len(ds) > 0 and len(ds) % frames == 0
    image, audio, mask, info = ds[0]
    assert image.shape == (3, 64, 64) and audio.shape == (1, 96, 64) and mask.shape == (64, 64)
    if subset == "avss":
        assert mask.dtype == torch.int64 and mask.max() <= 6
    else:
        assert set(mask.unique().tolist()) <= {0.0, 1.0} and mask.sum() > 0


def test_log_mel_pickle_matches_the_wav(datasets):
    root = datasets["s4"]
    ds = AVSBenchFrames(root, "s4", "test", size=64)
    from_pkl = ds[1][1]
    for pkl in root.rglob("*.pkl"):
        pkl.rename(pkl.with_suffix(".moved"))
    try:
        from_wav = AVSBenchFrames(root, "s4", "test", size=64)[1][1]
    finally:
        for moved in root.rglob("*.moved"):
            moved.rename(moved.with_suffix(".pkl"))
    torch.testing.assert_close(from_pkl, from_wav)


def corrupt(root, tmp_path, how):
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    if how == "png":
        target = next(copy.rglob("visual_frames/test/**/*.png"))
        target.write_bytes(b"not a png")
    elif how == "wav":
        for pkl in copy.rglob("*.pkl"):
            pkl.unlink()
        target = next(copy.rglob("audio_wav/test/**/*.wav"))
        target.write_bytes(target.read_bytes()[:60])
    elif how == "pkl":
        target = next(copy.rglob("audio_log_mel/test/**/*.pkl"))
        target.write_bytes(pickle.dumps(torch.zeros(5, 1, 96, 32)))
    elif how == "csv":
        target = copy / "s4_meta_data.csv"
        target.write_text("name,split\nx,test\n")
    elif how == "mask":
        target = next(copy.rglob("gt_masks/test/**/*.png"))
        target.unlink()
    return copy, target


@pytest.mark.parametrize("how,message", [
    ("png", "not a readable image"), ("wav", "too short or truncated"), ("pkl", "expected [n, 1, 96, 64]"),
    ("csv", "missing column(s) category"), ("mask", "missing"),
])
def test_corrupted_copies_name_the_file(datasets, tmp_path, how, message):
    copy, target = corrupt(datasets["s4"], tmp_path, how)
    with pytest.raises(UserError) as info:
        ds = AVSBenchFrames(copy, "s4", "test", size=64)
        for i in range(len(ds)):
            ds[i]
    text = str(info.value)
    assert message in text and (target.name in text or str(target.parent) in text)


def test_missing_root():
    with pytest.raises(UserError, match="is not a directory"):
        AVSBenchFrames("/nonexistent/avsbench", "s4", "test")


def test_synth_refuses_a_non_empty_folder(capsys, datasets):
    code = cli.main(["synth", "--subset", "s4", "--out", str(datasets["s4"])])
    err = capsys.readouterr().err
    assert code == 2 and "exists and is not an empty folder" in err


@pytest.mark.parametrize("command", [
    ["synth", "--subset", "s4", "--videos", "7", "--size", "64", "--out", "/proc/avskit-synth"],
    ["train", "avesformer-r18", "--size", "64", "--videos", "8", "--steps", "1", "--out", "/proc/avskit-train"],
    ["dissipation", "avesformer-r18", "--out", "/proc/avskit-figures"],
])
def test_unwritable_output_folders(capsys, command):
    code = cli.main(command)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(("warning:", "note:"))]
    assert code == 2 and len(lines) == 1 and "/proc/avskit-" in lines[0], err


class _RunsACommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_a_log_mel_pickle_that_would_run_code_is_refused(tmp_path):
    import pickle

    from avsbench_kit.data.avsbench import read_log_mel

    marker = tmp_path / "ran"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_RunsACommand(marker)))
    with pytest.raises(UserError, match=r"evil.pkl: refused: it asks for posix.system"):
        read_log_mel(path)
    assert not marker.exists()  # nothing in the file ran
    path.write_bytes(pickle.dumps(torch.randn(5, 1, 96, 64)))  # the released format still reads
    assert read_log_mel(path).shape == (5, 96, 64)
