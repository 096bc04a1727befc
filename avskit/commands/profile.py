"""`avskit profile`: latency distribution, per-module breakdown, FLOPs and utilization."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from avskit.commands.console import err, fmt, out, print_json
from avskit.commands.options import DeviceOption, JsonFlag, SetOption, ThreadsOption


def profile(
    models: Annotated[list[str], typer.Argument(help="One or more zoo models or labels like 'avesformer-r50[stages=TTT]'; several are timed "
                                                     "interleaved (A B A B ...).")],
    set_: SetOption = None,
    device: DeviceOption = "cpu",
    dtype: Annotated[str, typer.Option(help="fp32, or bf16/fp16 autocast (a speed path measured beside fp32 eager).")] = "fp32",
    batch: Annotated[int, typer.Option(help="Frames per forward (the real-time setting is 1).")] = 1,
    size: Annotated[int, typer.Option(help="Input height and width (a multiple of 32).")] = 224,
    threads: ThreadsOption = None,
    warmup: Annotated[int, typer.Option(help="Untimed rounds first.")] = 5,
    iters: Annotated[int, typer.Option(help="Timed rounds.")] = 30,
    compile_: Annotated[bool, typer.Option("--compile", help="Also time torch.compile (inductor; on CPU with freezing).")] = False,
    channels_last: Annotated[bool, typer.Option("--channels-last", help="Also time the channels_last memory format.")] = False,
    cuda_graphs: Annotated[bool, typer.Option("--cuda-graphs", help="Also time CUDA-graph replay (CUDA only).")] = False,
    depth: Annotated[int, typer.Option(help="Levels of the per-module tree below the model's parts (1 = parts only).")] = 2,
    trace: Annotated[Optional[str], typer.Option(metavar="FILE", help="Write a torch.profiler Chrome trace of the first model.")] = None,
    plot: Annotated[Optional[str], typer.Option(metavar="FILE", help="Draw every candidate's timed rounds (seaborn violins with the points, "
                                                                     "median marked, noisy runs flagged) to a .png, .svg or .pdf.")] = None,
    results: Annotated[Optional[str], typer.Option(metavar="PATH", help="Record store to append to (default: $AVSKIT_RESULTS or "
                                                                        "runs/records.jsonl).")] = None,
    json_out: JsonFlag = False,
) -> None:
    """How fast a model really is at T=1 and where its time goes: latency distribution, per-module breakdown, FLOPs, utilization.

    Eager fp32 is always measured; --compile, --channels-last, --dtype bf16/fp16 and --cuda-graphs add one
    speed path, timed in the same interleaved rounds and checked against eager's output (max abs difference).

    Examples:

        avskit profile avesformer-r18

        avskit profile avesformer-r50 avsegformer-r50 --json

        avskit profile avesformer-r50 --set stages=TTT --compile --threads 2

        avskit profile avesformer-r50 'avesformer-r50[stages=TTT]'

        avskit profile avesformer-r18 avsegformer-r50 --iters 20 --plot latency.png

        avskit profile avesformer-r18 --device cuda --dtype bf16 --cuda-graphs --trace trace.json
    """
    from avsbench_kit.spec import parse_set_options, spec_from_text
    from avskit.analyses.profile import ProfileOptions
    from avskit.analyses.profile import profile as run_profile

    opts = ProfileOptions(device=device, dtype=dtype, batch=batch, size=size, threads=threads, warmup=warmup, iters=iters,
                          compile=compile_, channels_last=channels_last, cuda_graphs=cuda_graphs, depth=depth, trace=trace,
                          plot=plot)
    overrides = parse_set_options(set_)
    specs = [spec_from_text(name, overrides) for name in models]
    opts.check()
    with err.status("profiling...") as status:
        report = run_profile(specs, opts, results, progress=lambda message: status.update(escape(message)))
    if json_out:
        print_json(report)
        return
    _print_profile(report)


def _print_profile(report: dict) -> None:
    env = report["env"]
    out.print(
        f"[bold]{escape(env['device_name'])}[/] ({env['device']}, {env['threads']} threads), torch {env['torch']}, "
        f"{env['dtype']}, batch {env['batch']}, {env['size']}x{env['size']}; peak GEMM "
        + ", ".join(f"{dt} {p['peak']:.0f}" for dt, p in report["peaks"].items()) + " GFLOP/s; "
        f"FLOPs: {report['flop_convention']}", highlight=False, soft_wrap=True,
    )
    table = Table(title="end-to-end latency (ms)")
    for col in ("model", "path", "median", "IQR", "p90", "n", "ratio", "GFLOP", "GFLOP/s", "util.", "coverage"):
        table.add_column(col, justify="left" if col in ("model", "path") else "right")
    for r in report["results"]:
        lat = r["latency_ms"]
        table.add_row(
            escape(r["model"]), r["path"], f"{lat['median']:.2f}", f"{lat['iqr']:.2f}", f"{lat['p90']:.2f}", str(lat["n"]),
            f"{r['ratio']:.2f}", fmt(r["flops"], 1e9), fmt(r["gflops_per_s"]), fmt(r["utilization"], 0.01, "%"),
            "" if r["coverage"] is None else f"{r['coverage']:.2f}",
        )
    out.print(table)
    for r in report["results"]:
        if r["noisy"]:
            err.print(f"[yellow]warning:[/] {escape(r['model'])} ({r['path']}): IQR is {r['latency_ms']['iqr'] / r['latency_ms']['median']:.0%} "
                      "of the median: the machine is noisy, rerun with more --iters", highlight=False, soft_wrap=True)
        if r["path"] != "eager":
            out.print(f"{escape(r['model'])} {r['path']}: {r['speedup_vs_eager']:.2f}x eager, max |difference| to eager "
                      f"{r['max_abs_diff']:.2e}, prepared in {r['prepare_s']:.1f} s", highlight=False, soft_wrap=True)
    for r in report["results"]:
        if not r["modules"]:
            continue
        tree = Table(title=f"where the time goes: {escape(r['model'])} (eager, coverage {r['coverage']:.2f})")
        for col in ("module", "ms", "share", "params", "GFLOP"):
            tree.add_column(col, justify="left" if col == "module" else "right")
        for m in r["modules"]:
            name = f"[italic]{escape(m['name'])} (group)[/]" if m["depth"] == 0 else "  " * (m["depth"] - 1) + escape(m["name"])
            tree.add_row(name, f"{m['latency_ms']:.2f}", f"{m['share']:.1%}", f"{m['params']:,}", fmt(m["flops"], 1e9))
        out.print(tree)
        if r["uncounted_ops"]:
            ops = ", ".join(f"{k.replace('aten::', '')} x{v}" for k, v in sorted(r["uncounted_ops"].items()))
            out.print(f"FLOPs not counted (no multiply-adds in fvcore's convention): {ops}", highlight=False, soft_wrap=True)
    out.print(f"records appended to {escape(report['records'])}" + (f"; trace written to {escape(report['trace'])}" if report.get("trace") else "")
              + (f"; latency plot written to {escape(report['plot'])}" if report.get("plot") else ""), highlight=False, soft_wrap=True)
