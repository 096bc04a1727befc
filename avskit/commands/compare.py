"""`avskit compare`: one axis of a model swept, each variant measured (and trained) side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from avskit.commands.console import err, fmt, mean_sd, millions, out, print_json, print_submitted
from avskit.commands.options import DeviceOption, JsonFlag, ResultsOption, SeedsOption, SubsetOption, ThreadsOption, with_launcher, with_recipe


@with_launcher
@with_recipe(size_flag="--train-size", warmup_flag="--train-warmup")
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
    seeds: SeedsOption = "0",
    audio_blind_control: Annotated[bool, typer.Option("--audio-blind-control", help="Also train the base audio-blind, once per seed "
                                                                                    "(with --train): the control every J is read "
                                                                                    "against.")] = False,
    probe_frames: Annotated[int, typer.Option(min=0, help="With --train: probe each trained checkpoint's attention on N test frames "
                                                          "(dissipated share; localisation of its audio-to-visual maps). 0: "
                                                          "don't.")] = 32,
    device: DeviceOption = "cpu",
    size: Annotated[int, typer.Option(help="Input height and width for latency and FLOPs (a multiple of 32).")] = 224,
    warmup: Annotated[int, typer.Option(help="Untimed rounds first.")] = 3,
    iters: Annotated[int, typer.Option(help="Timed interleaved rounds.")] = 20,
    threads: ThreadsOption = None,
    measure_: Annotated[str, typer.Option("--measure", metavar="KINDS", help="What to measure of each variant: params, flops, "
                                                                             "dissipation, latency (comma-separated), all, or none "
                                                                             "(with --train: training only).")] = "all",
    results: ResultsOption = None,
    json_out: JsonFlag = False,
    recipe=None,
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

        avskit compare --backbone r18 --base avesformer-r50 --train synthetic:s4 --seeds 0,1,2

        avskit compare --base examples/tiny_avs.py:build --models avesformer-r18,avsegformer-r50

        avskit compare --fusion tpavi,cross_attention --base avesformer-r18 --train synthetic:s4 --steps 4 --seeds 0,1 --launcher local

        avskit compare --fusion all --train AVSBench/Multi-sources --subset ms3 --seeds 0,1,2 --launcher slurm --partition gpu
        --gpus-per-node 1 --job-dir /shared/avskit/jobs --results /shared/avskit/records.jsonl --no-wait
    """
    from avsbench_kit.recipe import parse_seeds
    from avsbench_kit.results import default_store, load_records
    from avskit.analyses.compare import MeasureOptions, environment_for, measure, measurements, summary
    from avskit.analyses.variants import sweep_specs

    axes = {"fusion": fusion, "qg": qg, "stages": stages, "queries": queries, "backbone": backbone, "models": models}
    axis, specs = sweep_specs(base, {k: v for k, v in axes.items() if v}, trained=bool(train))
    opts = MeasureOptions(device=device, size=size, warmup=warmup, iters=iters, threads=threads, train=train, subset=subset, recipe=recipe,
                          seeds=parse_seeds(seeds), audio_blind_control=audio_blind_control, probe_frames=probe_frames,
                          measurements=measurements(measure_))
    opts.check(here=launch.launcher != "slurm")
    store = Path(results) if results else default_store()
    with err.status("comparing...") as status:
        sweep = measure(specs, opts, store, tag=f"compare:{axis}", progress=lambda m: status.update(escape(m)), launch=launch)
    rows = summary(specs, opts, load_records(store), environment_for(opts))
    report = {"base": specs[0].label, "axis": axis, "variants": rows, "records": str(store),
              "measured": [list(x) for x in sweep.measured], "reused": [list(x) for x in sweep.skipped],
              "launcher": launch.launcher, "jobs": sweep.submitted, "job_dir": sweep.job_dir}
    if json_out:
        print_json(report)
        return
    title = f"models against {escape(specs[0].label)}" if axis == "models" else f"{axis} sweep of {escape(specs[0].label)}"
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
        cells = [escape(r["model"]), millions(r["params_declared"]), millions(r["params_live"]),
                 f"{lat['median']:.1f}" if lat else "", f"{lat['iqr']:.1f}" if lat else "",
                 f"{r['ratio_to_anchor']:.2f}x" if r["ratio_to_anchor"] is not None else "", fmt(r["flops"], 1e9),
                 f"{r['dissipated_sites']} of {r['attention_sites']}" if r["attention_sites"] is not None else "",
                 str(r["reported"]["latency_ms"]) if r["reported"] and r["reported"]["latency_ms"] else ""]
        if train:
            cells += [mean_sd(r, "jaccard"), mean_sd(r, "f_score")]
            if probe_frames:
                cells += [mean_sd(r, "trained_energy_ratio"), mean_sd(r, "trained_ciou_at_05"), mean_sd(r, "trained_dissipated_share")]
        table.add_row(*cells)
    out.print(table)
    blind = rows[0].get("audio_blind_jaccard") if rows else None
    if blind is not None:
        out.print(f"audio-blind control ({escape(rows[0]['model'])}, {rows[0]['audio_blind_seeds']} seeds): "
                  f"J {mean_sd(rows[0], 'audio_blind_jaccard')}", highlight=False, soft_wrap=True)
    if train and probe_frames:
        out.print(f"trained = each checkpoint probed on {probe_frames} test frames: the energy ratio (chance 1) and cIoU@0.5 of its last "
                  "audio-to-visual map, and the share of its audio-to-visual (site, frame) pairs flagged dissipated; mean ± sd over seeds",
                  highlight=False, soft_wrap=True)
    out.print("paper ms = reported by the paper (RTX 3090), not measured here; vs base = latency ratio to the base timed in the same rounds",
              highlight=False, soft_wrap=True)
    if sweep.skipped:
        out.print(f"read back from earlier records (not measured again): {len(sweep.skipped)} measurements", highlight=False)
    print_submitted(sweep.submitted, sweep.job_dir, launch.wait)
    out.print(f"records in {escape(str(store))}", highlight=False, soft_wrap=True)
