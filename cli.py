"""``avskit``: the command line. It assembles the commands (``avskit/commands/``, one module per
group: they declare options, call ``analyses`` and print) and turns user mistakes into one line on
stderr with exit status 2."""

from __future__ import annotations

import os
import sys
import warnings

import typer
from rich.markup import escape

from avsbench_kit.errors import UserError
from avskit.commands import compare, data, dissipation, pathways, profile, report, training, zoo
from avskit.commands.console import err

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
COMMANDS = {  # name: function, in the order `avskit --help` lists them
    "models": zoo.models, "params": zoo.params, "demo": zoo.demo, "profile": profile.profile, "dissipation": dissipation.dissipation,
    "pathways": pathways.pathways,
    "synth": data.synth, "train": training.train_command, "jobs": training.jobs, "eval": training.eval_command,
    "compare": compare.compare, "report": report.report, "gpu-bench": report.gpu_bench,
}
for _name, _command in COMMANDS.items():
    app.command(_name)(_command)


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
