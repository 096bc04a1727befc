"""The prepared GPU benchmark: everything the paper times, on whatever CUDA machine is at hand.

    python3 scripts/gpu_bench.py OUTDIR [--device cuda] [--quick]

Needs only torch and torchvision (fvcore, if installed, adds FLOPs and utilization). Writes
OUTDIR/records.jsonl (one record per measurement, with provenance), OUTDIR/gpu-bench.json (the
full reports) and OUTDIR/gpu-bench.md (the tables). All zoo models at batch 1, fp32 and bf16,
eager and CUDA graphs; the Table 7 stage patterns and the Table 8 query counts on AVESFormer-R50.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a plain checkout, not installed

import torch  # noqa: E402

from analyses.profile import ProfileOptions, profile, profile_markdown  # noqa: E402
from avsbench_kit import make_spec  # noqa: E402
from avsbench_kit.results import consolidate  # noqa: E402
from avsbench_kit.spec import ZOO  # noqa: E402


def groups(quick: bool) -> dict[str, list]:
    if quick:
        return {"zoo": [make_spec("avesformer-r18")], "stages (Table 7)": [make_spec("avesformer-r18", {"stages": "TTT"})]}
    return {
        # AVESFormer-R50 first in every group: it anchors each run, as in `avskit report`, whose
        # tables then take these records as their GPU columns
        "zoo (Table 3)": [make_spec("avesformer-r50")] + [make_spec(name) for name in ZOO if name != "avesformer-r50"],
        "stages (Table 7)": [make_spec("avesformer-r50", {"stages": s}) for s in ("CTT", "TTT", "TCT", "TTC")],
        "queries (Table 8)": [make_spec("avesformer-r50", {"queries": n}) for n in (16, 8, 32, 64, 128, 256)],
    }


def option_sets(device: str, quick: bool) -> list[dict]:
    if device != "cuda":
        return [{"dtype": "fp32"}, {"dtype": "bf16"}] if not quick else [{"dtype": "bf16"}]
    return [{"dtype": "fp32", "cuda_graphs": True}, {"dtype": "bf16"}, {"dtype": "bf16", "cuda_graphs": True}]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("outdir")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--quick", action="store_true", help="a small smoke run (64x64, few rounds, two specs)")
    args = parser.parse_args(argv)
    shown: set[str] = set()

    def show_once(message, category, *rest, **kw) -> None:  # the random-weights notice once, not per model
        if str(message) not in shown:
            shown.add(str(message))
            print(f"warning: {message}", file=sys.stderr, flush=True)

    warnings.showwarning = show_once
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_bench: error: no CUDA device is available", file=sys.stderr)
        return 2
    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    size, warmup, iters = (64, 1, 3) if args.quick else (224, 10, 50)
    started = time.time()
    reports = []
    for group, specs in groups(args.quick).items():
        for extra in option_sets(args.device, args.quick):
            opts = ProfileOptions(device=args.device, size=size, warmup=warmup, iters=iters, depth=1,
                                  breakdown_iters=3 if args.quick else 20, peak_size=256 if args.quick else None, **extra)
            label = ", ".join(f"{k}={v}" for k, v in extra.items())
            print(f"[{time.time() - started:6.1f}s] {group}: {label}", flush=True)
            report = profile(specs, opts, out / "records.jsonl")
            report["group"] = group
            reports.append(report)
    consolidate(out / "records.jsonl")  # one file to carry back (the run's own folder: no other writer)
    (out / "gpu-bench.json").write_text(json.dumps(reports, indent=1))
    (out / "gpu-bench.md").write_text(profile_markdown(reports))
    print(f"[{time.time() - started:6.1f}s] wrote {out}/gpu-bench.md, gpu-bench.json, records.jsonl", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
