"""`avskit report` and `gpu-bench`: the paper's tables and figures from the records, and the prepared GPU run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from avsbench_kit.errors import UserError
from avskit.commands.console import cell, err, out, print_json, print_submitted, short_header
from avskit.commands.options import JsonFlag, ResultsOption, SeedsOption, ThreadsOption, with_launcher, with_recipe


@with_launcher
@with_recipe(size_flag="--train-size", warmup_flag="--train-warmup")
def report(
    quick: Annotated[bool, typer.Option("--quick", help="Fewer timed rounds and scaling sizes: about 5 minutes on a 2-core CPU when nothing is "
                                                        "recorded yet.")] = False,
    out_dir: Annotated[str, typer.Option("--out", metavar="DIR", help="Where the tables, figures, README and records.jsonl go.")] = "reports",
    measure: Annotated[bool, typer.Option("--measure/--no-measure", help="Measure what the records lack first (default), or only render the "
                                                                         "records there are.")] = True,
    train: Annotated[Optional[str], typer.Option(metavar="DATA", help="Also train the models of --train-tables, e.g. synthetic:s4.")] = None,
    train_tables: Annotated[str, typer.Option(metavar="TABLES", help="With --train: whose models to train, e.g. 3,4,5,7: 3 = the four zoo "
                                                                     "models (Figure 1's third panel); 4, 5, 7 = the ablation's variants "
                                                                     "of avesformer-r18, with the audio-blind control.")] = "3",
    seeds: SeedsOption = "0",
    device: Annotated[str, typer.Option(help="cpu or cuda: where missing latency is measured.")] = "cpu",
    threads: ThreadsOption = None,
    eval_data: Annotated[Optional[str], typer.Option(metavar="ROOT", help="An AVSBench root (or one subset's folder): evaluate the released "
                                                                          "checkpoints in --weights-dir on it first.")] = None,
    weights_dir: Annotated[Optional[str], typer.Option(metavar="DIR", help="Where the released checkpoints are, under the releases' file names "
                                                                           "(README: Released checkpoints).")] = None,
    maps: Annotated[str, typer.Option(metavar="trained|untrained", help="Figures 4a, 7, 8 and 9: from the trained checkpoints' maps when the "
                                                                        "records hold them (default; a panel without a checkpoint says "
                                                                        "[untrained]), or all from random weights, labelled untrained.")] = "trained",
    results: ResultsOption = None,
    json_out: JsonFlag = False,
    recipe=None,
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
    from avsbench_kit.recipe import parse_seeds
    from avsbench_kit.results import default_store
    from avskit.analyses.report import MAPS, trained_tables
    from avskit.analyses.report import report as run_report

    if maps not in MAPS:
        raise UserError(f"--maps {maps!r} is not accepted; choose trained or untrained")
    train_opts = {"train": train, "recipe": recipe, "seeds": parse_seeds(seeds), "tables": trained_tables(train_tables)} if train else None
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
        print_json(summary)
        return
    if "submitted" in summary:  # --no-wait: the jobs run on; the report is drawn once they are done
        print_submitted(summary["submitted"], summary["job_dir"], waited=False)
        out.print(f"when they are done: avskit report --no-measure --results {escape(str(store))} --out {escape(out_dir)}",
                  highlight=False, soft_wrap=True)
        return
    table = Table(title="Table 3: measured here beside the paper", caption="paper = reported (RTX 3090); here = measured on this "
                  "machine; ratio = latency / avesformer-r50's, in the same run", caption_justify="left")
    rows = summary["table3"]
    columns = [c for c in (rows[0] if rows else {}) if c not in ("declared by released code M", "live in released code M")
               and "declared params" not in c]
    for col in columns:
        table.add_column(escape(short_header(col)), justify="left" if col == "model" else "right", min_width=15 if col == "model" else None)
    for row in rows:
        table.add_row(*[escape(cell(row[c])) for c in columns])
    out.print(table)
    for e in summary.get("released_evaluated", []):
        first = "mIoU" if e["subset"] == "avss" else "J"
        out.print(f"released {escape(e['model'])} on {e['subset']} ({escape(Path(e['weights']).name)}, sha256 {e['sha256'][:12]}...): "
                  f"{first} {100 * e['jaccard']:.1f}, F {100 * e['f_score']:.1f} (measured)", highlight=False, soft_wrap=True)
    out.print(f"wrote {len(summary['files'])} files to {escape(summary['out'])} from {summary['records']} records "
              f"({summary['measured']} measurements made now, {summary['reused']} read back); start with "
              f"{escape(str(Path(summary['out']) / 'README.md'))}", highlight=False, soft_wrap=True)


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
        print_json(summary)
        return
    for name in summary["files"]:
        out.print(f"wrote {escape(name)}", highlight=False, soft_wrap=True)
