"""`avskit train`, `eval` and `jobs`: training runs, their evaluation, and the jobs of a launched grid."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from avskit.commands.console import TrainingEta, err, out, print_json, print_submitted, weights_summary
from avskit.commands.options import AudioBlind, DataOption, DeviceOption, JsonFlag, ResultsOption, SetOption, SubsetOption, with_launcher, with_recipe


@with_launcher
@with_recipe(quick_alias=True)
def train_command(
    model: Annotated[str, typer.Argument(help="A zoo model or a label like 'avesformer-r18[stages=TTT]'.")],
    set_: SetOption = None,
    data: DataOption = "synthetic:s4",
    subset: SubsetOption = None,
    epochs: Annotated[Optional[int], typer.Option(help="Passes over the train split (instead of --steps).")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="The quick preset (--recipe quick): 400 steps without warmup, tested on 150 "
                                                        "videos; about 5 minutes on 2 cores (docs/training.md).")] = False,
    audio_blind: AudioBlind = False,
    seed: Annotated[int, typer.Option(help="Seeds the initial weights (random VGGish included), the data order and the flips.")] = 0,
    device: Annotated[str, typer.Option(help="cpu or cuda (under torchrun: NCCL, one GPU per process).")] = "cpu",
    out_dir: Annotated[Optional[str], typer.Option("--out", metavar="DIR", help="Checkpoint folder; the same run there resumes, another run is "
                                                                                "refused (default: runs/train/LABEL).")] = None,
    restart: Annotated[bool, typer.Option("--restart", help="Discard the checkpoint in --out and start this run afresh.")] = False,
    results: ResultsOption = None,
    json_out: JsonFlag = False,
    recipe=None,
    launch=None,
) -> None:
    """Train a zoo model on AVSBench or the synthetic benchmark, then evaluate it on the test split.

    The paper's recipe: AdamW, polynomial decay, VGGish frozen, horizontal flips, IoU + Dice (+ 0.1
    auxiliary) losses, cross-entropy on AVSS. The defaults (64x64 synthetic frames, 600 steps of 8 at
    lr 2e-4 after a 30-step warmup) are the ablation recipe of docs/training.md, shared with `compare
    --train` and `report --train` (avsbench_kit/recipe.py). Checkpoints (trainable weights and
    optimizer only; the frozen VGGish is rebuilt from its file or the seed) are written atomically
    every 50 steps (--quick: every 200). The same command in the same --out folder resumes where it
    stopped; a checkpoint made by another run (other model, data, recipe, seed, --audio-blind) is
    refused with what differs: use another --out, or --restart.

    Examples:

        avskit train avesformer-r18 --data synthetic:s4

        avskit train avesformer-r18 --data synthetic:s4 --quick --audio-blind --json

        avskit train avesformer-r50 --data path/to/Single-source --subset s4 --size 224 --epochs 30 --batch 16 --lr 5e-4

        avskit train avesformer-r50 --data AVSBench/Single-source --subset s4 --size 224 --epochs 30 --device cuda --launcher slurm
        --gpus-per-node 4 --partition gpu
    """
    from avsbench_kit.engine import training_device
    from avsbench_kit.spec import parse_set_options, spec_from_text
    from avskit.analyses.training import run_training, steps_for_epochs, training_task, zoo_only

    spec = spec_from_text(model, parse_set_options(set_))
    zoo_only(spec)
    if epochs is not None:  # (--epochs with --steps is refused with the recipe's flags)
        recipe = dataclasses.replace(recipe, steps=steps_for_epochs(epochs, data, recipe, subset))
    folder = Path(out_dir) if out_dir else Path("runs") / "train" / (spec.label + ("-audio-blind" if audio_blind else ""))
    if launch.launcher != "inline":
        from avsbench_kit.results import default_store

        store = Path(results) if results else default_store()
        _train_as_job(training_task(spec, data, recipe, seed, audio_blind, store, folder, launch, subset, device), folder, restart,
                      launch, json_out)
        return
    training_device(device)  # a bad --device is an error before any work
    from rich.progress import Progress

    with Progress(console=err, transient=True) as bar:
        task = bar.add_task(f"training {escape(spec.label)}", total=recipe.steps)
        eta = TrainingEta(bar, task, recipe.steps)
        report = run_training(spec, data, recipe, folder, subset, seed, audio_blind, device, Path(results) if results else None,
                              restart=restart, on_step=eta.step, on_plan=eta.plan,
                              on_features=lambda i, n: bar.update(task, description=f"audio features (frozen VGGish, once) {i}/{n}"),
                              on_eval=lambda i, n: bar.update(task, description=f"evaluating {i}/{n}"))
    if "rank" in report:  # a torchrun worker other than rank 0: rank 0 reports
        return
    if json_out:
        print_json(report)
        return
    t = report["test"]
    out.print(f"{escape(report['model'])} on {escape(report['data'])} ({report['subset']}"
              f"{', audio-blind' if audio_blind else ''}): {report['train']['steps']} steps in {report['train']['seconds']:.0f} s, "
              f"last loss {report['train']['loss']:.3f}; test J {t['jaccard']:.4f}, F {t['f_score']:.4f}; "
              f"checkpoint {escape(report['checkpoint'])}; weights: {report['weights']}", highlight=False, soft_wrap=True)


def _train_as_job(task, folder: Path, restart: bool, launch, json_out: bool) -> None:
    """`avskit train --launcher local|slurm|debug`: the same run as one job (analyses.launch)."""
    from avskit.analyses.launch import submit_one

    if restart:
        (folder / "last.pt").unlink(missing_ok=True)
    with err.status(f"{launch.launcher}: {escape(task.label)}") as status:
        done = submit_one(task, launch, f"avskit-train-{task.label}", say=lambda m: status.update(escape(m)))
    store = Path(task.store)
    if json_out:
        print_json({"jobs": done.jobs, "job_dir": str(launch.folder(store)), "results": done.results, "records": str(store)})
        return
    print_submitted(done.jobs, str(launch.folder(store)), launch.wait)
    for result in done.results:
        if result.get("test"):
            out.print(f"{escape(result['model'])} seed {result['seed']}: test J {result['test']['jaccard']:.4f}, "
                      f"F {result['test']['f_score']:.4f} (records in {escape(str(store))})", highlight=False, soft_wrap=True)


def jobs(
    job_dir: Annotated[Optional[str], typer.Argument(metavar="JOB_DIR", help="A grid's --job-dir (default: runs/jobs, beside the "
                                                                             "default record store).")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait, with a progress bar, until every job is done or failed.")] = False,
    cancel: Annotated[bool, typer.Option("--cancel", help="Stop every job still pending or running (local: SIGINT to its controller, "
                                                          "then SIGKILL to its task; Slurm: scancel).")] = False,
    json_out: JsonFlag = False,
) -> None:
    """The jobs of a grid: variant, seed, state, attempts, the last log line and where the logs are.

    States: pending (submitted, not started), running, requeued (timed out or preempted, resuming from
    its checkpoint), done, failed (with the reason in one line). Local jobs outlive the command that
    launched them: --cancel stops them (a finished run's records stay; a stopped one resumes from its
    last checkpoint when the grid is launched again).

    Examples:

        avskit jobs runs/jobs

        avskit jobs /shared/avskit/jobs --wait

        avskit jobs runs/jobs --cancel

        avskit jobs runs/jobs --json
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from avsbench_kit.results import default_store
    from avskit.analyses.jobs import cancel as cancel_jobs
    from avskit.analyses.jobs import grid_jobs, wait_for

    folder = Path(job_dir) if job_dir else default_store().resolve().parent / "jobs"
    rows = grid_jobs(folder)
    if cancel:
        stopped = cancel_jobs(folder)
        if json_out:
            print_json({"job_dir": str(folder), "cancelled": stopped})
            return
        out.print(f"stopped {len(stopped)} job(s)" + (": " + ", ".join(f"{escape(r['model'])} seed {r['seed']} (job {r['job_id']})"
                                                                     for r in stopped) if stopped else ""), highlight=False, soft_wrap=True)
        return
    if wait:
        with Progress(TextColumn("jobs"), BarColumn(), MofNCompleteColumn(), console=err, transient=True) as bar:
            task = bar.add_task("jobs", total=len(rows))
            rows = wait_for(folder, on_update=lambda done, total: bar.update(task, completed=done, total=total))
    if json_out:
        print_json({"job_dir": str(folder), "jobs": rows})
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


def eval_command(
    model: Annotated[str, typer.Argument(help="A zoo model or a label.")],
    set_: SetOption = None,
    checkpoint: Annotated[Optional[str], typer.Option(metavar="FILE", help="A checkpoint from avskit train; without one the initial weights are "
                                                                           "evaluated.")] = None,
    data: DataOption = "synthetic:s4",
    subset: SubsetOption = None,
    size: Annotated[Optional[int], typer.Option(help="Frame height and width (default: the checkpoint's run's, else 224, the "
                                                     "releases').")] = None,
    videos: Annotated[Optional[int], typer.Option(help="Synthetic videos (default: the checkpoint's run's, else the recipe's).")] = None,
    audio_blind: AudioBlind = False,
    device: DeviceOption = "cpu",
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
    from avskit.analyses.training import eval_data, run_evaluation, zoo_only

    spec = spec_from_text(model, parse_set_options(set_))
    zoo_only(spec)
    if checkpoint is None and not spec.weights:
        err.print("[yellow]note:[/] no --checkpoint or --set weights=FILE: evaluating the initial (untrained) "
                  "weights", highlight=False, soft_wrap=True)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(f"building {escape(spec.name)}" + (" and loading its weights" if spec.weights else ""), total=None)
        report = run_evaluation(spec, eval_data(data, subset, size, videos, checkpoint), checkpoint, audio_blind,
                                Path(results) if results else None, device=device,
                                on_eval=lambda i, n: bar.update(task, description="evaluating (test batches)", completed=i, total=n))
    if json_out:
        print_json(report)
        return
    t = report["test"]
    what = "initial weights" if report["initial_weights"] else escape(str(checkpoint or spec.weights))
    first = "mIoU" if report["subset"] == "avss" else "J"
    out.print(f"{escape(report['model'])} ({what}) on {escape(report['data'])} {report['subset']} test: "
              f"{first} {t['jaccard']:.4f}, F {t['f_score']:.4f} (measured)", highlight=False, soft_wrap=True)
    if report.get("weights_file"):
        w = report["weights_file"]
        out.print(f"weights sha256 {w['sha256']}; {escape(weights_summary(w))}", highlight=False, soft_wrap=True)
