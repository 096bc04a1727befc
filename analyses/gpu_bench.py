"""``avskit gpu-bench``: everything the paper times, in one prepared run on whatever CUDA machine is at hand.

All zoo models at batch 1 in fp32 and bf16, eager and CUDA graphs; the Table 7 stage patterns and
the Table 8 query counts on AVESFormer-R50; each group timed interleaved in one process, with
AVESFormer-R50 first so it anchors every run (as in ``avskit report``, whose tables then take
these records as their GPU columns). Needs torch and torchvision only: fvcore, where installed,
adds FLOPs and utilization. Writes OUT/records.jsonl, OUT/gpu-bench.json and OUT/gpu-bench.md.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import torch

from avsbench_kit import make_spec
from avsbench_kit.errors import UserError
from avsbench_kit.results import consolidate, ensure_writable_folder
from avsbench_kit.spec import ZOO, ModelSpec
from avskit.analyses.profile import ProfileOptions, profile, profile_markdown

OUTPUTS = ("gpu-bench.md", "gpu-bench.json", "records.jsonl")


def groups(quick: bool) -> dict[str, list[ModelSpec]]:
    if quick:
        return {"zoo": [make_spec("avesformer-r18")], "stages (Table 7)": [make_spec("avesformer-r18", {"stages": "TTT"})]}
    return {
        "zoo (Table 3)": [make_spec("avesformer-r50")] + [make_spec(name) for name in ZOO if name != "avesformer-r50"],
        "stages (Table 7)": [make_spec("avesformer-r50", {"stages": s}) for s in ("CTT", "TTT", "TCT", "TTC")],
        "queries (Table 8)": [make_spec("avesformer-r50", {"queries": n}) for n in (16, 8, 32, 64, 128, 256)],
    }


def option_sets(device: str, quick: bool) -> list[dict]:
    if device != "cuda":  # the CPU run is a smoke test of the same pipeline: no CUDA graphs there, and no bf16:
        # an AVX2 CPU without bf16 units runs the C layer's depthwise convolution per group on a slow path
        # (5.7 s of a 6.1 s forward at 64 px, fp32: 0.16 s; README, "How it measures"). channels_last is the speed path timed beside eager.
        return [{"channels_last": True}]
    return [{"dtype": "fp32", "cuda_graphs": True}, {"dtype": "bf16"}, {"dtype": "bf16", "cuda_graphs": True}]


def check_device(device: str) -> None:
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("no CUDA device is available (--device cpu runs the same benchmark on the CPU)")
    if device not in ("cuda", "cpu"):
        raise UserError(f"--device must be cuda or cpu, got {device!r}")


def run_gpu_bench(out: Path, device: str = "cuda", quick: bool = False, progress: Callable[[str], None] = lambda _: None) -> dict:
    """Time every group under every option set into ``out``; returns ``{"out", "files", "reports"}``."""
    check_device(device)
    ensure_writable_folder(out, "OUT", "the benchmark's outputs")
    out.mkdir(parents=True, exist_ok=True)
    size, warmup, iters = (64, 1, 3) if quick else (224, 10, 50)
    started = time.time()
    reports = []
    for group, specs in groups(quick).items():
        for extra in option_sets(device, quick):
            opts = ProfileOptions(device=device, size=size, warmup=warmup, iters=iters, depth=1,
                                  breakdown_iters=3 if quick else 20, peak_size=256 if quick else None, **extra)
            progress(f"[{time.time() - started:6.1f}s] {group}: " + ", ".join(f"{k}={v}" for k, v in extra.items()))
            report = profile(specs, opts, out / "records.jsonl")
            report["group"] = group
            reports.append(report)
    consolidate(out / "records.jsonl")  # one file to carry back (the run's own folder: no other writer)
    (out / "gpu-bench.json").write_text(json.dumps(reports, indent=1))
    (out / "gpu-bench.md").write_text(profile_markdown(reports))
    progress(f"[{time.time() - started:6.1f}s] done")
    return {"out": str(out), "files": [str(out / name) for name in OUTPUTS], "reports": reports}
