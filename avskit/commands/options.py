"""Every option more than one command takes, declared once: Typer ``Annotated`` aliases, and two
decorators that give a command a whole group of options as one argument (the launcher's, and the
training recipe's)."""

from __future__ import annotations

import functools
import inspect
from typing import Annotated, Any, Callable, Optional

import typer

from avsbench_kit.recipe import DEFAULT, PRESETS, preset

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout instead of a table.")]
SetOption = Annotated[
    Optional[list[str]],
    typer.Option("--set", metavar="KEY=VALUE", help="Override one spec field (repeatable), e.g. --set fusion=tpavi --set stages=TTT; --set "
                                                    "weights=FILE loads the whole model (an avskit checkpoint or a released "
                                                    "AVSegFormer/AVSBench/ECMVAE/CATR checkpoint)."),
]
SizeOption = Annotated[int, typer.Option(min=32, help="Input height and width for the forward pass (a multiple of 32).")]
DataOption = Annotated[str, typer.Option(help="synthetic:s4, synthetic:ms3, synthetic:avss, or the root of an AVSBench subset.")]
SubsetOption = Annotated[Optional[str], typer.Option(help="s4, ms3 or avss: which layout a dataset root has (implied by synthetic:NAME).")]
AudioBlind = Annotated[bool, typer.Option("--audio-blind", help="Replace the audio by zeros: the control.")]
ResultsOption = Annotated[Optional[str], typer.Option(metavar="PATH", help="Record store (default: $AVSKIT_RESULTS or runs/records.jsonl).")]
DeviceOption = Annotated[str, typer.Option(help="cpu or cuda.")]
SeedsOption = Annotated[str, typer.Option(metavar="SEEDS", help="With --train: train each model once per seed, e.g. 0,1,2; J and F "
                                                                 "are shown as mean and sd over them.")]
ProbeVideosOption = Annotated[int, typer.Option("--videos", min=7, help="With --data synthetic:*: videos in the benchmark "
                                                                                  "(70/15/15 train/val/test).")]
ThreadsOption = Annotated[Optional[int], typer.Option(help="CPU threads (torch.set_num_threads); default: torch's.")]


def with_options(params: dict[str, tuple[Any, Any]], name: str, collect: Callable[[dict[str, Any]], Any]):
    """A decorator that adds ``params`` (name: (annotation, default)) to a command's options and hands
    the command ``collect(values)`` as its argument ``name`` instead."""

    def decorate(command):
        signature = inspect.signature(command, eval_str=True)  # Typer reads the annotations of the signature given
        kept = [p for p in signature.parameters.values() if p.name != name]
        added = [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
                 for k, (annotation, default) in params.items()]

        @functools.wraps(command)
        def run(**kwargs):
            given = {k: kwargs.pop(k) for k in params}
            return command(**kwargs, **{name: collect({**given, "_command": kwargs})})

        run.__signature__ = signature.replace(parameters=[*[p for p in kept if p.kind != p.KEYWORD_ONLY], *added,
                                                          *[p for p in kept if p.kind == p.KEYWORD_ONLY]])
        run.__annotations__ = {p.name: p.annotation for p in run.__signature__.parameters.values()}
        return run

    return decorate


# ---- the launcher: where training runs go (analyses/launch.py) -----------------------------------

_LAUNCH = "Launcher (where training runs go: analyses/launch.py)"
LAUNCH_PARAMS = {  # the flags of DETR's run_with_submitit.py and Hydra's launcher
    "launcher": (Annotated[str, typer.Option(help="inline (here, one after another), local (one process per run on this machine, "
                                                  "each on its own GPU where there are GPUs), slurm (one job array through submitit), "
                                                  "debug (submitit's job path in this process).", rich_help_panel=_LAUNCH)], "inline"),
    "job_dir": (Annotated[Optional[str], typer.Option(metavar="DIR", help="Jobs' logs and states (default: beside the record store, "
                                                                          "STORE_FOLDER/jobs); on a cluster, a shared filesystem.",
                                                      rich_help_panel=_LAUNCH)], None),
    "partition": (Annotated[Optional[str], typer.Option(help="Slurm partition.", rich_help_panel=_LAUNCH)], None),
    "gpus_per_node": (Annotated[int, typer.Option(help="GPUs per job (one task per GPU, DDP across them).", rich_help_panel=_LAUNCH)], 0),
    "nodes": (Annotated[int, typer.Option(help="Nodes per job (Slurm).", rich_help_panel=_LAUNCH)], 1),
    "cpus_per_task": (Annotated[Optional[int], typer.Option(help="CPUs per task (Slurm).", rich_help_panel=_LAUNCH)], None),
    "timeout_min": (Annotated[int, typer.Option(help="A job's time limit in minutes; the warning signal comes 2 minutes before it.",
                                                rich_help_panel=_LAUNCH)], 24 * 60),
    "array_parallelism": (Annotated[int, typer.Option(help="At most this many jobs of the array at once (Slurm).", rich_help_panel=_LAUNCH)], 256),
    "max_requeue": (Annotated[int, typer.Option(help="Requeue a timed-out or preempted job at most this often.", rich_help_panel=_LAUNCH)], 3),
    "account": (Annotated[Optional[str], typer.Option(help="Slurm account.", rich_help_panel=_LAUNCH)], None),
    "qos": (Annotated[Optional[str], typer.Option(help="Slurm quality of service.", rich_help_panel=_LAUNCH)], None),
    "constraint": (Annotated[Optional[str], typer.Option(help="Slurm node constraint (e.g. a100).", rich_help_panel=_LAUNCH)], None),
    "slurm_arg": (Annotated[Optional[list[str]], typer.Option(metavar="KEY=VALUE", help="Any other sbatch option (repeatable), e.g. "
                                                                                        "--slurm-arg mem=64G.", rich_help_panel=_LAUNCH)], None),
    "local_jobs": (Annotated[Optional[int], typer.Option(help="local: at most N jobs at once, the rest queued (default: the cores "
                                                              "divided by --job-threads, at least 1).", rich_help_panel=_LAUNCH)], None),
    "job_threads": (Annotated[Optional[int], typer.Option(help="Each job's torch threads and OMP_NUM_THREADS (default: local, the cores "
                                                               "divided by --local-jobs; Slurm, --cpus-per-task).", rich_help_panel=_LAUNCH)], None),
    "no_wait": (Annotated[bool, typer.Option("--no-wait", help="Submit and return; `avskit jobs DIR` follows the grid.",
                                             rich_help_panel=_LAUNCH)], False),
}


def _launch_options(given: dict[str, Any]):
    from avskit.analyses.launch import LaunchOptions

    given = {k: v for k, v in given.items() if k != "_command"}
    slurm_args, no_wait = given.pop("slurm_arg"), given.pop("no_wait")
    launch = LaunchOptions(**given, slurm_args=tuple(slurm_args or ()), wait=not no_wait)
    launch.check()
    return launch


with_launcher = with_options(LAUNCH_PARAMS, "launch", _launch_options)


# ---- the training recipe (avsbench_kit/recipe.py) ------------------------------------------------

_RECIPE = "Training recipe (default: avsbench_kit/recipe.py, docs/training.md)"


def recipe_params(size_flag: str = "--size", warmup_flag: str = "--warmup") -> dict[str, tuple[Any, Any]]:
    """The recipe's flags: the same in every command that trains, except two names that ``compare``
    and ``report`` use for their latency runs (``--size``, ``--warmup``), where these take a
    ``--train-`` prefix. Not given, a flag takes the preset's value."""
    d = DEFAULT
    params = {  # python names prefixed (compare has its own --size and --warmup); the recipe's field names after it
        "recipe_name": (Annotated[str, typer.Option("--recipe", metavar="NAME", help=f"The preset the other flags change: "
                                                    f"{', '.join(PRESETS)}.", rich_help_panel=_RECIPE)], "default"),
        "recipe_steps": (Annotated[Optional[int], typer.Option("--steps", help=f"Optimizer steps [default: {d.steps}].",
                                                               rich_help_panel=_RECIPE)], None),
        "recipe_batch": (Annotated[Optional[int], typer.Option("--batch", help=f"Frames per step [default: {d.batch}].",
                                                               rich_help_panel=_RECIPE)], None),
        "recipe_lr": (Annotated[Optional[float], typer.Option("--lr", help=f"AdamW learning rate, polynomial decay (power 0.9) "
                                                              f"[default: {d.lr:g}].", rich_help_panel=_RECIPE)], None),
        "recipe_warmup": (Annotated[Optional[int], typer.Option(warmup_flag, help=f"Linear learning-rate warmup steps before the decay "
                                                                f"[default: {d.warmup}].", rich_help_panel=_RECIPE)], None),
        "recipe_val_every": (Annotated[Optional[int], typer.Option("--val-every", help=f"The validation curve: J on the val split every N "
                                                                   f"steps and at the end (synthetic: its first 40 videos; 0: none) "
                                                                   f"[default: {d.val_every}].", rich_help_panel=_RECIPE)], None),
        "recipe_size": (Annotated[Optional[int], typer.Option(size_flag, help=f"Frame height and width for training (the paper's: 224) "
                                                              f"[default: {d.size}].", rich_help_panel=_RECIPE)], None),
        "recipe_videos": (Annotated[Optional[int], typer.Option("--videos", help=f"Synthetic videos to make (70/15/15 train/val/test) "
                                                                f"[default: {d.videos}].", rich_help_panel=_RECIPE)], None),
        "recipe_supervise_attention": (Annotated[Optional[str], typer.Option("--supervise-attention", metavar="SITE[:WEIGHT[:QUERY]]",
                                                                             help="The localisation's positive control: train that site's "
                                                                                  "map (query 0 unless named) toward the sounding object's "
                                                                                  "mask, Dice loss times WEIGHT (1), e.g. "
                                                                                  "'decoder.stages.2.layers.1.fusion*'.",
                                                                             rich_help_panel=_RECIPE)], None),
    }
    return params


def _recipe(given: dict[str, Any], quick_alias: bool = False):
    from avsbench_kit.errors import UserError

    command = given.pop("_command")
    name = given.pop("recipe_name")
    given = {k.removeprefix("recipe_"): v for k, v in given.items()}
    if command.get("epochs") is not None and given["steps"] is not None:  # `avskit train`
        raise UserError("give --steps or --epochs, not both")
    if quick_alias and command.get("quick"):  # `avskit train --quick` is `--recipe quick`
        name = "quick"
    return preset(name, **given)


def with_recipe(size_flag: str = "--size", warmup_flag: str = "--warmup", quick_alias: bool = False):
    """Give a command the recipe's flags; it receives them as one ``recipe: Recipe``. ``quick_alias``:
    the command's own ``--quick`` means ``--recipe quick``."""
    return with_options(recipe_params(size_flag, warmup_flag), "recipe", functools.partial(_recipe, quick_alias=quick_alias))
