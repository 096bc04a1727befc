"""``avskit``: the command line. Parses options, calls analyses, prints; no logic of its own."""

from __future__ import annotations

import json
import sys
import warnings
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from avsbench_kit.errors import UserError

app = typer.Typer(
    help="AVESFormer and AVS baselines in the real-time setting (one frame, T=1): zoo, parameters, profiling.",
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
    typer.Option("--set", metavar="KEY=VALUE", help="Override one spec field (repeatable), e.g. --set fusion=tpavi --set stages=TTT."),
]
SizeOption = Annotated[int, typer.Option(min=32, help="Input height and width for the forward pass (a multiple of 32).")]


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")


def _millions(n: int | float | None) -> str:
    return "" if n is None else f"{n / 1e6:,.2f}M"


@app.command()
def models(json_out: JsonFlag = False) -> None:
    """List the zoo's models and the variant axes every ablation is made of.

    Examples:

        avskit models

        avskit models --json
    """
    from analyses.zoo import overview

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
    """
    from analyses.zoo import parameter_report
    from avsbench_kit.spec import make_spec, parse_set_options

    spec = make_spec(model, parse_set_options(set_))
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
    out.print(f"reported ({rep['source']}): {rep['params_m']}M" if rep else "reported: the paper gives no figure for this variant")
    if "released" in report:
        r = report["released"]
        unused = ", ".join(f"{k} {v:,}" for k, v in r["unused"].items())
        out.print(f"released code declares {r['declared']:,}; unused by its forward: {unused}; so live {r['live']:,}")


@app.command()
def demo(size: SizeOption = 224, json_out: JsonFlag = False) -> None:
    """The main job on built-in defaults: every zoo model's parameters and a forward pass on synthetic inputs.

    Examples:

        avskit demo

        avskit demo --size 320 --json
    """
    from analyses.zoo import demo as run_demo

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
    out.print("first forward = one cold pass, not a latency measurement; reported = the paper's Table 3, not measured here")


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


if __name__ == "__main__":
    sys.exit(main())
