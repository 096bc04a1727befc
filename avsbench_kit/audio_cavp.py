"""CAVP's own audio front end (cyh-0/CAVP), as its release feeds its model: waveform -> ``[1, 96, 64]``.

Not AVSBench's VGGish log-mel (avsbench_kit.audio). The release's steps, with file references:

- ``dataset/avss/audio/audio_dataset.py`` ``crop_audio`` (``audio_len=10``, as ``avss_datasets.py`` builds it):
  10 s around the middle of the clip; a clip shorter than that is indexed from ``middle - 5 s``, which
  is negative for AVSBench's 5 s clips, so the slice keeps the clip's **second half only**, then tiles
  it to 10 s. Channels are averaged after the crop.
- The trainers' ``waveform.view(B, T, 1, -1)`` with ``T = 10`` frames (``trainer_cavp_avss_image.py``,
  the pipeline ``main_avss.py`` runs; ``trainer_cavp_avs_obj.py`` uses ``T = 5``): frame ``i`` gets the
  ``i``-th tenth of the 10 s.
- ``preprocess_audio``: torchaudio's ``MelSpectrogram`` (16 kHz, n_fft 512, window 400, hop 160, 64 mels,
  125-3800 Hz; power 2, centred with reflection padding, HTK mel, no normalisation), the first 96 frames,
  then ``utils/sourcesep.py``: ``20 log10(max(x, 1e-5))`` in float32 and ``normalize_spec`` with
  ``spec_min = -100``, ``spec_max = 100`` (``config_avss_binary.py``), i.e. divided by 100.

torchaudio is used for the transform because it *is* the release's transform (the project pins
torchaudio for transforms already); it is imported when first needed, so the rest of avskit runs
without it.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor

from avsbench_kit.audio import SAMPLE_RATE
from avsbench_kit.errors import UserError

CROP_SECONDS = 10  # audio_len=10 in the datasets
PIECES = 10  # T in the AVSS trainer's waveform.view(B, T, 1, -1)
FRAMES = 96  # preprocess_audio keeps the first 96 STFT frames (audio_len 1.0)
SPEC_MIN, SPEC_MAX = -100.0, 100.0


@lru_cache(maxsize=1)
def _mel():
    import torchaudio

    return torchaudio.transforms.MelSpectrogram(sample_rate=SAMPLE_RATE, n_fft=512, win_length=400, hop_length=160, n_mels=64,
                                                f_min=125.0, f_max=3800.0)


def log_mel(waveform: Tensor) -> Tensor:
    """``[1, 96, 64]`` model input of one frame's waveform (1-D, 16 kHz, at least 0.95 s)."""
    wave = torch.as_tensor(waveform, dtype=torch.float32)
    if wave.dim() != 1:
        raise UserError(f"waveform must be 1-D (mono), got shape {list(wave.shape)}")
    if wave.numel() < (FRAMES - 1) * 160:
        raise UserError(f"CAVP's front end needs {(FRAMES - 1) * 160} samples (0.95 s at 16 kHz) per frame, got {wave.numel()}")
    spec = _mel()(wave[None])[:, :, :FRAMES].transpose(-1, -2)
    db = 20.0 * (torch.log(torch.maximum(torch.tensor(1e-5), spec.float())) / torch.log(torch.tensor(10.0)))
    return 2.0 * (db - SPEC_MIN) / float(SPEC_MAX - SPEC_MIN) - 1.0


def crop(clip: Tensor, seconds: int = CROP_SECONDS) -> Tensor:
    """The dataset's ``crop_audio`` on ``[channels, samples]`` at 16 kHz, quirk included (see the module doc)."""
    length = int(seconds * SAMPLE_RATE)
    start = clip.shape[1] // 2 - length // 2
    piece = clip[:, start:start + length]  # a negative start counts from the end, as Python slicing does
    if piece.shape[1] != length:
        piece = piece.repeat(1, length // piece.shape[1] + 1)[:, :length]
    return piece


def clip_inputs(clip: Tensor, pieces: int = PIECES) -> Tensor:
    """``[pieces, 1, 96, 64]``: every frame's input from one clip ``[channels, samples]`` at 16 kHz."""
    if clip.dim() != 2 or clip.shape[1] == 0:
        raise UserError(f"a clip must be [channels, samples] with samples > 0, got shape {list(clip.shape)}")
    mono = crop(clip.float()).mean(0)
    return torch.stack([log_mel(p) for p in mono.view(pieces, -1)])
