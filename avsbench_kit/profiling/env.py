"""The environment a measurement was taken in: device and its name, threads, versions, commit, time."""

from __future__ import annotations

import datetime as _dt
import platform
import socket
import subprocess
from functools import lru_cache
from pathlib import Path

import torch


@lru_cache(maxsize=1)
def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the checkout the package runs from, with '+dirty' when it has changes."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file():  # installed from a wheel: no checkout to ask
        return None
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, timeout=5)
        return sha.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_name()


KEEP_DENORMALS = "AVSKIT_KEEP_DENORMALS"  # set to 1: keep IEEE subnormals (bit-for-bit the runs made before the flush)


def flush_denormals() -> bool:
    """Treat subnormal floats (below 1.2e-38 in float32) as zero on the CPU: flush-to-zero and
    denormals-are-zero (``torch.set_flush_denormal``). Some CPUs compute on subnormals at a fraction of
    their speed: on an Intel Xeon of this project's machine class a 512^2 matmul of tiny values took
    200x as long as one of normal values, and a trained model's peaky softmaxes and saturated sigmoids
    produce them (docs/training.md measures what it did to a training run). The results change only
    below 1e-38.

    The setting is per thread, and a thread inherits it from the thread that starts it: called before
    torch's first parallel operation, it also reaches the intra-op worker threads; called later, only
    this thread. ``avskit`` calls it at start-up unless AVSKIT_KEEP_DENORMALS=1. Returns whether the
    CPU supports it (torch's answer)."""
    return bool(torch.set_flush_denormal(True))


def denormals_flushed() -> bool:
    """Whether this thread flushes subnormals to zero: 1e-30 * 1e-10 (1e-40, subnormal) reads as 0."""
    return bool((torch.tensor(1e-30) * torch.tensor(1e-10)).item() == 0.0)


def environment(device: torch.device) -> dict:
    env = {
        "device": device.type,
        "device_name": device_name(device),
        "host": socket.gethostname(),  # ratios compare only within one run, on one machine
        "threads": torch.get_num_threads(),
        "denormals": "flushed" if denormals_flushed() else "kept",  # subnormal floats: flush_denormals
        "torch": torch.__version__,
        "python": platform.python_version(),
        "commit": git_commit(),
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if device.type == "cuda":
        env["cuda"] = torch.version.cuda
        env["cudnn"] = torch.backends.cudnn.version()
        env["device_uuid"] = str(getattr(torch.cuda.get_device_properties(device), "uuid", "")) or None
    return env


def command_line() -> str | None:
    """The command this process runs, shell-quoted, as a record's provenance states it."""
    import shlex
    import sys

    return " ".join(shlex.quote(a) for a in [Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else None


def gemm_probe(repeats: int = 20, n: int = 1024) -> float:
    """This CPU's speed today, in GMAC/s: the best of ``repeats`` fp32 ``n``^3 matmuls on torch's
    threads (about 0.3 s). Shared machines vary up to 3x from day to day, so a training time is
    recorded with the probe beside it; the probe does not carry across CPU kinds. Its inputs come
    from a private generator: the global RNG, and so a seeded run, is untouched."""
    import time

    generator = torch.Generator().manual_seed(0)
    a, b = torch.rand(n, n, generator=generator), torch.rand(n, n, generator=generator)
    a @ b  # warm up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return round(n**3 / best / 1e9, 1)
