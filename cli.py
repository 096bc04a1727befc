"""``avskit``: the command line. Parses options, calls analyses, prints; no logic of its own."""

from __future__ import annotations

import functools
import inspect
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from avsbench_kit.errors import UserError

if __name__ != "avskit.cli":  # one copy of the module: the registries would fill twice otherwise
    raise ImportError(f"import avskit.cli (or run `python -m avskit`), not {__name__}")

app = typer.Typer(
    help="AVESFormer and AVS baselines in the real-time setting (one frame, T=1): the zoo, parameters, "
    "latency and where it goes, attention dissipation, the synthetic benchmark.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
out = Console()
err = Console(stderr=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout instead of a table.")]
SetOption = Annotated[
    Optional[list[str]],
    typer.Option("--set", metavar="KEY=VALUE", help="Override one spec field (repeatable), e.g. --set fusion=tpavi --set stages=TTT; --set "
                                                    "weights=FILE loads the whole model (an avskit checkpoint or a released "
                                                    "AVSegFormer/AVSBench/ECMVAE/CATR checkpoint)."),
]
SizeOption = Annotated[int, typer.Option(min=32, help="Input height and width for the forward pass (a multiple of 32).")]


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")


def _millions(n: int | float | None) -> str:
    return "" if n is None else f"{n / 1e6:,.2f}M"


_LAUNCH_PANEL = "Launcher (where training runs go: analyses/launch.py)"
_LAUNCH_PARAMS = {  # name: (annotation, default); the flags of DETR's run_with_submitit.py and Hydra's launcher
    "launcher": (Annotated[str, typer.Option(help="inline (here, one after another), local (one process per run on this machine, "
                                                  "each on its own GPU where there are GPUs), slurm (one job array through submitit), "
                                                  "debug (submitit's job path in this process).", rich_help_panel=_LAUNCH_PANEL)], "inline"),
    "job_dir": (Annotated[Optional[str], typer.Option(metavar="DIR", help="Jobs' logs and states (default: beside the record store, "
                                                                          "STORE_FOLDER/jobs); on a cluster, a shared filesystem.",
                                                      rich_help_panel=_LAUNCH_PANEL)], None),
    "partition": (Annotated[Optional[str], typer.Option(help="Slurm partition.", rich_help_panel=_LAUNCH_PANEL)], None),
    "gpus_per_node": (Annotated[int, typer.Option(help="GPUs per job (one task per GPU, DDP across them).",
                                                  rich_help_panel=_LAUNCH_PANEL)], 0),
    "nodes": (Annotated[int, typer.Option(help="Nodes per job (Slurm).", rich_help_panel=_LAUNCH_PANEL)], 1),
    "cpus_per_task": (Annotated[Optional[int], typer.Option(help="CPUs per task (Slurm).", rich_help_panel=_LAUNCH_PANEL)], None),
    "timeout_min": (Annotated[int, typer.Option(help="A job's time limit in minutes; the warning signal comes 2 minutes before it.",
                                                rich_help_panel=_LAUNCH_PANEL)], 24 * 60),
    "array_parallelism": (Annotated[int, typer.Option(help="At most this many jobs of the array at once (Slurm).",
                                                      rich_help_panel=_LAUNCH_PANEL)], 256),
    "max_requeue": (Annotated[int, typer.Option(help="Requeue a timed-out or preempted job at most this often.",
                                                rich_help_panel=_LAUNCH_PANEL)], 3),
    "account": (Annotated[Optional[str], typer.Option(help="Slurm account.", rich_help_panel=_LAUNCH_PANEL)], None),
    "qos": (Annotated[Optional[str], typer.Option(help="Slurm quality of service.", rich_help_panel=_LAUNCH_PANEL)], None),
    "constraint": (Annotated[Optional[str], typer.Option(help="Slurm node constraint (e.g. a100).", rich_help_panel=_LAUNCH_PANEL)], None),
    "slurm_arg": (Annotated[Optional[list[str]], typer.Option(metavar="KEY=VALUE", help="Any other sbatch option (repeatable), e.g. "
                                                                                        "--slurm-arg mem=64G.", rich_help_panel=_LAUNCH_PANEL)],
                  None),
    "no_wait": (Annotated[bool, typer.Option("--no-wait", help="Submit and return; `avskit jobs DIR` follows the grid.",
                                             rich_help_panel=_LAUNCH_PANEL)], False),
}


def with_launcher(command):
    """Give a command the launcher options; it receives them as one ``launch: LaunchOptions``."""
    signature = inspect.signature(command, eval_str=True)  # Typer reads the annotations of the signature given
    kept = [p for name, p in signature.parameters.items() if name != "launch"]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
             for name, (annotation, default) in _LAUNCH_PARAMS.items()]

    @functools.wraps(command)
    def run(**kwargs):
        from avskit.analyses.launch import LaunchOptions

        given = {name: kwargs.pop(name) for name in _LAUNCH_PARAMS}
        slurm_args, no_wait = given.pop("slurm_arg"), given.pop("no_wait")
        launch = LaunchOptions(**given, slurm_args=tuple(slurm_args or ()), wait=not no_wait)
        launch.check()
        return command(**kwargs, launch=launch)

    run.__signature__ = signature.replace(parameters=[*[p for p in kept if p.kind != p.KEYWORD_ONLY], *added,
                                                      *[p for p in kept if p.kind == p.KEYWORD_ONLY]])
    run.__annotations__ = {p.name: p.annotation for p in run.__signature__.parameters.values()}
    return run


def _print_submitted(jobs: list[dict], job_dir: str | None, waited: bool) -> None:
    if not jobs:
        return
    what = "ran" if waited else "submitted"
    out.print(f"{what} {len(jobs)} job{'s' if len(jobs) != 1 else ''} ({jobs[0]['launcher']}); logs and states: "
              f"avskit jobs {escape(str(job_dir))}", highlight=False, soft_wrap=True)


@app.command()
def models(json_out: JsonFlag = False) -> None:
    """List the zoo's models and the variant axes every ablation is made of.

    Examples:

        avskit models

        avskit models --json
    """
    from avskit.analyses.zoo import overview

    info = overview()
    if json_out:
        _print_json(info)
        return
    table = Table(title="avskit zoo (T=1, batch 1)")
    table.add_column("model", no_wrap=True)
    table.add_column("backbone / qg / fusion / stages / queries")
    table.add_column("params (paper)", justify="right")
    table.add_column("latency (paper)", justify="right")
    for m in info["models"]:
        s = m["spec"]
        parts = [s[k] for k in ("backbone", "qg", "fusion", "stages", "queries")]
        table.add_row(
            m["name"], " / ".join("-" if p is None else str(p) for p in parts),
            f"{m['reported_params_m']}M" if m["reported_params_m"] else "",
            f"{m['reported_latency_ms']} ms" if m["reported_latency_ms"] else "",
        )
    out.print(table)
    out.print("(paper) = reported in the paper's Table 3 (RTX 3090, batch 1), not measured here\n")
    axes = Table(title="variant axes (--set key=value)")
    axes.add_column("key")
    axes.add_column("accepted values")
    for key, values in info["axes"].items():
        axes.add_row(key, ", ".join(values) if isinstance(values, list) else values)
    out.print(axes)


@app.command()
def params(
    model: Annotated[str, typer.Argument(help="A zoo model, e.g. avesformer-r50 (see `avskit models`).")],
    set_: SetOption = None,
    size: SizeOption = 224,
    json_out: JsonFlag = False,
) -> None:
    """Declared, live (used by a forward pass) and trainable parameters, per part, beside the paper's figure.

    Live parameters are found by running one forward and backward pass, not by hand.

    Examples:

        avskit params avsegformer-r50

        avskit params avesformer-r50 --set qg=qg --json

        avskit params avsegformer-r50 --set weights=work_dir/AVSegFormer_res50_s4/S4_best.pth
    """
    from avsbench_kit.spec import parse_set_options, spec_from_text
    from avskit.analyses.zoo import parameter_report

    spec = spec_from_text(model, parse_set_options(set_))
    with err.status(f"counting parameters of {escape(spec.label)} (one forward and backward pass)..."):
        report = parameter_report(spec, size)
    if json_out:
        _print_json(report)
        return
    out.print(f"parameters of [bold]{escape(report['model'])}[/] (live = used by a forward pass)", highlight=False, soft_wrap=True)
    table = Table()
    for col in ("part", "declared", "live", "trainable"):
        table.add_column(col, justify="right" if col != "part" else "left")
    for part, c in report["modules"].items():
        table.add_row(part, f"{c['declared']:,}", f"{c['live']:,}", f"{c['trainable']:,}")
    table.add_row("total", f"{report['declared']:,}", f"{report['live']:,}", f"{report['trainable']:,}", style="bold")
    out.print(table)
    rep = report["reported"]
    if spec.family == "foreign":
        out.print(f"reference {escape(spec.label)}, source sha256 {spec.sha256[:16]}...", highlight=False, soft_wrap=True)
    else:
        out.print(f"reported ({rep['source']}): {rep['params_m']}M" if rep else "reported: the paper gives no figure for this variant")
    if "weights" in report:
        w = report["weights"]
        out.print(f"weights {escape(w['path'])} (sha256 {w['sha256'][:16]}...), recognised as {escape(_weights_summary(w))}",
                  highlight=False, soft_wrap=True)
    if "released" in report:
        r = report["released"]
        unused = ", ".join(f"{k} {v:,}" for k, v in r["unused"].items())
        out.print(f"released code declares {r['declared']:,}; unused by its forward: {unused}; so live {r['live']:,}")


def _weights_summary(w: dict) -> str:
    from avsbench_kit.weights import WeightsReport

    return WeightsReport(**w).summary()


@app.command()
def demo(size: SizeOption = 224, json_out: JsonFlag = False) -> None:
    """The main job on built-in defaults: every zoo model's parameters and a forward pass on synthetic inputs.

    Examples:

        avskit demo

        avskit demo --size 320 --json
    """
    from avskit.analyses.zoo import demo as run_demo

    with err.status("building the zoo...") as status:
        rows = run_demo(size, on_model=lambda name: status.update(f"{name}: parameters and one forward pass at {size}x{size}..."))
    if json_out:
        _print_json({"size": size, "models": rows})
        return
    table = Table(title=f"avskit zoo on synthetic inputs ({size}x{size}, batch 1, CPU, random weights)")
    for col in ("model", "declared", "live", "trainable", "reported (paper)", "output", "first forward"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for r in rows:
        table.add_row(
            r["model"], _millions(r["declared"]), _millions(r["live"]), _millions(r["trainable"]),
            f"{r['reported_params_m']}M" if r["reported_params_m"] else "", "x".join(map(str, r["output_shape"])),
            f"{r['first_forward_s'] * 1000:.0f} ms",
        )
    out.print(table)
    fixed = sorted({r["size"] for r in rows} - {size})
    if fixed:
        out.print(f"ran at {', '.join(map(str, fixed))}x{', '.join(map(str, fixed))}: "
                  + ", ".join(r["model"] for r in rows if r["size"] != size) + " (built for that frame size only)")
    out.print("first forward = one cold pass, not a latency measurement; reported = the paper's Table 3, not measured here")


@app.command()
def profile(
    models: Annotated[list[str], typer.Argument(help="One or more zoo models or labels like 'avesformer-r50[stages=TTT]'; several are timed "
                                                     "interleaved (A B A B ...).")],
    set_: SetOption = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    dtype: Annotated[str, typer.Option(help="fp32, or bf16/fp16 autocast (a speed path measured beside fp32 eager).")] = "fp32",
    batch: Annotated[int, typer.Option(help="Frames per forward (the real-time setting is 1).")] = 1,
    size: Annotated[int, typer.Option(help="Input height and width (a multiple of 32).")] = 224,
    threads: Annotated[Optional[int], typer.Option(help="CPU threads (torch.set_num_threads); default: torch's.")] = None,
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
        _print_json(report)
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
            f"{r['ratio']:.2f}", _fmt(r["flops"], 1e9), _fmt(r["gflops_per_s"]), _fmt(r["utilization"], 0.01, "%"),
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
            tree.add_row(name, f"{m['latency_ms']:.2f}", f"{m['share']:.1%}", f"{m['params']:,}", _fmt(m["flops"], 1e9))
        out.print(tree)
        if r["uncounted_ops"]:
            ops = ", ".join(f"{k.replace('aten::', '')} x{v}" for k, v in sorted(r["uncounted_ops"].items()))
            out.print(f"FLOPs not counted (no multiply-adds in fvcore's convention): {ops}", highlight=False, soft_wrap=True)
    out.print(f"records appended to {escape(report['records'])}" + (f"; trace written to {escape(report['trace'])}" if report.get("trace") else "")
              + (f"; latency plot written to {escape(report['plot'])}" if report.get("plot") else ""), highlight=False, soft_wrap=True)


def _cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if isinstance(value, float) and value >= 10 else f"{value:.2f}" if isinstance(value, float) else str(value)


def _short_header(column: str) -> str:
    """A report column name shortened for an 80-column terminal (the files keep the long names)."""
    import re

    source = "\n(paper)" if column.endswith("(reported)") else "\n(here)" if column.endswith("(measured)") else ""
    name = re.sub(r" \((reported|measured)\)$", "", column)
    name = re.sub(r"^latency ms, (.*)$", r"\1 ms", name)
    name = re.sub(r"^ratio to [^,]*(, (.*))?$", r"\2 ratio", name).strip()
    return name.replace("live params M", "live M").replace("RTX 3090 ms", "RTX ms") + source


def _fmt(value, scale: float = 1.0, suffix: str = "") -> str:
    return "" if value is None else f"{value / scale:.1f}{suffix}"


@app.command()
def dissipation(
    model: Annotated[str, typer.Argument(help="A zoo model or a label like 'avesformer-r18[fusion=dissipation]'.")],
    set_: SetOption = None,
    image: Annotated[Optional[str], typer.Option(metavar="PATH", help="A frame (any image format); without it, the synthetic frame.")] = None,
    audio: Annotated[Optional[str], typer.Option(metavar="PATH", help="A sound file (wav, flac, ...); its first 0.96 s is used; without it, the "
                                                                      "synthetic sound.")] = None,
    out_dir: Annotated[Optional[str], typer.Option("--out", metavar="DIR", help="Write the attention figures (fig4a, fig7, fig8, fig9; PNG and "
                                                                                "SVG) here.")] = None,
    data: Annotated[Optional[str], typer.Option(help="Probe many test frames instead of one: synthetic:s4, synthetic:ms3, synthetic:avss "
                                                     "or an AVSBench root (with --subset); adds localisation scores.")] = None,
    subset: Annotated[Optional[str], typer.Option(help="s4, ms3 or avss: the layout of a --data root.")] = None,
    frames: Annotated[int, typer.Option(min=1, help="With --data: test frames to probe, spread evenly over the split.")] = 64,
    size: Annotated[int, typer.Option(min=32, help="With --data: frame height and width (a multiple of 32).")] = 224,
    videos: Annotated[int, typer.Option(min=7, help="With --data synthetic:*: videos in the benchmark (70/15/15 train/val/test).")] = 200,
    results: ResultsOption = None,
    json_out: JsonFlag = False,
) -> None:
    """Does the model's attention use the audio? Every attention site with its dissipation metrics.

    Captures every attention call of one forward pass (the project's own, nn.MultiheadAttention, raw
    scaled_dot_product_attention, channel attention, TPAVI, deformable sampling) and flags the
    dissipated ones: softmax over a single key, or queries that all attend alike. The default
    input is a synthetic S4 frame (2-5 shapes) with the sound of one of them; --image or --audio
    replaces one half (the other stays the default) and the output says which input was used.

    With --data, N test frames are probed (default 64): per site, the share of frames flagged
    dissipated, entropy and row diversity (mean, 95% CI), and, for the model's audio-to-visual maps,
    how well they point at the sounding object (energy ratio, cIoU, pointing, ROC-AUC; per query and
    their mean). The summary is also written to the record store.

    Examples:

        avskit dissipation avesformer-r18

        avskit dissipation avesformer-r18 --data synthetic:s4 --frames 16 --json

        avskit dissipation avsbench-r50 --set weights=S4_resnet_best.pth --set vggish_weights=vggish.pth --data AVSBench/Single-source --subset s4

        avskit dissipation avesformer-r18 --set fusion=dissipation --json

        avskit dissipation avesformer-r50 --set qg=qg

        avskit dissipation avesformer-r18 --image frame.png --audio clip.wav --out reports/figures

        avskit dissipation avesformer-r18 --image frame.png
    """
    from avsbench_kit.results import ensure_writable_folder
    from avsbench_kit.spec import parse_set_options, spec_from_text
    from avskit.analyses.dissipation import draw_figures, draw_sites, load_sample, probe_sites

    spec = spec_from_text(model, parse_set_options(set_))
    if data is not None:
        if image or audio or out_dir:
            raise UserError("--data probes many frames of a dataset; --image, --audio and --out are for one frame (leave them out)")
        _dissipation_frames(spec, data, subset, frames, size, videos, results, json_out)
        return
    sample = load_sample(image, audio)
    if out_dir:
        ensure_writable_folder(Path(out_dir), "--out", "figures")  # before the work, not after it
    with err.status(f"capturing the attention of {escape(spec.label)}...") as status:
        sites, used = probe_sites(spec, sample)
        figures = []
        if out_dir:
            figures = draw_sites(spec, sites, used, Path(out_dir))
            if spec.family != "foreign":  # figures 4a, 7, 8, 9 compare AVESFormer's own variants
                figures += draw_figures(spec, sample, Path(out_dir), progress=lambda m: status.update(escape(m)))
    report = {"model": spec.label, "spec": spec.to_dict(), "input": used, "sites": sites, "figures": figures}
    if json_out:
        _print_json(report)
        return
    table = Table(title=f"attention sites of {escape(spec.label)}")
    table.add_column("site", overflow="fold")
    for col in ("call", "kind", "queries", "keys", "entropy", "diversity", "dissipated"):
        table.add_column(col, justify="left" if col in ("kind", "dissipated") else "right", no_wrap=True)
    for row in sites:
        fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
        table.add_row(escape(row["site"]), str(row["call"]), row["kind"], str(row["n_queries"]), str(row["n_keys"]), fmt(row["entropy_norm"]),
                      fmt(row["row_diversity"]), f"[bold red]yes[/] ({_short_reason(row['reason'])})" if row["dissipated"] else "no")
    out.print(table)
    flagged = sum(row["dissipated"] for row in sites)
    out.print(f"{flagged} of {len(sites)} attention calls dissipated; input: {escape(used)}", highlight=False, soft_wrap=True)
    for path in figures:
        out.print(f"wrote {escape(path)}", highlight=False, soft_wrap=True)


def _dissipation_frames(spec, data: str, subset: str | None, frames: int, size: int, videos: int, results: str | None,
                        json_out: bool) -> None:
    """`avskit dissipation MODEL --data ...`: the probe over many test frames, with localisation."""
    import torch
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from avsbench_kit.profiling.env import command_line, environment
    from avsbench_kit.results import append_records, default_store, ensure_writable_folder, make_record
    from avskit.analyses.attention_frames import probe_frames
    from avskit.analyses.training import DataOptions, zoo_only

    zoo_only(spec)
    options = DataOptions(data, subset, size, videos)
    name = options.resolve_subset()
    dataset = options.dataset("test")  # a bad root or size is an error before any model is built
    store = Path(results) if results else default_store()
    ensure_writable_folder(store.parent, "--results", "records")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(f"probing {escape(spec.label)}", total=min(frames, len(dataset)))
        report = probe_frames(spec, dataset, name, frames, on_frame=lambda i, n: bar.update(task, completed=i))
    report = {**report, "data": data, "size": size}
    env = environment(torch.device("cpu"))
    prov = {**env, "command": command_line(), "data": data, "subset": name, "split": "test", "size": size, "frames": report["frames"],
            "videos": videos if data.startswith("synthetic:") else None}
    append_records([make_record("attention_frames", spec.label, spec.to_dict(), "frames", report["frames"], "frames", prov,
                                sites=report["sites"], frame_indices=report["frame_indices"])], store)
    if json_out:
        _print_json(report)
        return
    table = Table(title=f"attention of {escape(spec.label)} over {report['frames']} test frames of {escape(data)} ({name})")
    table.add_column("site (call)", overflow="fold", min_width=24)
    for col in ("kind", "dissipated", "diversity", "energy ratio", "best map", "cIoU@0.5", "AUC", "degenerate"):
        table.add_column(col, justify="left" if col == "kind" else "right")
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    for row in report["sites"]:
        loc = row["localisation"]
        if isinstance(loc, dict):
            mean, er = loc["mean"], loc["mean"]["energy_ratio"]
            half = None if er["ci95"][1] is None else er["ci95"][1] - er["mean"]
            best = f"#{loc['best']['query']}: {fmt(loc['best']['energy_ratio']['mean'])}" if loc["maps"] > 1 else ""
            cells = (fmt(er["mean"]) + (f" ±{half:.3f}" if half is not None else ""), best, fmt(mean["ciou@0.5"]), fmt(mean["auc"]),
                     f"{mean['degenerate']}/{mean['n']}")
        else:
            cells = (loc or "", "", "", "", "")
        table.add_row(escape(row["site"]) + (f" ({row['call']})" if row["call"] else ""), row["kind"], f"{row['dissipated_share']:.0%}",
                      fmt(row["row_diversity"]["mean"]), *cells)
    out.print(table)
    out.print("energy ratio: the map's mass on the sounding object over the object's share of the frame, mean ±95% CI half-width over the "
              f"frames (chance = 1; the mean over a site's maps, 'best map' its best query); --json has every statistic; records in "
              f"{escape(str(store))}", highlight=False, soft_wrap=True)


def _short_reason(reason: str) -> str:
    """The console's few words for a dissipation verdict (--json keeps the full sentence)."""
    if "single key" in reason:
        return "1 key"
    if "row diversity" in reason:
        return "rows alike"
    return reason


@app.command()
def synth(
    subset: Annotated[str, typer.Option(help="s4 (one sounding object), ms3 (two or three) or avss (semantic masks).")] = "s4",
    out_dir: Annotated[str, typer.Option("--out", metavar="DIR", help="A new (or empty) folder for the dataset root.")] = ...,
    videos: Annotated[int, typer.Option(help="Videos of 5 frames; split 70/15/15 into train/val/test.")] = 20,
    seed: Annotated[int, typer.Option(help="Everything is deterministic from the seed and the video index.")] = 0,
    size: Annotated[int, typer.Option(help="Frame height and width.")] = 224,
    json_out: JsonFlag = False,
) -> None:
    """Write the synthetic benchmark in the AVSBench layout, readable like the real dataset.

    Each frame shows 2-5 shapes of 6 classes (shape, colour and texture per class) on a textured
    background; the audio mixes the sounding objects' class signatures (harmonic tones with a
    class-specific pitch, timbre and modulation) and noise. Which objects sound does not depend on
    how they look, so only the audio can tell.

    Examples:

        avskit synth --subset s4 --out data/synthetic-s4

        avskit synth --subset avss --out data/synthetic-avss --videos 100 --json
    """
    from avsbench_kit.data.synthetic import SUBSETS, write_layout

    if subset not in SUBSETS:
        raise UserError(f"--subset {subset!r} is not accepted; choose one of: {', '.join(SUBSETS)}")
    if videos < 1 or size < 32 or size % 32:
        raise UserError("--videos must be at least 1 and --size a multiple of 32 (e.g. 224)")
    target = Path(out_dir)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UserError(f"--out {out_dir} exists and is not an empty folder; choose a new one")
    from rich.progress import Progress

    with Progress(console=err, transient=True) as bar:
        task = bar.add_task(f"writing synthetic {subset}", total=videos)
        info = write_layout(subset, target, videos, seed, size, progress=lambda n: bar.update(task, completed=n))
    if json_out:
        _print_json(info)
        return
    out.print(f"wrote {videos} synthetic {subset} videos to {escape(str(target))} "
              f"(train {info['splits']['train']}, val {info['splits']['val']}, test {info['splits']['test']})", highlight=False, soft_wrap=True)


DataOption = Annotated[str, typer.Option(help="synthetic:s4, synthetic:ms3, synthetic:avss, or the root of an AVSBench subset.")]
SubsetOption = Annotated[Optional[str], typer.Option(help="s4, ms3 or avss: which layout a dataset root has (implied by synthetic:NAME).")]
VideosOption = Annotated[int, typer.Option(help="Synthetic videos to make (70/15/15 train/val/test).")]
AudioBlind = Annotated[bool, typer.Option("--audio-blind", help="Replace the audio by zeros: the control.")]
ResultsOption = Annotated[Optional[str], typer.Option(metavar="PATH", help="Record store (default: $AVSKIT_RESULTS or runs/records.jsonl).")]


# --quick: sized for the whole command (data, training, evaluation) to take at most 5 minutes on a
# quiet 2-core CPU (docs/training.md has the measured times, J and the GEMM probe beside them)
QUICK = {"size": 64, "videos": 3000, "steps": 400, "lr": 2e-4, "test_videos": 150, "checkpoint_every": 200}
QUICK_HELP = (f"A CPU-sized run: {QUICK['size']}x{QUICK['size']} frames, {QUICK['videos']} synthetic videos, {QUICK['steps']} steps "
              f"of 8 at lr {QUICK['lr']:g}, tested on {QUICK['test_videos']} videos (about 5 minutes on 2 cores; see docs/training.md).")


class _TrainingEta:
    """Prints the run's plan before the first step and its estimated time after the first few."""

    AFTER = 5

    def __init__(self, bar, task, steps: int):
        self.bar, self.task, self.steps, self.first = bar, task, steps, None

    def plan(self, p: dict) -> None:
        resume = f"; resuming from {escape(p['checkpoint'])}" if p["resuming"] else ""
        self.bar.console.print(f"plan: {p['steps']} steps of {p['batch']} frames ({p['train_frames']} training frames, "
                               f"{p['size']}x{p['size']}), then {p['test_frames']} test frames; checkpoint every "
                               f"{p['checkpoint_every']} steps to {escape(p['checkpoint'])}{resume}", highlight=False, soft_wrap=True)

    def step(self, step: int, loss: float) -> None:
        import time

        self.bar.update(self.task, completed=step, description=f"training, loss {loss:.3f}")
        now = time.perf_counter()
        if self.first is None:
            self.first = (step, now)  # the first step includes the audio features: time from here on
        elif step == self.first[0] + self.AFTER and step < self.steps:
            per_step = (now - self.first[1]) / self.AFTER
            self.bar.console.print(f"{per_step:.2f} s per step: training ends in about {(self.steps - step) * per_step / 60:.1f} min "
                                   f"(then the evaluation)", highlight=False)


@app.command("train")
@with_launcher
def train_command(
    model: Annotated[str, typer.Argument(help="A zoo model or a label like 'avesformer-r18[stages=TTT]'.")],
    set_: SetOption = None,
    data: DataOption = "synthetic:s4",
    subset: SubsetOption = None,
    steps: Annotated[Optional[int], typer.Option(help="Optimizer steps.")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Passes over the train split (instead of --steps).")] = None,
    batch: Annotated[int, typer.Option(help="Frames per step.")] = 8,
    lr: Annotated[Optional[float], typer.Option(help="AdamW learning rate (polynomial decay, power 0.9); default 1e-4 (--quick: its own).")] = None,
    size: Annotated[int, typer.Option(help="Frame height and width (224 in the paper).")] = 224,
    videos: VideosOption = 200,
    quick: Annotated[bool, typer.Option("--quick", help=QUICK_HELP)] = False,
    audio_blind: AudioBlind = False,
    seed: Annotated[int, typer.Option(help="Seeds the initial weights (random VGGish included), the data order and the flips.")] = 0,
    warmup: Annotated[int, typer.Option(min=0, help="Linear learning-rate warmup steps before the polynomial decay.")] = 0,
    val_every: Annotated[int, typer.Option(min=0, help="Validate every N steps and at the end (J and F on the val split; synthetic: its "
                                                       "first 40 videos): the run's validation curve, kept in the report and the "
                                                       "records. 0: never.")] = 0,
    device: Annotated[str, typer.Option(help="cpu or cuda (under torchrun: NCCL, one GPU per process).")] = "cpu",
    out_dir: Annotated[Optional[str], typer.Option("--out", metavar="DIR", help="Checkpoint folder; the same run there resumes, another run is "
                                                                                "refused (default: runs/train/LABEL).")] = None,
    restart: Annotated[bool, typer.Option("--restart", help="Discard the checkpoint in --out and start this run afresh.")] = False,
    results: ResultsOption = None,
    json_out: JsonFlag = False,
    launch=None,
) -> None:
    """Train a zoo model on AVSBench or the synthetic benchmark, then evaluate it on the test split.

    The paper's recipe: AdamW, polynomial decay, VGGish frozen, horizontal flips, IoU + Dice (+ 0.1
    auxiliary) losses, cross-entropy on AVSS. Checkpoints (trainable weights and optimizer only; the
    frozen VGGish is rebuilt from its file or the seed) are written atomically every 50 steps (--quick:
    every 200). The same command in the same --out folder resumes where it stopped; a checkpoint made
    by another run (other model, data, steps, batch, lr, seed, --audio-blind, size) is refused with
    what differs: use another --out, or --restart.

    Examples:

        avskit train avesformer-r18 --data synthetic:s4 --quick

        avskit train avesformer-r18 --data synthetic:s4 --quick --audio-blind --json

        avskit train avesformer-r50 --data path/to/Single-source --subset s4 --epochs 30 --batch 16 --lr 5e-4

        avskit train avesformer-r50 --data AVSBench/Single-source --subset s4 --epochs 30 --device cuda --launcher slurm
        --gpus-per-node 4 --partition gpu
    """
    from avsbench_kit.engine import TrainConfig, training_device
    from avsbench_kit.spec import parse_set_options, spec_from_text
    from avskit.analyses.training import DataOptions, run_training, zoo_only

    spec = spec_from_text(model, parse_set_options(set_))
    zoo_only(spec)
    test_videos, checkpoint_every = None, 50
    if quick:
        size, steps, lr, videos = QUICK["size"], steps or QUICK["steps"], lr or QUICK["lr"], max(videos, QUICK["videos"])
        test_videos, checkpoint_every = QUICK["test_videos"], QUICK["checkpoint_every"]
    options = DataOptions(data, subset, size, videos, test_videos if data.startswith("synthetic:") else None)
    if steps is not None and epochs is not None:
        raise UserError("give --steps or --epochs, not both")
    if epochs is not None:
        steps = max(1, epochs * len(options.dataset("train")) // batch)
    steps = steps if steps is not None else 300
    lr = lr if lr is not None else 1e-4
    if steps < 1 or batch < 1 or not lr > 0:
        raise UserError("--steps, --batch and --lr must be positive")
    folder = Path(out_dir) if out_dir else Path("runs") / "train" / (spec.label + ("-audio-blind" if audio_blind else ""))
    cfg = TrainConfig(steps=steps, batch=batch, lr=lr, audio_blind=audio_blind, device=device, seed=seed,
                      checkpoint_every=checkpoint_every, warmup=warmup, val_every=val_every)
    if launch.launcher != "inline":
        from avsbench_kit.results import default_store

        _train_as_job(spec, options, cfg, folder, restart, Path(results) if results else default_store(), launch, json_out)
        return
    training_device(device)  # a bad --device is an error before any work
    from rich.progress import Progress

    with Progress(console=err, transient=True) as bar:
        task = bar.add_task(f"training {escape(spec.label)}", total=steps)
        eta = _TrainingEta(bar, task, steps)
        report = run_training(spec, options, cfg, folder, Path(results) if results else None, restart=restart,
                              on_step=eta.step, on_plan=eta.plan,
                              on_features=lambda i, n: bar.update(task, description=f"audio features (frozen VGGish, once) {i}/{n}"),
                              on_eval=lambda i, n: bar.update(task, description=f"evaluating {i}/{n}"))
    if "rank" in report:  # a torchrun worker other than rank 0: rank 0 reports
        return
    if json_out:
        _print_json(report)
        return
    t = report["test"]
    out.print(f"{escape(report['model'])} on {escape(report['data'])} ({report['subset']}"
              f"{', audio-blind' if audio_blind else ''}): {report['train']['steps']} steps in {report['train']['seconds']:.0f} s, "
              f"last loss {report['train']['loss']:.3f}; test J {t['jaccard']:.4f}, F {t['f_score']:.4f}; "
              f"checkpoint {escape(report['checkpoint'])}; weights: {report['weights']}", highlight=False, soft_wrap=True)


def _train_as_job(spec, data, cfg, folder: Path, restart: bool, store: Path, launch, json_out: bool) -> None:
    """`avskit train --launcher local|slurm|debug`: the same run as one job (analyses.launch)."""
    from avskit.analyses.launch import submit_training

    with err.status(f"{launch.launcher}: {escape(spec.label)}") as status:
        done = submit_training(spec, data, cfg, folder, store, launch, restart, say=lambda m: status.update(escape(m)))
    if json_out:
        _print_json({"jobs": done.jobs, "job_dir": str(launch.folder(store)), "results": done.results, "records": str(store)})
        return
    _print_submitted(done.jobs, str(launch.folder(store)), launch.wait)
    for result in done.results:
        if result.get("test"):
            out.print(f"{escape(result['model'])} seed {result['seed']}: test J {result['test']['jaccard']:.4f}, "
                      f"F {result['test']['f_score']:.4f} (records in {escape(str(store))})", highlight=False, soft_wrap=True)


@app.command()
def jobs(
    job_dir: Annotated[Optional[str], typer.Argument(metavar="JOB_DIR", help="A grid's --job-dir (default: runs/jobs, beside the "
                                                                             "default record store).")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait, with a progress bar, until every job is done or failed.")] = False,
    json_out: JsonFlag = False,
) -> None:
    """The jobs of a grid: variant, seed, state, attempts, the last log line and where the logs are.

    States: pending (submitted, not started), running, requeued (timed out or preempted, resuming from
    its checkpoint), done, failed (with the reason in one line).

    Examples:

        avskit jobs runs/jobs

        avskit jobs /shared/avskit/jobs --wait

        avskit jobs runs/jobs --json
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from avsbench_kit.results import default_store
    from avskit.analyses.launch import grid_jobs, wait_for

    folder = Path(job_dir) if job_dir else default_store().resolve().parent / "jobs"
    rows = grid_jobs(folder)
    if wait:
        with Progress(TextColumn("jobs"), BarColumn(), MofNCompleteColumn(), console=err, transient=True) as bar:
            task = bar.add_task("jobs", total=len(rows))
            rows = wait_for(folder, on_update=lambda done, total: bar.update(task, completed=done, total=total))
    if json_out:
        _print_json({"job_dir": str(folder), "jobs": rows})
        return
    table = Table(title=f"jobs in {escape(str(folder))}")
    for col in ("variant", "seed", "job", "state", "attempts", "last log line"):
        table.add_column(col, no_wrap=col == "variant", overflow="fold")
    for r in rows:
        state = {"done": "[green]done[/]", "failed": "[red]failed[/]"}.get(r["state"], r["state"])
        table.add_row(escape(r["model"]), "" if r["seed"] is None else str(r["seed"]), r["job_id"], state, str(r["attempts"]),
                      escape(r["error"] if r["state"] == "failed" and r["error"] else r["last_log_line"] or ""))
    out.print(table)
    out.print(f"logs: {escape(str(Path(rows[0]['stdout']).parent.parent))}/JOB_ID/" if rows else "no jobs", highlight=False, soft_wrap=True)


@app.command("eval")
def eval_command(
    model: Annotated[str, typer.Argument(help="A zoo model or a label.")],
    set_: SetOption = None,
    checkpoint: Annotated[Optional[str], typer.Option(metavar="FILE", help="A checkpoint from avskit train; without one the initial weights are "
                                                                           "evaluated.")] = None,
    data: DataOption = "synthetic:s4",
    subset: SubsetOption = None,
    size: Annotated[int, typer.Option(help="Frame height and width.")] = 224,
    videos: VideosOption = 200,
    audio_blind: AudioBlind = False,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    results: ResultsOption = None,
    json_out: JsonFlag = False,
) -> None:
    """Evaluate a model on the test split with the official J and F (S4/MS3) or mIoU and F (AVSS).

    Examples:

        avskit eval avesformer-r18 --checkpoint runs/train/avesformer-r18/last.pt --data synthetic:s4 --size 96

        avskit eval avsegformer-r50 --data path/to/Multi-sources --subset ms3 --json

        avskit eval avsegformer-r50 --set weights=AVSegFormer_res50_s4.pth --set vggish_weights=vggish-10086976.pth
        --data AVSBench/Single-source --subset s4
    """
    from avsbench_kit.spec import parse_set_options, spec_from_text
    from avskit.analyses.training import DataOptions, run_evaluation, zoo_only

    spec = spec_from_text(model, parse_set_options(set_))
    zoo_only(spec)
    if checkpoint is None and not spec.weights:
        err.print("[yellow]note:[/] no --checkpoint or --set weights=FILE: evaluating the initial (untrained) "
                  "weights", highlight=False, soft_wrap=True)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(f"building {escape(spec.name)}" + (" and loading its weights" if spec.weights else ""), total=None)
        report = run_evaluation(spec, DataOptions(data, subset, size, videos), checkpoint, audio_blind,
                                Path(results) if results else None, device=device,
                                on_eval=lambda i, n: bar.update(task, description="evaluating (test batches)", completed=i, total=n))
    if json_out:
        _print_json(report)
        return
    t = report["test"]
    what = "initial weights" if report["initial_weights"] else escape(str(checkpoint or spec.weights))
    first = "mIoU" if report["subset"] == "avss" else "J"
    out.print(f"{escape(report['model'])} ({what}) on {escape(report['data'])} {report['subset']} test: "
              f"{first} {t['jaccard']:.4f}, F {t['f_score']:.4f} (measured)", highlight=False, soft_wrap=True)
    if report.get("weights_file"):
        w = report["weights_file"]
        out.print(f"weights sha256 {w['sha256']}; {escape(_weights_summary(w))}", highlight=False, soft_wrap=True)


def _split_models(text: str) -> list[str]:
    """``a,b[k=v,w=x],c`` -> ``["a", "b[k=v,w=x]", "c"]``: commas inside brackets belong to a label."""
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    return parts + [current]


@app.command()
@with_launcher
def compare(
    fusion: Annotated[Optional[list[str]], typer.Option(metavar="NAMES", help="Sweep the decoder's fusion: names, comma-separated or repeated, or "
                                                                              "'all'.")] = None,
    qg: Annotated[Optional[list[str]], typer.Option(metavar="NAMES", help="Sweep the query generator (none, qg, bqg, pqg) or 'all'.")] = None,
    stages: Annotated[Optional[list[str]], typer.Option(metavar="PATTERNS", help="Sweep the decoder stages (CTT, TTT, TCT, TTC, ...) or "
                                                                                 "'all'.")] = None,
    queries: Annotated[Optional[list[str]], typer.Option(metavar="COUNTS", help="Sweep the number of queries (e.g. 8,16,32) or 'all' "
                                                                                "(8..256).")] = None,
    backbone: Annotated[Optional[list[str]], typer.Option(metavar="NAMES", help="Sweep the visual backbone (r18, r50) or 'all'.")] = None,
    models: Annotated[Optional[list[str]], typer.Option(metavar="MODELS", help="Instead of an axis: these models (zoo names, labels or references "
                                                                               "FILE.py:factory) against the base.")] = None,
    base: Annotated[str, typer.Option(help="The model every variant derives from (a zoo name, a label, or a reference FILE.py:factory with "
                                           "--models); it anchors the latency runs.")] = "avesformer-r50",
    train: Annotated[Optional[str], typer.Option(metavar="DATA", help="Also train and evaluate each variant: synthetic:s4|ms3|avss or an AVSBench "
                                                                      "root (with --subset).")] = None,
    subset: SubsetOption = None,
    steps: Annotated[int, typer.Option(help="Training steps per variant (with --train).")] = 600,
    batch: Annotated[int, typer.Option(min=1, help="Frames per training step (with --train).")] = 8,
    train_size: Annotated[int, typer.Option(help="Frame size for training (with --train).")] = 64,
    videos: Annotated[int, typer.Option(help="Synthetic videos to make with --train synthetic:NAME (70/15/15 train/val/test; "
                                             "the test split is what each run is evaluated on).")] = 3000,
    seeds: Annotated[str, typer.Option(metavar="SEEDS", help="Train each variant once per seed, e.g. 0,1,2 (with --train); J and F "
                                                             "are shown as mean and sd over them.")] = "0",
    train_warmup: Annotated[int, typer.Option(min=0, help="Linear learning-rate warmup steps of each training run (with --train).")] = 0,
    val_every: Annotated[int, typer.Option(min=0, help="Each training run's validation curve: J every N steps (with --train; 0: "
                                                       "none).")] = 0,
    audio_blind_control: Annotated[bool, typer.Option("--audio-blind-control", help="Also train the base audio-blind, once per seed "
                                                                                    "(with --train): the control every J is read "
                                                                                    "against.")] = False,
    probe_frames: Annotated[int, typer.Option(min=0, help="With --train: probe each trained checkpoint's attention on N test frames "
                                                          "(dissipated share; localisation of its audio-to-visual maps). 0: "
                                                          "don't.")] = 32,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    size: Annotated[int, typer.Option(help="Input height and width for latency and FLOPs (a multiple of 32).")] = 224,
    warmup: Annotated[int, typer.Option(help="Untimed rounds first.")] = 3,
    iters: Annotated[int, typer.Option(help="Timed interleaved rounds.")] = 20,
    threads: Annotated[Optional[int], typer.Option(help="CPU threads (torch.set_num_threads); default: torch's.")] = None,
    measure_: Annotated[str, typer.Option("--measure", metavar="KINDS", help="What to measure of each variant: params, flops, "
                                                                             "dissipation, latency (comma-separated), all, or none "
                                                                             "(with --train: training only).")] = "all",
    results: ResultsOption = None,
    json_out: JsonFlag = False,
    launch=None,
) -> None:
    """The paper's ablations: one axis of a model swept, each variant measured side by side.

    For the base and each variant: declared and live parameters, latency (all variants timed
    interleaved in one run, with the base in the same rounds: the ratio to the base is measured side
    by side), FLOPs, the dissipation metrics of its attention and, with --train, J and F after
    training. Every result is a record; run the same sweep again (say after Ctrl-C) and finished
    variants are read back, not measured again.

    Examples:

        avskit compare --fusion all

        avskit compare --qg none,qg,bqg,pqg --json

        avskit compare --stages TTT,TCT,TTC --iters 10

        avskit compare --queries 8,16,32,64,128,256

        avskit compare --qg qg,pqg --base avsegformer-r50

        avskit compare --backbone r18 --base avesformer-r50 --train synthetic:s4 --steps 300

        avskit compare --base examples/tiny_avs.py:build --models avesformer-r18,avsegformer-r50

        avskit compare --fusion tpavi,cross_attention --base avesformer-r18 --train synthetic:s4 --steps 4 --seeds 0,1 --launcher local

        avskit compare --fusion all --train AVSBench/Multi-sources --subset ms3 --seeds 0,1,2 --launcher slurm --partition gpu
        --gpus-per-node 1 --job-dir /shared/avskit/jobs --results /shared/avskit/records.jsonl --no-wait
    """
    from avsbench_kit.results import default_store, load_records
    from avsbench_kit.spec import spec_from_text
    from avskit.analyses.compare import MEASUREMENTS, MeasureOptions, environment_for, measure, summary, variants

    given = {axis: values for axis, values in (("fusion", fusion), ("qg", qg), ("stages", stages), ("queries", queries),
                                               ("backbone", backbone), ("models", models)) if values}
    if len(given) != 1:
        raise UserError("give exactly one axis to sweep (--fusion, --qg, --stages, --queries or --backbone, e.g. --fusion all), "
                        "or --models with a list of models")
    (axis, values), = given.items()
    base_spec = spec_from_text(base)
    if axis == "models":
        names = [v.strip() for text in values for v in _split_models(text) if v.strip()]
        if not names:
            raise UserError("--models needs at least one model, e.g. --models avesformer-r18,avsegformer-r50")
        specs = list(dict.fromkeys([base_spec, *(spec_from_text(name) for name in names)]))
    elif base_spec.family == "foreign":
        raise UserError(f"--{axis} sweeps a zoo model's spec; {base_spec.label} is a reference: compare it with --models instead")
    else:
        specs = list(dict.fromkeys([base_spec, *variants(base_spec, axis, values)]))
    if train and any(s.family == "foreign" for s in specs):
        raise UserError("--train trains zoo models only; a referenced model is measured without it")
    named = {"all": MEASUREMENTS, "none": ()}
    text = measure_.strip().lower()
    kinds = named[text] if text in named else tuple(dict.fromkeys(k.strip() for k in text.split(",") if k.strip()))
    opts = MeasureOptions(device=device, size=size, warmup=warmup, iters=iters, threads=threads, train=train, subset=subset,
                          steps=steps, batch=batch, train_size=train_size, videos=videos, seeds=_seeds(seeds), train_warmup=train_warmup,
                          val_every=val_every, audio_blind_control=audio_blind_control, probe_frames=probe_frames, measurements=kinds)
    opts.check(here=launch.launcher != "slurm")
    store = Path(results) if results else default_store()
    with err.status("comparing...") as status:
        sweep = measure(specs, opts, store, tag=f"compare:{axis}", progress=lambda m: status.update(escape(m)), launch=launch)
    rows = summary(specs, opts, load_records(store), environment_for(opts))
    report = {"base": base_spec.label, "axis": axis, "variants": rows, "records": str(store),
              "measured": [list(x) for x in sweep.measured], "reused": [list(x) for x in sweep.skipped],
              "launcher": launch.launcher, "jobs": sweep.submitted, "job_dir": sweep.job_dir}
    if json_out:
        _print_json(report)
        return
    title = f"models against {escape(base_spec.label)}" if axis == "models" else f"{axis} sweep of {escape(base_spec.label)}"
    table = Table(title=f"{title} ({device}, {size}x{size}, batch 1)")
    columns = ["variant", "declared", "live", "latency ms", "IQR", "vs base", "GFLOP", "dissipated", "paper ms"]
    if train:
        columns += ["J", "F"] if len(opts.seeds) == 1 else [f"J ({len(opts.seeds)} seeds)", f"F ({len(opts.seeds)} seeds)"]
        if probe_frames:
            columns += ["energy ratio (trained)", "cIoU@0.5 (trained)", "dissipated (trained)"]
    for col in columns:
        table.add_column(col, justify="left" if col == "variant" else "right", no_wrap=col == "variant")
    for r in rows:
        lat = r["latency_ms"]
        cells = [escape(r["model"]), _millions(r["params_declared"]), _millions(r["params_live"]),
                 f"{lat['median']:.1f}" if lat else "", f"{lat['iqr']:.1f}" if lat else "",
                 f"{r['ratio_to_anchor']:.2f}x" if r["ratio_to_anchor"] is not None else "", _fmt(r["flops"], 1e9),
                 f"{r['dissipated_sites']} of {r['attention_sites']}" if r["attention_sites"] is not None else "",
                 str(r["reported"]["latency_ms"]) if r["reported"] and r["reported"]["latency_ms"] else ""]
        if train:
            cells += [_mean_sd(r, "jaccard"), _mean_sd(r, "f_score")]
            if probe_frames:
                cells += [_mean_sd(r, "trained_energy_ratio"), _mean_sd(r, "trained_ciou_at_05"), _mean_sd(r, "trained_dissipated_share")]
        table.add_row(*cells)
    out.print(table)
    blind = rows[0].get("audio_blind_jaccard") if rows else None
    if blind is not None:
        out.print(f"audio-blind control ({escape(rows[0]['model'])}, {rows[0]['audio_blind_seeds']} seeds): "
                  f"J {_mean_sd(rows[0], 'audio_blind_jaccard')}", highlight=False, soft_wrap=True)
    if train and probe_frames:
        out.print(f"trained = each checkpoint probed on {probe_frames} test frames: the energy ratio (chance 1) and cIoU@0.5 of its last "
                  "audio-to-visual map, and the share of its audio-to-visual (site, frame) pairs flagged dissipated; mean ± sd over seeds",
                  highlight=False, soft_wrap=True)
    out.print("paper ms = reported by the paper (RTX 3090), not measured here; vs base = latency ratio to the base timed in the same rounds",
              highlight=False, soft_wrap=True)
    if sweep.skipped:
        out.print(f"read back from earlier records (not measured again): {len(sweep.skipped)} measurements", highlight=False)
    _print_submitted(sweep.submitted, sweep.job_dir, launch.wait)
    out.print(f"records in {escape(str(store))}", highlight=False, soft_wrap=True)


def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(dict.fromkeys(int(s) for s in text.split(",") if s.strip()))
    except ValueError:
        raise UserError(f"--seeds {text!r}: give whole numbers, comma-separated, e.g. 0,1,2") from None
    if not seeds or min(seeds) < 0:
        raise UserError(f"--seeds {text!r}: give one or more seeds of 0 or more, e.g. 0,1,2")
    return seeds


def _mean_sd(row: dict, metric: str) -> str:
    if metric not in row:
        return ""
    sd = row.get(f"{metric}_sd")
    return f"{row[metric]:.3f}" + (f" ± {sd:.3f}" if sd is not None else "")


@app.command()
@with_launcher
def report(
    quick: Annotated[bool, typer.Option("--quick", help="Fewer timed rounds and scaling sizes: about 5 minutes on a 2-core CPU when nothing is "
                                                        "recorded yet.")] = False,
    out_dir: Annotated[str, typer.Option("--out", metavar="DIR", help="Where the tables, figures, README and records.jsonl go.")] = "reports",
    measure: Annotated[bool, typer.Option("--measure/--no-measure", help="Measure what the records lack first (default), or only render the "
                                                                         "records there are.")] = True,
    train: Annotated[Optional[str], typer.Option(metavar="DATA", help="Also train the models of --train-tables, e.g. synthetic:s4.")] = None,
    steps: Annotated[int, typer.Option(help="Training steps per model (with --train).")] = 600,
    train_tables: Annotated[str, typer.Option(metavar="TABLES", help="With --train: whose models to train, e.g. 3,4,5,7: 3 = the four zoo "
                                                                     "models (Figure 1's third panel); 4, 5, 7 = the ablation's variants "
                                                                     "of avesformer-r18, with the audio-blind control.")] = "3",
    seeds: Annotated[str, typer.Option(metavar="SEEDS", help="With --train: seeds per model, e.g. 0,1,2.")] = "0",
    train_warmup: Annotated[int, typer.Option(min=0, help="With --train: learning-rate warmup steps.")] = 0,
    val_every: Annotated[int, typer.Option(min=0, help="With --train: each run's validation curve, every N steps (0: none).")] = 0,
    device: Annotated[str, typer.Option(help="cpu or cuda: where missing latency is measured.")] = "cpu",
    threads: Annotated[Optional[int], typer.Option(help="CPU threads (torch.set_num_threads); default: torch's.")] = None,
    eval_data: Annotated[Optional[str], typer.Option(metavar="ROOT", help="An AVSBench root (or one subset's folder): evaluate the released "
                                                                          "checkpoints in --weights-dir on it first.")] = None,
    weights_dir: Annotated[Optional[str], typer.Option(metavar="DIR", help="Where the released checkpoints are, under the releases' file names "
                                                                           "(README: Released checkpoints).")] = None,
    maps: Annotated[str, typer.Option(metavar="trained|untrained", help="Figures 4a, 7, 8 and 9: from the trained checkpoints' maps when the "
                                                                        "records hold them (default; a panel without a checkpoint says "
                                                                        "[untrained]), or all from random weights, labelled untrained.")] = "trained",
    results: ResultsOption = None,
    json_out: JsonFlag = False,
    launch=None,
) -> None:
    """The paper's Tables 3-9 and Figures 1, 3, 4, 7, 8, 9 and the scaling plots, from the records.

    Runs the sweeps the tables need (skipping whatever the record store already holds), then
    renders every table (.md, .tex, .csv) and figure (PNG, SVG) and an index with provenance from
    the records alone. The paper's numbers stand beside ours, labelled reported.

    Examples:

        avskit report --quick

        avskit report --out reports

        avskit report --no-measure --results reports/records.jsonl --out /tmp/again

        avskit report --no-measure --results reports/records.jsonl --out /tmp/untrained --maps untrained

        avskit report --train synthetic:s4 --steps 600 --json

        avskit report --train synthetic:s4 --train-tables 3,4,5 --seeds 0,1,2 --steps 600 --train-warmup 30

        avskit report --eval-data AVSBench --weights-dir checkpoints --quick

        avskit report --train synthetic:s4 --steps 600 --launcher slurm --partition gpu --gpus-per-node 1 --device cuda
    """
    from avsbench_kit.results import default_store
    from avskit.analyses.report import report as run_report

    if steps < 1:
        raise UserError(f"--steps must be at least 1, got {steps}")
    from avskit.analyses.report import MAPS, TRAINABLE_TABLES

    if maps not in MAPS:
        raise UserError(f"--maps {maps!r} is not accepted; choose trained or untrained")

    chosen = tuple(dict.fromkeys(f"table{t.strip().removeprefix('table')}" for t in train_tables.split(",") if t.strip()))
    if not chosen or set(chosen) - set(TRAINABLE_TABLES):
        raise UserError(f"--train-tables {train_tables!r}: choose from 3, 4, 5, 7 (comma-separated)")
    train_opts = {"train": train, "steps": steps, "seeds": _seeds(seeds), "train_warmup": train_warmup, "val_every": val_every,
                  "tables": chosen} if train else None
    store = Path(results) if results else default_store()
    if (eval_data is None) != (weights_dir is None):
        raise UserError("--eval-data and --weights-dir go together: the released checkpoints in DIR are evaluated on ROOT")
    released = (Path(eval_data), Path(weights_dir)) if eval_data else None
    if not measure and not store.exists() and released is None:
        raise UserError(f"--no-measure: no record store at {store}")
    with err.status("report...") as status:
        summary = run_report(Path(out_dir), store, quick=quick, measure_first=measure, device=device, threads=threads,
                             train=train_opts, progress=lambda m: status.update(escape(m)), released=released, launch=launch,
                             maps=maps)
    if json_out:
        _print_json(summary)
        return
    if "submitted" in summary:  # --no-wait: the jobs run on; the report is drawn once they are done
        _print_submitted(summary["submitted"], summary["job_dir"], waited=False)
        out.print(f"when they are done: avskit report --no-measure --results {escape(str(store))} --out {escape(out_dir)}",
                  highlight=False, soft_wrap=True)
        return
    table = Table(title="Table 3: measured here beside the paper", caption="paper = reported (RTX 3090); here = measured on this "
                  "machine; ratio = latency / avesformer-r50's, in the same run", caption_justify="left")
    rows = summary["table3"]
    columns = [c for c in (rows[0] if rows else {}) if c not in ("declared by released code M", "live in released code M")
               and "declared params" not in c]
    for col in columns:
        table.add_column(escape(_short_header(col)), justify="left" if col == "model" else "right", min_width=15 if col == "model" else None)
    for row in rows:
        table.add_row(*[escape(_cell(row[c])) for c in columns])
    out.print(table)
    for e in summary.get("released_evaluated", []):
        first = "mIoU" if e["subset"] == "avss" else "J"
        out.print(f"released {escape(e['model'])} on {e['subset']} ({escape(Path(e['weights']).name)}, sha256 {e['sha256'][:12]}...): "
                  f"{first} {100 * e['jaccard']:.1f}, F {100 * e['f_score']:.1f} (measured)", highlight=False, soft_wrap=True)
    out.print(f"wrote {len(summary['files'])} files to {escape(summary['out'])} from {summary['records']} records "
              f"({summary['measured']} measurements made now, {summary['reused']} read back); start with "
              f"{escape(str(Path(summary['out']) / 'README.md'))}", highlight=False, soft_wrap=True)


@app.command("gpu-bench")
def gpu_bench(
    out_dir: Annotated[str, typer.Argument(metavar="OUT", help="Folder for records.jsonl, gpu-bench.json and gpu-bench.md (created).")],
    device: Annotated[str, typer.Option(help="cuda (the benchmark) or cpu (the same path as a smoke run).")] = "cuda",
    quick: Annotated[bool, typer.Option("--quick", help="A smoke run: 64x64, 3 timed rounds, AVESFormer-R18 in two stage patterns.")] = False,
    json_out: JsonFlag = False,
) -> None:
    """The prepared GPU benchmark: everything the paper times, on the CUDA machine at hand.

    All zoo models at batch 1 in fp32 and bf16, eager and CUDA graphs, then the Table 7 stage
    patterns and the Table 8 query counts on AVESFormer-R50, each group timed interleaved with
    AVESFormer-R50 as its anchor. Needs torch and torchvision only (fvcore, where installed, adds
    FLOPs and utilization). Writes OUT/records.jsonl, OUT/gpu-bench.json and OUT/gpu-bench.md, with
    the paper's latencies beside, labelled reported. Without a CUDA device it stops at once unless
    --device cpu.

    Examples:

        avskit gpu-bench reports/gpu

        avskit gpu-bench /tmp/smoke --device cpu --quick

        avskit report --no-measure --results reports/gpu/records.jsonl --out /tmp/gpu-report
    """
    import importlib.util

    import torch

    from avskit.analyses.gpu_bench import check_device, run_gpu_bench

    check_device(device)
    if device == "cuda":
        err.print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}", highlight=False)
    if importlib.util.find_spec("fvcore") is None:
        err.print("fvcore is not installed: FLOPs and utilization will be missing", highlight=False)
    summary = run_gpu_bench(Path(out_dir), device=device, quick=quick, progress=lambda m: err.print(escape(m), highlight=False))
    if json_out:
        _print_json(summary)
        return
    for name in summary["files"]:
        out.print(f"wrote {escape(name)}", highlight=False, soft_wrap=True)


_shown_warnings: set[str] = set()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line on stderr, each text once per run (the same notice per model is noise)."""
    if str(message) in _shown_warnings:
        return
    _shown_warnings.add(str(message))
    err.print(f"[bold yellow]warning:[/] {escape(str(message))}", highlight=False, soft_wrap=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``avskit`` script: user mistakes end in one line on stderr and exit 2."""
    from avsbench_kit.models.vggish import RandomWeightsWarning
    from avsbench_kit.profiling.env import KEEP_DENORMALS, flush_denormals, git_commit

    if os.environ.get(KEEP_DENORMALS, "") in ("", "0"):
        flush_denormals()  # first, before torch starts its worker threads, which inherit it
    git_commit()  # the commit of the code this process loaded, not of whatever is checked out when it ends
    _shown_warnings.clear()
    warnings.showwarning = _show_warning
    warnings.simplefilter("always", RandomWeightsWarning)
    command = typer.main.get_command(app)
    argv = sys.argv[1:] if argv is None else argv
    if not argv:  # a bare `avskit` is a request for help, not a mistake
        argv = ["--help"]
    try:
        command.main(args=argv, prog_name="avskit", standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        err.print("aborted")
        return 130
    except typer.TyperException as exc:  # usage errors: unknown option, missing argument, bad type
        err.print(f"avskit: error: {escape(exc.format_message())}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except UserError as exc:
        err.print(f"avskit: error: {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 2
    return 0
