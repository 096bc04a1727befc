"""AVSBench readers (S4, MS3, AVSS) in the released layout, one frame at a time (T=1).

Each sample is one frame, its 0.96 s log-mel example and its mask: ``(image [3, H, W]`` normalised,
``audio [1, 96, 64]``, ``mask [H, W]``, ``info``). Audio comes from the precomputed log-mel
``.pkl`` when there is one, else from the wav. Every missing or malformed file is a UserError
naming the file and the problem.

Layouts (root = the folder holding the metadata csv):

- S4 (``Single-source``): ``s4_meta_data.csv`` (column 0 the video, ``category``, ``split``);
  ``s4_data/visual_frames/{split}/{category}/{video}/{video}_{i}.png``;
  ``s4_data/audio_log_mel/{split}/{category}/{video}.pkl`` (a pickled tensor [5, 1, 96, 64]);
  ``s4_data/gt_masks/{split}/{category}/{video}/{video}_{i}.png`` (train: frame 1 only);
  ``s4_data/audio_wav/{split}/{category}/{video}.wav``.
- MS3 (``Multi-sources``): ``ms3_meta_data.csv`` (column 0 the video, ``split``);
  ``ms3_data/visual_frames/{video}/{video}.mp4_{i}.png``; ``ms3_data/audio_log_mel/{split}/{video}.pkl``;
  ``ms3_data/gt_masks/{split}/{video}/{video}_{i}.png`` (palette); ``ms3_data/audio_wav/{split}/{video}.wav``.
- AVSS: ``metadata.csv`` (``uid``, ``label`` in v1s/v1m/v2, ``split``); ``{label}/{uid}/frames/{i}.jpg``,
  ``labels_semantic/{i}.png``, ``labels_rgb/{i}.png``, ``audio.wav``; ``label2idx.json``. Frames are
  numbered from 0 here; v1s/v1m have 5 frames, v2 has 10.
"""

from __future__ import annotations

import csv
import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from avsbench_kit.audio import FRAMES_PER_EXAMPLE, SAMPLE_RATE, waveform_to_examples
from avsbench_kit.errors import UserError

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class FrameRef:
    video: str
    index: int  # 1-based for S4/MS3, 0-based for AVSS, as the files are named
    audio_index: int  # which 0.96 s example of the video's audio
    image: Path
    mask: Path
    log_mel: Path | None
    wav: Path


def s4_paths(root: Path, split: str, category: str, video: str, i: int) -> dict[str, Path]:
    d = root / "s4_data"
    return {"image": d / "visual_frames" / split / category / video / f"{video}_{i}.png",
            "mask": d / "gt_masks" / split / category / video / f"{video}_{i}.png",
            "log_mel": d / "audio_log_mel" / split / category / f"{video}.pkl",
            "wav": d / "audio_wav" / split / category / f"{video}.wav"}


def ms3_paths(root: Path, split: str, video: str, i: int) -> dict[str, Path]:
    d = root / "ms3_data"
    return {"image": d / "visual_frames" / video / f"{video}.mp4_{i}.png",
            "mask": d / "gt_masks" / split / video / f"{video}_{i}.png",
            "log_mel": d / "audio_log_mel" / split / f"{video}.pkl",
            "wav": d / "audio_wav" / split / f"{video}.wav"}


def avss_paths(root: Path, label: str, uid: str, i: int) -> dict[str, Path]:
    d = root / label / uid
    return {"image": d / "frames" / f"{i}.jpg", "mask": d / "labels_semantic" / f"{i}.png",
            "rgb": d / "labels_rgb" / f"{i}.png", "wav": d / "audio.wav"}


def _read_csv(path: Path, needed: tuple[str, ...]) -> list[dict[str, str]]:
    if not path.is_file():
        raise UserError(f"{path}: metadata file not found (is the dataset root right?)")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader)
            rows = [dict(zip(header, row, strict=False), _first=row[0]) for row in reader if row]
    except (OSError, UnicodeDecodeError, StopIteration, csv.Error) as exc:
        raise UserError(f"{path}: not a readable csv ({type(exc).__name__})") from None
    missing = [c for c in needed if c not in header]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)} (has: {', '.join(header)})")
    return rows


class AVSBenchFrames(torch.utils.data.Dataset):
    """One split of S4, MS3 or AVSS as T=1 samples."""

    def __init__(self, root: str | Path, subset: str, split: str, size: int = 224, front_end: str = "vggish"):
        self.root, self.subset, self.split, self.size = Path(root), subset, split, size
        self.front_end = front_end  # "vggish": AVSBench's log-mel (.pkl, else from the wav); "cavp": CAVP's, from the wav
        if not self.root.is_dir():
            raise UserError(f"dataset root {root} is not a directory")
        if split not in SPLITS:
            raise UserError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        self.frames = {"s4": self._s4, "ms3": self._ms3, "avss": self._avss}[subset]()
        self._audio_cache: dict[Path, Tensor] = {}

    def _s4(self) -> list[FrameRef]:
        rows = _read_csv(self.root / "s4_meta_data.csv", ("category", "split"))
        frames = []
        for row in rows:
            if row["split"] != self.split:
                continue
            indices = [1] if self.split == "train" else range(1, 6)  # S4 train supervises frame 1 only
            for i in indices:
                p = s4_paths(self.root, self.split, row["category"], row["_first"], i)
                frames.append(FrameRef(row["_first"], i, i - 1, p["image"], p["mask"], p["log_mel"], p["wav"]))
        return frames

    def _ms3(self) -> list[FrameRef]:
        rows = _read_csv(self.root / "ms3_meta_data.csv", ("split",))
        frames = []
        for row in rows:
            if row["split"] == self.split:
                for i in range(1, 6):
                    p = ms3_paths(self.root, self.split, row["_first"], i)
                    frames.append(FrameRef(row["_first"], i, i - 1, p["image"], p["mask"], p["log_mel"], p["wav"]))
        return frames

    def _avss(self) -> list[FrameRef]:
        rows = _read_csv(self.root / "metadata.csv", ("uid", "label", "split"))
        frames = []
        for row in rows:
            if row["split"] == self.split:
                count = 10 if row["label"] == "v2" else 5
                for i in range(count):
                    p = avss_paths(self.root, row["label"], row["uid"], i)
                    frames.append(FrameRef(row["uid"], i, i, p["image"], p["mask"], None, p["wav"]))
        return frames

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, n: int) -> tuple[Tensor, Tensor, Tensor, dict]:
        ref = self.frames[n]
        image = normalise_rgb(read_image(ref.image, self.size, "RGB"))
        mask = read_mask(ref.mask, self.size, semantic=self.subset == "avss")
        audio = self._audio(ref)[ref.audio_index].unsqueeze(0)
        return image, audio, mask, {"video": ref.video, "frame": ref.index}

    def sounding_label(self, n: int) -> str:
        """What frame ``n``'s audio is the sound of: its S4 category (the folder above the video's);
        MS3 and AVSS name no per-frame class, so the video stands for it."""
        ref = self.frames[n]
        return ref.image.parent.parent.name if self.subset == "s4" else ref.video

    def audio(self, n: int) -> Tensor:
        """Frame ``n``'s log-mel example ``[1, 96, 64]`` alone (no image or mask read)."""
        ref = self.frames[n]
        return self._audio(ref)[ref.audio_index].unsqueeze(0)

    def _audio(self, ref: FrameRef) -> Tensor:
        key = ref.log_mel if ref.log_mel is not None and ref.log_mel.is_file() and self.front_end == "vggish" else ref.wav
        if key not in self._audio_cache:
            if self.front_end == "cavp":
                examples = read_wav_cavp(key)
            else:
                examples = read_log_mel(key) if key.suffix == ".pkl" else read_wav_examples(key)
            if examples.shape[0] <= ref.audio_index:
                raise UserError(f"{key}: has {examples.shape[0]} audio example(s), frame {ref.index} needs {ref.audio_index + 1}")
            self._audio_cache[key] = examples
        return self._audio_cache[key]


def normalise_rgb(rgb: np.ndarray) -> Tensor:
    """``[H, W, 3]`` uint8 pixels -> ``[3, H, W]`` float, normalised with the ImageNet statistics."""
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float() / 255.0
    return (x - IMAGENET_MEAN) / IMAGENET_STD


def read_image(path: Path, size: int, mode: str | None) -> np.ndarray:
    """Pixels of an image resized to size x size; ``mode=None`` keeps the stored values (label maps)."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise UserError(f"{path}: missing")
    try:
        with Image.open(path) as img:
            if mode is not None:
                img = img.convert(mode)
            elif img.mode not in ("P", "L", "I", "I;16"):
                raise UserError(f"{path}: a label map must hold class indices (mode P or L), not {img.mode}")
            if img.size != (size, size):
                img = img.resize((size, size), Image.BILINEAR if mode == "RGB" else Image.NEAREST)
            return np.array(img)  # a writable copy
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise UserError(f"{path}: not a readable image ({type(exc).__name__})") from None


def read_mask(path: Path, size: int, semantic: bool) -> Tensor:
    """Binary masks: any non-zero pixel is foreground (grayscale or palette). Semantic: class indices."""
    values = read_image(path, size, None if semantic else "L")
    return torch.from_numpy(values.astype(np.int64)) if semantic else torch.from_numpy((values > 0).astype(np.float32))


def _storage_from_bytes(data: bytes):
    """A pickled tensor's storage, read with torch.load(weights_only=True), in place of the pickle's
    own ``torch.storage._load_from_bytes``, which would read it with the unrestricted unpickler."""
    return torch.load(io.BytesIO(data), weights_only=True)


class TensorUnpickler(pickle.Unpickler):
    """Unpickles tensors and arrays only, as ``torch.load(weights_only=True)`` does: a pickle that
    asks for any other global (a function to call, a class to build) is refused, so reading a
    dataset file never runs code."""

    ALLOWED = {
        ("torch._utils", "_rebuild_tensor_v2"): None,
        ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
        ("collections", "OrderedDict"): None,
        ("numpy", "ndarray"): None,
        ("numpy", "dtype"): None,
        ("numpy.core.multiarray", "_reconstruct"): None,
        ("numpy._core.multiarray", "_reconstruct"): None,
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"it asks for {module}.{name}, which is not a tensor or an array")
        replacement = self.ALLOWED[(module, name)]
        if replacement is not None:
            return replacement
        if module.startswith("numpy"):
            import importlib

            return getattr(importlib.import_module(module), name)
        return super().find_class(module, name)


def read_log_mel(path: Path) -> Tensor:
    """The released ``.pkl``: a pickled tensor of log-mel examples ``[n, 1, 96, 64]`` (n = 5 per video),
    read with :class:`TensorUnpickler` (tensors and arrays only; nothing in the file can run)."""
    try:
        with open(path, "rb") as f:
            value = TensorUnpickler(f).load()
    except pickle.UnpicklingError as exc:
        raise UserError(f"{path}: refused: {exc} (only tensors and arrays are read from a log-mel pickle)") from None
    except Exception as exc:  # any other unpickling failure is a malformed file
        raise UserError(f"{path}: not a readable log-mel pickle ({type(exc).__name__})") from None
    tensor = torch.as_tensor(np.asarray(value) if not isinstance(value, Tensor) else value).float()
    if tensor.dim() == 3:
        tensor = tensor.unsqueeze(1)
    if tensor.dim() != 4 or tuple(tensor.shape[1:]) != (1, FRAMES_PER_EXAMPLE, 64):
        raise UserError(f"{path}: log-mel tensor has shape {list(tensor.shape)}, expected [n, 1, 96, 64]")
    return tensor[:, 0]


def read_wav(path: Path, what: str = "and no log-mel .pkl beside it") -> tuple[np.ndarray, int]:
    """``[samples, channels]`` float32 and the sample rate; UserError when missing or unreadable."""
    import soundfile

    if not path.is_file():
        raise UserError(f"{path}: missing ({what})")
    try:
        return soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as exc:
        raise UserError(f"{path}: not a readable wav ({exc})") from None


def read_wav_cavp(path: Path) -> Tensor:
    """CAVP's inputs ``[10, 96, 64]`` for the frames of one clip, as its release computes them from the wav."""
    from avsbench_kit.audio_cavp import clip_inputs

    wave, rate = read_wav(path, "CAVP reads the wav, never the log-mel .pkl")
    clip = torch.from_numpy(np.ascontiguousarray(wave.T))
    if rate != SAMPLE_RATE:
        import torchaudio.functional as AF

        clip = AF.resample(clip, rate, SAMPLE_RATE)
    if clip.shape[1] < SAMPLE_RATE:
        raise UserError(f"{path}: too short ({clip.shape[1]} samples at 16 kHz; CAVP's front end needs 1 s)")
    return clip_inputs(clip)[:, 0]


def read_wav_examples(path: Path) -> Tensor:
    wave, rate = read_wav(path)
    examples = waveform_to_examples(wave.mean(1), rate)
    if examples.shape[0] == 0:
        raise UserError(f"{path}: too short or truncated ({wave.shape[0]} samples at {rate} Hz; one example needs 0.96 s)")
    return examples
