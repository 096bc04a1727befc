"""The device's measured peak: timed large GEMMs in the profiled dtype.

Achieved GFLOP/s of a model divided by this is its utilization. Both use the FLOP convention of
:mod:`avsbench_kit.profiling.flops` (one multiply-add = one FLOP), so an n x n x n GEMM is n^3.

The same GEMM is timed twice: through ``torch.matmul`` (the BLAS library) and as a 1x1
convolution (oneDNN on CPU, cuDNN on GPU). The two can differ a lot: on AMD CPUs the MKL that
PyTorch ships runs its slower code path, while oneDNN does not. The peak is the faster of the two
(each the best of ``iters`` calls). It is a GEMM probe, not a hardware bound: a convolution kernel
that beats both GEMM routes (oneDNN's direct 3x3 convolutions on some CPUs) or does fewer
multiply-adds than the convention counts (Winograd) gives a utilization above 1.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F

from avsbench_kit.profiling.timing import time_once


def _best_ms(fn, device: torch.device, iters: int) -> float:
    """The fastest of ``iters`` calls: a peak is what the device can do, not what a busy moment allows."""
    for _ in range(2):
        fn()
    return min(time_once(fn, device) for _ in range(iters))


def peak_matmul_gflops(device: torch.device, dtype: torch.dtype = torch.float32, n: int | None = None, iters: int = 10) -> dict[str, float]:
    """``{"peak", "matmul", "conv1x1"}`` in GFLOP/s for an n x n x n GEMM, measured once per process
    for each device, dtype, size and thread count (several profiles in one run share it)."""
    return dict(_measured_peak(torch.device(device), dtype, n, iters, torch.get_num_threads()))


@lru_cache(maxsize=None)
def _measured_peak(device: torch.device, dtype: torch.dtype, n: int | None, iters: int, threads: int) -> dict[str, float]:
    n = n or (8192 if device.type == "cuda" else 2048)
    gen = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, dtype=dtype, generator=gen)
    b = torch.randn(n, n, device=device, dtype=dtype, generator=gen)
    # the same GEMM as a 1x1 convolution: M = n pixels, K = n input channels, N = n output channels
    image = a.t().reshape(1, n, n // 32, 32)
    weight = b.reshape(n, n, 1, 1)
    with torch.inference_mode():
        rates = {
            "matmul": n**3 / _best_ms(lambda: torch.matmul(a, b), device, iters) * 1e-6,
            "conv1x1": n**3 / _best_ms(lambda: F.conv2d(image, weight), device, iters) * 1e-6,
        }
    return {"peak": max(rates.values()), **rates}
