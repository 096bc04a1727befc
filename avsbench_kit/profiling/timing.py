"""End-to-end latency as a distribution.

CPU: ``time.perf_counter`` around each call. CUDA: one event pair per iteration, one synchronize
per iteration after the end event, so launch overhead is measured but nothing is serialised
inside the model. Several candidates are run interleaved (A B A B ...), so a slow phase of a
shared machine hits all of them alike.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

NOISY_IQR = 0.10  # IQR / median above this is flagged


@dataclass(frozen=True)
class LatencyStats:
    median: float
    mean: float
    iqr: float
    p90: float
    n: int
    samples: tuple[float, ...] = field(default=(), repr=False, compare=False)  # every timed round, in order

    @classmethod
    def from_samples(cls, samples_ms: list[float]) -> "LatencyStats":
        if len(samples_ms) < 2:
            value = samples_ms[0]
            return cls(value, value, 0.0, value, len(samples_ms), tuple(samples_ms))
        q1, _, q3 = statistics.quantiles(samples_ms, n=4, method="inclusive")
        p90 = statistics.quantiles(samples_ms, n=10, method="inclusive")[-1]
        return cls(statistics.median(samples_ms), statistics.fmean(samples_ms), q3 - q1, p90, len(samples_ms), tuple(samples_ms))

    @property
    def noisy(self) -> bool:
        return self.median > 0 and self.iqr / self.median > NOISY_IQR

    def to_dict(self) -> dict:
        """The summary (median, mean, IQR, p90, n); the rounds themselves are :meth:`samples_ms`."""
        return {"median": round(self.median, 4), "mean": round(self.mean, 4), "iqr": round(self.iqr, 4),
                "p90": round(self.p90, 4), "n": self.n}

    def samples_ms(self) -> list[float]:
        """Every timed round's milliseconds, in the order they ran (4 decimals): what a plot shows."""
        return [round(v, 4) for v in self.samples]


def time_once(fn: Callable[[], object], device: torch.device) -> float:
    """Milliseconds of one call of ``fn``."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end)
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000.0


def interleaved_latency(
    fns: list[Callable[[], object]], device: torch.device, warmup: int = 5, iters: int = 30,
    on_iteration: Callable[[int], None] | None = None,
) -> list[LatencyStats]:
    """Latency statistics of each callable, measured in rounds ``fns[0](), fns[1](), ...``."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    samples: list[list[float]] = [[] for _ in fns]
    for i in range(iters):
        for fn, bucket in zip(fns, samples, strict=True):
            bucket.append(time_once(fn, device))
        if on_iteration:
            on_iteration(i + 1)
    return [LatencyStats.from_samples(s) for s in samples]
