"""Waveform -> VGGish log-mel examples, as the reference VGGish front end computes them.

16 kHz mono; 25 ms periodic-Hann windows (400 samples) every 10 ms (160), 512-point FFT
magnitude, no centring or padding; 64 HTK-mel bands from 125 to 7500 Hz (the DC row of the
weights zeroed); log(mel + 0.01); framed into examples of 96 frames x 64 bands, hop 96 frames
(0.96 s, no overlap). Other sample rates are resampled with torchaudio's resampler.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from avsbench_kit.errors import UserError

SAMPLE_RATE = 16000
WINDOW = 400  # 25 ms
HOP = 160  # 10 ms
FFT = 512
BANDS = 64
FRAMES_PER_EXAMPLE = 96  # 0.96 s
LOW_HZ, HIGH_HZ = 125.0, 7500.0
LOG_OFFSET = 0.01
EXAMPLE_SAMPLES = (FRAMES_PER_EXAMPLE - 1) * HOP + WINDOW  # 15,600: the samples one example reads


def _hz_to_mel(hz: Tensor) -> Tensor:
    return 1127.0 * torch.log1p(hz / 700.0)


@lru_cache(maxsize=1)
def mel_weights() -> Tensor:
    """``[FFT // 2 + 1, BANDS]`` triangular HTK-mel weights, zero on the DC bin."""
    bins = FFT // 2 + 1
    spectrum_mel = _hz_to_mel(torch.linspace(0.0, SAMPLE_RATE / 2, bins, dtype=torch.float64))
    edges = torch.linspace(float(_hz_to_mel(torch.tensor(LOW_HZ, dtype=torch.float64))),
                           float(_hz_to_mel(torch.tensor(HIGH_HZ, dtype=torch.float64))), BANDS + 2, dtype=torch.float64)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (spectrum_mel[:, None] - lower) / (centre - lower)
    falling = (upper - spectrum_mel[:, None]) / (upper - centre)
    weights = torch.clamp(torch.minimum(rising, falling), min=0.0)
    weights[0, :] = 0.0
    return weights.float()


def waveform_to_examples(waveform, sample_rate: int) -> Tensor:
    """``[n, 96, 64]`` float32 log-mel examples of a mono waveform in [-1, 1] (1-D tensor or array)."""
    wave = torch.as_tensor(np.asarray(waveform) if not isinstance(waveform, Tensor) else waveform, dtype=torch.float32)
    if wave.dim() != 1:
        raise UserError(f"waveform must be 1-D (mono), got shape {list(wave.shape)}")
    if sample_rate <= 0:
        raise UserError(f"sample rate must be positive, got {sample_rate}")
    if sample_rate != SAMPLE_RATE:
        import torchaudio.functional as AF

        wave = AF.resample(wave, sample_rate, SAMPLE_RATE)
    if wave.numel() < WINDOW:
        return torch.zeros(0, FRAMES_PER_EXAMPLE, BANDS)
    frames = wave.unfold(0, WINDOW, HOP)  # no centring: frame i starts at i * HOP
    window = torch.hann_window(WINDOW, periodic=True)
    magnitude = torch.fft.rfft(frames * window, n=FFT).abs()
    log_mel = torch.log(magnitude @ mel_weights() + LOG_OFFSET)
    n = log_mel.shape[0] // FRAMES_PER_EXAMPLE
    return log_mel[: n * FRAMES_PER_EXAMPLE].reshape(n, FRAMES_PER_EXAMPLE, BANDS).contiguous()
