"""The VGGish front end: framing, mel scale, log offset, resampling."""

import math

import numpy as np
import pytest
import torch

from avsbench_kit import UserError
from avsbench_kit.audio import BANDS, HIGH_HZ, LOG_OFFSET, LOW_HZ, mel_weights, waveform_to_examples


def tone(hz: float, seconds: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return 0.5 * np.sin(2 * np.pi * hz * t)


def mel(hz: float) -> float:
    return 1127.0 * math.log1p(hz / 700.0)


def test_five_seconds_make_five_examples():
    examples = waveform_to_examples(tone(440, 5.0), 16000)
    assert examples.shape == (5, 96, 64) and examples.dtype == torch.float32


def test_silence_is_the_log_offset():
    examples = waveform_to_examples(np.zeros(16000), 16000)
    assert examples.shape == (1, 96, 64)
    assert torch.allclose(examples, torch.full_like(examples, math.log(LOG_OFFSET)))


def test_a_tone_lands_in_its_mel_band():
    hz = 1000.0
    examples = waveform_to_examples(tone(hz, 1.0), 16000)
    band = int(examples[0].mean(0).argmax())
    edges = np.linspace(mel(LOW_HZ), mel(HIGH_HZ), BANDS + 2)
    centre = int(np.argmin(np.abs(edges[1:-1] - mel(hz))))
    assert abs(band - centre) <= 1


def test_mel_weights_shape_and_dc_row():
    w = mel_weights()
    assert w.shape == (257, 64)
    assert torch.all(w[0] == 0)
    assert torch.all(w.max(0).values > 0.5)  # every band has a triangle on the FFT grid


def test_other_rates_are_resampled():
    a = waveform_to_examples(tone(1000, 2.0, 16000), 16000)
    b = waveform_to_examples(torch.tensor(tone(1000, 2.0, 44100), dtype=torch.float32), 44100)
    assert a.shape == b.shape == (2, 96, 64)
    assert (a - b).abs().mean() < 0.1


def test_bad_waveforms():
    with pytest.raises(UserError, match="1-D"):
        waveform_to_examples(np.zeros((2, 16000)), 16000)
    with pytest.raises(UserError, match="sample rate"):
        waveform_to_examples(np.zeros(16000), 0)
    assert waveform_to_examples(np.zeros(100), 16000).shape == (0, 96, 64)
