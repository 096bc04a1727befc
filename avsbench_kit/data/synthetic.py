"""A synthetic audio-visual segmentation benchmark that runs on a laptop CPU.

Every frame is deterministic from (subset, seed, video, frame). It shows 2-5 objects of K
classes, each class with its own shape, colour and texture, on a textured background; the audio
is the mixture of the *sounding* objects' class signatures (a harmonic tone with a class-specific
pitch, timbre and amplitude modulation) plus noise. Which objects sound is drawn independently of
how they look, so a model that ignores the audio can only guess: with n objects on screen,
"segment every object" scores about 1/n (the test suite checks it).

- ``s4``: one sounding object per video; binary masks.
- ``ms3``: two or three sounding objects among four or five; binary masks of their union.
- ``avss``: like ms3, with semantic masks (class index + 1; 0 is background).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SUBSETS = ("s4", "ms3", "avss")
# shapes per video: MS3 draws 4 or 5, so that at least one shape is silent. With 2 to 5 (its first
# version, until 2026-12-05) 2 or 3 of them sounded and 3 videos in 8 had every shape sounding:
# segmenting every shape, without the audio, scored test J 0.72 against 0.79 with it (docs/training.md)
SHAPES = {"s4": (2, 5), "ms3": (4, 5), "avss": (2, 5)}
CLASSES = (
    # name, shape, RGB colour, texture, fundamental Hz, harmonic decay, AM rate Hz
    ("bell", "circle", (230, 60, 50), "plain", 262.0, 0.5, 0.0),
    ("drum", "square", (60, 170, 80), "stripes", 110.0, 0.9, 4.0),
    ("flute", "triangle", (60, 90, 220), "dots", 880.0, 0.2, 0.0),
    ("horn", "diamond", (230, 190, 40), "plain", 196.0, 0.8, 2.0),
    ("violin", "ring", (170, 70, 200), "stripes", 440.0, 0.7, 6.0),
    ("whistle", "cross", (40, 200, 210), "dots", 1318.0, 0.1, 1.0),
)
SAMPLE_RATE = 16000
FRAMES_PER_VIDEO = 5
SECONDS_PER_FRAME = 1.0


@dataclass
class SyntheticFrame:
    image: np.ndarray  # [H, W, 3] uint8
    mask: np.ndarray  # [H, W] uint8: 0/1 (s4, ms3) or class index + 1 (avss)
    waveform: np.ndarray  # [16000] float32 in [-1, 1], this frame's second of audio
    objects: list[int]  # class index of each object on screen
    sounding: list[int]  # indices into objects
    everything: np.ndarray  # [H, W] bool: every object, sounding or not (what an audio-blind model can find)


def _shape_mask(shape: str, yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, r: float) -> np.ndarray:
    dy, dx = yy - cy, xx - cx
    if shape == "circle":
        return dy**2 + dx**2 < r**2
    if shape == "square":
        return (abs(dy) < r * 0.85) & (abs(dx) < r * 0.85)
    if shape == "triangle":
        return (dy > -r) & (dy < r) & (abs(dx) < (dy + r) / 2)
    if shape == "diamond":
        return abs(dy) + abs(dx) < r
    if shape == "ring":
        d2 = dy**2 + dx**2
        return (d2 < r**2) & (d2 > (0.55 * r) ** 2)
    return ((abs(dy) < r * 0.3) & (abs(dx) < r)) | ((abs(dx) < r * 0.3) & (abs(dy) < r))  # cross


def _texture(kind: str, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    if kind == "stripes":
        return 0.75 + 0.25 * (np.sin(2 * np.pi * 12 * (xx + yy)) > 0)
    if kind == "dots":
        return 0.7 + 0.3 * ((np.sin(2 * np.pi * 14 * xx) * np.sin(2 * np.pi * 14 * yy)) > 0.3)
    return np.ones_like(yy)


def class_signature(cls: int, seconds: float = SECONDS_PER_FRAME, phase: float = 0.0) -> np.ndarray:
    """The class's sound: harmonics of its fundamental with its decay, amplitude-modulated at its rate."""
    _, _, _, _, f0, decay, am = CLASSES[cls]
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE + phase
    tone = sum(decay ** (k - 1) * np.sin(2 * np.pi * f0 * k * t) for k in range(1, 6))
    envelope = 1.0 if am == 0 else 0.6 + 0.4 * np.sin(2 * np.pi * am * t)
    return (tone * envelope).astype(np.float32)


def _video_layout(subset: str, seed: int, video: int) -> tuple[list[int], list[tuple[float, float]], list[int]]:
    rng = np.random.default_rng([seed, video, SUBSETS.index(subset)])
    low, high = SHAPES[subset]
    n = int(rng.integers(low, high + 1))
    objects = [int(c) for c in rng.choice(len(CLASSES), size=n, replace=False)]
    # positions on a 3x3 grid of cells, so objects do not overlap
    cells = rng.choice(9, size=n, replace=False)
    centres = [((c // 3 + 0.5) / 3, (c % 3 + 0.5) / 3) for c in cells]
    sounding_count = 1 if subset == "s4" else int(rng.integers(2, min(3, n) + 1))
    sounding = sorted(int(i) for i in rng.choice(n, size=sounding_count, replace=False))
    return objects, centres, sounding


def sounding_classes(subset: str, seed: int, video: int) -> tuple[str, ...]:
    """The classes of a video's sounding objects (what its audio is the mixture of), sorted."""
    objects, _, sounding = _video_layout(subset, seed, video)
    return tuple(sorted(CLASSES[objects[i]][0] for i in sounding))


def synthetic_frame(subset: str, seed: int, video: int, frame: int, size: int = 224) -> SyntheticFrame:
    if subset not in SUBSETS:
        raise ValueError(f"subset must be one of {SUBSETS}, got {subset!r}")
    objects, centres, sounding = _video_layout(subset, seed, video)
    rng = np.random.default_rng([seed, video, frame, 7])
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = rng.uniform(0.35, 0.6, size=3)
    background = 0.85 + 0.1 * np.sin(2 * np.pi * (rng.uniform(2, 5) * xx + rng.uniform(2, 5) * yy)) + 0.05 * rng.standard_normal((size, size))
    image = base[None, None, :] * background[:, :, None]
    mask = np.zeros((size, size), dtype=np.uint8)
    everything = np.zeros((size, size), dtype=bool)
    for i, (cls, (cy, cx)) in enumerate(zip(objects, centres, strict=True)):
        _, shape, colour, texture, *_ = CLASSES[cls]
        jitter = rng.uniform(-0.02, 0.02, size=2)
        region = _shape_mask(shape, yy, xx, cy + jitter[0], cx + jitter[1], 0.13)
        image[region] = (np.array(colour) / 255.0)[None, :] * _texture(texture, yy, xx)[region][:, None]
        everything |= region
        if i in sounding:
            mask[region] = cls + 1 if subset == "avss" else 1
    audio = sum(class_signature(objects[i], phase=frame) for i in sounding) / max(len(sounding), 1)
    audio = 0.5 * audio / max(np.abs(audio).max(), 1e-6) + 0.02 * rng.standard_normal(audio.size)
    image8 = (np.clip(image, 0, 1) * 255).astype(np.uint8)
    return SyntheticFrame(image8, mask, np.clip(audio, -1, 1).astype(np.float32), objects, sounding, everything)


def split_of(video: int, videos: int) -> str:
    """70% train, 15% val, 15% test, by video index."""
    if video < round(0.7 * videos):
        return "train"
    return "val" if video < round(0.85 * videos) else "test"


def write_layout(subset: str, out, videos: int = 20, seed: int = 0, size: int = 224, progress=None) -> dict:
    """Write ``videos`` synthetic videos in the AVSBench layout of ``subset`` under ``out``.

    Files are written under a temporary folder beside ``out`` and moved into place at the end, so
    an interrupted run leaves no half-written dataset.
    """
    import shutil
    from pathlib import Path

    from avsbench_kit.errors import UserError

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty")
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        return _write(subset, out, tmp, videos, seed, size, progress)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError(f"cannot write the dataset to {out}: {exc.strerror or exc}") from None


def _write(subset: str, out, tmp, videos: int, seed: int, size: int, progress) -> dict:
    import json
    import pickle

    import soundfile
    from PIL import Image

    from avsbench_kit.audio import waveform_to_examples
    from avsbench_kit.data.avsbench import avss_paths, ms3_paths, s4_paths

    rows = []
    counts = {s: 0 for s in ("train", "val", "test")}
    for video in range(videos):
        split = split_of(video, videos)
        counts[split] += 1
        name = f"{subset}_{seed}_{video:05d}"
        frames = [synthetic_frame(subset, seed, video, f, size) for f in range(FRAMES_PER_VIDEO)]
        wave = np.concatenate([f.waveform for f in frames])
        category = CLASSES[frames[0].objects[frames[0].sounding[0]]][0]
        for i, frame in enumerate(frames):
            if subset == "s4":
                paths = s4_paths(tmp, split, category, name, i + 1)
            elif subset == "ms3":
                paths = ms3_paths(tmp, split, name, i + 1)
            else:
                paths = avss_paths(tmp, "v1m", name, i)
            for key in ("image", "mask"):
                paths[key].parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(frame.image).save(paths["image"])
            if subset == "s4" and split == "train" and i > 0:
                continue  # the released S4 train split annotates frame 1 only
            if subset == "s4":
                Image.fromarray(frame.mask * 255).save(paths["mask"])
            else:
                label = Image.fromarray(frame.mask, mode="L").convert("P")  # palette: index = value
                label.putpalette([v for c in range(256) for v in ((c * 37) % 256, (c * 91) % 256, (c * 53) % 256)])
                label.save(paths["mask"])
                if subset == "avss":
                    paths["rgb"].parent.mkdir(parents=True, exist_ok=True)
                    label.convert("RGB").save(paths["rgb"])
        paths["wav"].parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(paths["wav"], wave, SAMPLE_RATE)
        if subset != "avss":  # from the 16-bit wav as written, as the released .pkl files were made
            stored, _ = soundfile.read(paths["wav"], dtype="float32")
            examples = waveform_to_examples(stored, SAMPLE_RATE)[:FRAMES_PER_VIDEO].unsqueeze(1)
            paths["log_mel"].parent.mkdir(parents=True, exist_ok=True)
            with open(paths["log_mel"], "wb") as f:
                pickle.dump(examples, f)
        rows.append({"name": name, "category": category, "split": split})
        if progress:
            progress(video + 1)
    _write_metadata(subset, tmp, rows)
    if subset == "avss":
        (tmp / "label2idx.json").write_text(json.dumps({"background": 0, **{c[0]: i + 1 for i, c in enumerate(CLASSES)}}, indent=1))
    if out.exists():
        out.rmdir()
    tmp.rename(out)
    return {"subset": subset, "root": str(out), "videos": videos, "splits": counts, "seed": seed, "size": size}


def _write_metadata(subset: str, root, rows: list[dict]) -> None:
    import csv

    if subset == "s4":
        path, header = root / "s4_meta_data.csv", ["name", "category", "split"]
        lines = [[r["name"], r["category"], r["split"]] for r in rows]
    elif subset == "ms3":
        path, header = root / "ms3_meta_data.csv", ["video_id", "split"]
        lines = [[r["name"], r["split"]] for r in rows]
    else:
        path, header = root / "metadata.csv", ["vid", "uid", "s_min", "s_sec", "a_obj", "split", "label"]
        lines = [[r["name"], r["name"], 0, 0, r["category"], r["split"], "v1m"] for r in rows]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(lines)
