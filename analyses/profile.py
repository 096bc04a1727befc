"""Profile: latency distributions, per-module breakdown, FLOPs, utilization and speed paths.

Specs in, one result per (model, speed path) out, each also a record with provenance. Eager is
always measured; a speed path (torch.compile, channels_last, bf16/fp16 autocast, CUDA graphs)
is measured beside it in the same interleaved rounds and checked against its output.
"""

from __future__ import annotations

import contextlib
import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from avsbench_kit import ModelSpec, UserError, build_from_spec
from avsbench_kit.inputs import as_input_device, model_inputs
from avsbench_kit.profiling.breakdown import module_breakdown
from avsbench_kit.profiling.env import command_line, environment
from avsbench_kit.profiling.flops import CONVENTION, count_flops
from avsbench_kit.profiling.peak import peak_matmul_gflops
from avsbench_kit.profiling.timing import interleaved_latency
from avsbench_kit.results import append_records, default_store, make_record
from avsbench_kit.spec import spec_from_dict

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class ProfileOptions:
    device: str = "cpu"
    dtype: str = "fp32"
    batch: int = 1
    size: int = 224
    threads: int | None = None
    warmup: int = 5
    iters: int = 30
    compile: bool = False
    channels_last: bool = False
    cuda_graphs: bool = False
    depth: int = 2
    breakdown_iters: int = 10
    trace: str | None = None
    plot: str | None = None  # a .png/.svg/.pdf file: the latency distribution of every candidate
    peak_size: int | None = None  # n of the peak-GEMM probe (default: 2048 on CPU, 8192 on CUDA); smoke runs use less

    @property
    def speed_path(self) -> str | None:
        """The name of the non-eager path these options ask for, or None for eager only."""
        parts = [name for name, on in (("compile", self.compile), ("channels_last", self.channels_last),
                                       (self.dtype, self.dtype != "fp32"), ("cuda_graphs", self.cuda_graphs)) if on]
        return "+".join(parts) or None

    def check(self) -> None:
        """UserError for options that cannot work here, before anything is measured."""
        if self.device not in ("cpu", "cuda"):
            raise UserError(f"--device {self.device!r} is not accepted; choose cpu or cuda")
        if self.device == "cuda" and not torch.cuda.is_available():
            built = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
            raise UserError(f"--device cuda: no CUDA device is available on this machine (torch {torch.__version__}, {built})")
        if self.dtype not in DTYPES:
            raise UserError(f"--dtype {self.dtype!r} is not accepted; choose one of: {', '.join(DTYPES)}")
        if self.cuda_graphs and self.device != "cuda":
            raise UserError("--cuda-graphs needs --device cuda")
        for name, value, low in (("--batch", self.batch, 1), ("--iters", self.iters, 2), ("--warmup", self.warmup, 0),
                                 ("--depth", self.depth, 1), ("--size", self.size, 32)):
            if value < low:
                raise UserError(f"{name} must be at least {low}, got {value}")
        if self.size % 32:
            raise UserError(f"--size must be a multiple of 32 (e.g. 224), got {self.size}")
        if self.threads is not None and self.threads < 1:
            raise UserError(f"--threads must be at least 1, got {self.threads}")
        if self.plot is not None:
            from avskit.analyses.figure_io import PLOT_FORMATS

            if Path(self.plot).suffix.lower().lstrip(".") not in PLOT_FORMATS:
                raise UserError(f"--plot {self.plot}: give a file ending in .png, .svg or .pdf")


@dataclass
class Runner:
    spec: ModelSpec
    path: str  # "eager" or the speed path's name
    call: Callable[[], torch.Tensor]
    model: torch.nn.Module
    max_abs_diff: float | None = None
    prepare_s: float | None = None


@contextlib.contextmanager
def _inductor_freezing(enabled: bool):
    """torch.compile on CPU only pays off with inductor's freezing (weights folded as constants)."""
    if not enabled:
        yield
        return
    import torch._inductor.config as inductor_config

    previous = inductor_config.freezing
    inductor_config.freezing = True
    try:
        yield
    finally:
        inductor_config.freezing = previous


def _speed_path_runner(spec: ModelSpec, eager: torch.nn.Module, image: torch.Tensor, *rest: Any,
                       opts: ProfileOptions, device: torch.device) -> Runner:
    started = time.perf_counter()
    with torch.inference_mode(False):  # a real copy of the weights, not inference tensors
        model = copy.deepcopy(eager)
    x = image
    if opts.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = image.contiguous(memory_format=torch.channels_last) if image.dim() == 4 else image
    if opts.compile:
        model = torch.compile(model)
    autocast = opts.dtype != "fp32"
    dtype = DTYPES[opts.dtype]

    def forward() -> torch.Tensor:
        with torch.autocast(device.type, dtype=dtype, enabled=autocast, cache_enabled=not opts.cuda_graphs):
            return model(x, *rest)

    with _inductor_freezing(opts.compile and device.type == "cpu"):
        forward()  # compiles now, not inside the timed rounds
    call = forward
    if opts.cuda_graphs:
        call = _cuda_graph(forward, device)
    return Runner(spec, opts.speed_path or "eager", call, model, prepare_s=time.perf_counter() - started)


def _cuda_graph(forward: Callable[[], torch.Tensor], device: torch.device) -> Callable[[], torch.Tensor]:
    """Capture one forward (static inputs) into a CUDA graph; each call replays it."""
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):
        for _ in range(3):
            forward()
    torch.cuda.current_stream(device).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = forward()

    def replay() -> torch.Tensor:
        graph.replay()
        return static_out

    return replay


def _write_trace(runner: Runner, target: str, iters: int = 3) -> str:
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    path = Path(target)
    tmp = path.with_name(path.name + ".partial")
    with profile(activities=activities, record_shapes=True) as prof:
        for _ in range(iters):
            runner.call()
    try:
        prof.export_chrome_trace(str(tmp))
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UserError(f"--trace: cannot write {target}: {exc.strerror}") from None
    return str(path)


def profile(specs: list[ModelSpec], opts: ProfileOptions, results_path: str | Path | None = None,
            progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Measure every spec under ``opts``; returns the ``--json`` object and appends records."""
    opts.check()
    for target, option in ((opts.trace, "--trace"), (opts.plot, "--plot")):
        if target:
            _check_writable(target, option)
    results_path = Path(results_path) if results_path is not None else default_store()
    _check_writable(str(results_path), "--results", create_parents=True)
    say = progress or (lambda message: None)
    device = torch.device(opts.device)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    runners: list[Runner] = []
    flops: dict[ModelSpec, Any] = {}
    inputs: dict[ModelSpec, tuple] = {}
    with torch.inference_mode():
        for spec in specs:
            say(f"building {spec.label}")
            model = build_from_spec(spec).to(device)
            args = inputs[spec] = as_input_device(model_inputs(model, opts.batch, opts.size), device)
            reference = model(*args)
            runners.append(Runner(spec, "eager", lambda m=model, a=args: m(*a), model))
            if opts.speed_path:
                say(f"preparing {spec.label} ({opts.speed_path})")
                fast = _speed_path_runner(spec, model, *args, opts=opts, device=device)
                fast.max_abs_diff = float((fast.call().float() - reference.float()).abs().max())
                runners.append(fast)
        say(f"timing {len(runners)} candidates interleaved: {opts.warmup} warm-up + {opts.iters} rounds")
        stats = interleaved_latency([r.call for r in runners], device, opts.warmup, opts.iters,
                                    on_iteration=lambda i: say(f"round {i}/{opts.iters}"))
        say("peak matmul throughput")
        peaks = {"fp32": peak_matmul_gflops(device, torch.float32, n=opts.peak_size)}
        if opts.dtype != "fp32":  # a CPU without bf16 GEMM units takes minutes here at full size
            peaks[opts.dtype] = peak_matmul_gflops(device, DTYPES[opts.dtype], n=opts.peak_size)
        breakdowns = {}
        for runner in runners:
            if runner.path == "eager":
                say(f"per-module breakdown of {runner.spec.label}")
                breakdowns[runner.spec] = module_breakdown(runner.model, runner.call, device, opts.depth, opts.breakdown_iters)
        trace = _write_trace(runners[0], opts.trace) if opts.trace else None
    for spec in specs:
        say(f"counting FLOPs of {spec.label}")
        eager = next(r.model for r in runners if r.spec == spec and r.path == "eager")
        flops[spec] = count_flops(eager, inputs[spec])
    env = environment(device)
    env.update({"dtype": opts.dtype, "batch": opts.batch, "size": opts.size, "warmup": opts.warmup, "iters": opts.iters,
                "command": command_line()})
    # each candidate against the peak of the dtype it computes in: eager is fp32
    results = [_result(r, s, stats[0], breakdowns.get(r.spec) if r.path == "eager" else None, flops[r.spec],
                       peaks["fp32" if r.path == "eager" else opts.dtype]["peak"])
               for r, s in zip(runners, stats, strict=True)]
    for res, stat, runner in zip(results, stats, runners, strict=True):
        if runner.path != "eager":
            eager_median = next(st.median for rr, st in zip(runners, stats, strict=True) if rr.spec == runner.spec and rr.path == "eager")
            res["speedup_vs_eager"] = round(eager_median / stat.median, 4)
    out = {"results": results, "env": env, "peak_gflops": round(peaks[opts.dtype]["peak"], 2),
           "peaks": {dt: {k: round(v, 2) for k, v in p.items()} for dt, p in peaks.items()}, "flop_convention": CONVENTION}
    if trace:
        out["trace"] = trace
    if opts.plot:
        out["plot"] = _plot(results, env, opts.plot)
    # the first model anchors the run: its records can stand in a report's table anchored on it
    records = [_record(res, {**env, "anchor": specs[0].label}) for res in results]
    out["records"] = str(append_records(records, results_path))
    return out


def _plot(results: list[dict[str, Any]], env: dict[str, Any], target: str) -> str:
    """The latency distribution of each candidate of this run, drawn with seaborn."""
    from avskit.analyses.figure_io import save_plot
    from avskit.analyses.figures import latency_candidates, latency_distributions

    title = (f"{env['device_name']} ({env['device']}, {env['threads']} threads), batch {env['batch']}, {env['size']}x{env['size']}, "
             f"{env['warmup']} warm-up + {env['iters']} interleaved rounds")
    fig = latency_distributions([(title, latency_candidates(results))], title="avskit profile: latency distributions")
    return save_plot(fig, target, {"commit": env.get("commit"), "torch": env.get("torch"), "device": env.get("device_name")})


def _check_writable(target: str, option: str, create_parents: bool = False) -> None:
    """UserError now, before minutes of measuring, if ``target`` cannot be written later."""
    path = Path(target).expanduser()
    if path.is_dir():
        raise UserError(f"{option}: {target} is a directory; give a file name")
    existed = path.exists()
    try:
        if create_parents:
            path.parent.mkdir(parents=True, exist_ok=True)
        elif not path.parent.is_dir():
            raise UserError(f"{option}: directory {path.parent} does not exist")
        with open(path, "a"):
            pass
    except OSError as exc:
        raise UserError(f"{option}: cannot write {target}: {exc.strerror}") from None
    if not existed:
        path.unlink()  # no empty file left behind if the run fails later


def _result(runner: Runner, stats, first, breakdown, flops, peak: float) -> dict[str, Any]:
    seconds = stats.median / 1000.0
    total_flops = flops.total
    gflops_per_s = total_flops / seconds / 1e9 if total_flops is not None else None
    modules = []
    coverage = None
    if breakdown is not None:
        for row in breakdown.rows:
            modules.append({
                "name": row.name, "depth": row.depth, "latency_ms": round(row.latency_ms, 4),
                "share": round(row.latency_ms / breakdown.forward_ms, 4), "params": row.params,
                "flops": flops.by_module.get(row.name) if row.depth else None,
            })
        coverage = round(breakdown.coverage, 4)
    result = {
        "model": runner.spec.label,
        "spec": runner.spec.to_dict(),
        "path": runner.path,
        "latency_ms": stats.to_dict(),
        "samples_ms": stats.samples_ms(),
        "noisy": stats.noisy,
        "ratio": round(stats.median / first.median, 4),
        "params": sum(p.numel() for p in runner.model.parameters()),
        "flops": total_flops,
        "gflops_per_s": round(gflops_per_s, 2) if gflops_per_s is not None else None,
        "utilization": round(gflops_per_s / peak, 4) if gflops_per_s is not None else None,
        "peak_gflops": round(peak, 2),
        "coverage": coverage,
        "modules": modules,
        "uncounted_ops": flops.uncounted,
    }
    if runner.path != "eager":
        result["max_abs_diff"] = runner.max_abs_diff
        result["prepare_s"] = round(runner.prepare_s, 2)
    return result


def _record(result: dict, env: dict) -> dict:
    provenance = {**env, "path": result["path"]}
    keys = ("flops", "gflops_per_s", "utilization", "coverage", "modules", "params", "ratio", "max_abs_diff", "speedup_vs_eager")
    extra = {k: result[k] for k in keys if result.get(k) is not None}
    return make_record("latency", result["model"], result["spec"], "latency_ms", result["latency_ms"]["median"], "ms",
                       provenance, stats=result["latency_ms"], samples_ms=result["samples_ms"], ratio_to_anchor=result["ratio"], **extra)


def profile_markdown(reports: list[dict[str, Any]]) -> str:
    """Markdown tables of profile reports (a pure function of them), with the paper's latency beside ours."""
    from avsbench_kit.reported import reported_for

    lines = ["# Latency measured with avskit profile", ""]
    if reports:
        env = reports[0]["env"]
        lines += [f"Device: {env['device_name']} ({env['device']}, {env['threads']} CPU threads), torch {env['torch']}, "
                  f"commit {env['commit']}, {env['time']}. Batch {env['batch']}, {env['size']}x{env['size']}, "
                  f"{env['warmup']} warm-up + {env['iters']} interleaved rounds. FLOPs: {reports[0]['flop_convention']}.", "",
                  "The paper's column is *reported* (RTX 3090, its Tables 3, 6, 7); every other number is measured here.", ""]
    header = "| model | path | median ms | IQR | p90 | ratio | vs eager | GFLOP/s | util. | max abs diff | paper ms (reported) |"
    for report in reports:
        title = report.get("group", "profile")
        dtype = report["env"]["dtype"]
        peaks = ", ".join(f"{dt} {p['peak']:.0f}" for dt, p in report["peaks"].items())
        lines += [f"## {title}: dtype {dtype} (peak GEMM GFLOP/s: {peaks})", "", header, "|" + "---|" * 11]
        for r in report["results"]:
            rep = reported_for(spec_from_dict(r["spec"]))
            lat = r["latency_ms"]
            cells = [r["model"], r["path"], f"{lat['median']:.2f}", f"{lat['iqr']:.2f}", f"{lat['p90']:.2f}", f"{r['ratio']:.2f}",
                     f"{r['speedup_vs_eager']:.2f}x" if "speedup_vs_eager" in r else "",
                     "" if r["gflops_per_s"] is None else f"{r['gflops_per_s']:.0f}",
                     "" if r["utilization"] is None else f"{r['utilization']:.0%}",
                     f"{r['max_abs_diff']:.1e}" if r.get("max_abs_diff") is not None else "",
                     f"{rep.latency_ms}" if rep and rep.latency_ms and r["path"] == "eager" else ""]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
