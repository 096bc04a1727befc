"""`avskit models`, `params` and `demo`: the zoo, its parameters, one forward pass of each."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from avskit.commands.console import err, millions, out, print_json, weights_summary
from avskit.commands.options import JsonFlag, SetOption, SizeOption


def models(json_out: JsonFlag = False) -> None:
    """List the zoo's models and the variant axes every ablation is made of.

    Examples:

        avskit models

        avskit models --json
    """
    from avskit.analyses.zoo import overview

    info = overview()
    if json_out:
        print_json(info)
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
        print_json(report)
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
        out.print(f"weights {escape(w['path'])} (sha256 {w['sha256'][:16]}...), recognised as {escape(weights_summary(w))}",
                  highlight=False, soft_wrap=True)
    if "released" in report:
        r = report["released"]
        unused = ", ".join(f"{k} {v:,}" for k, v in r["unused"].items())
        out.print(f"released code declares {r['declared']:,}; unused by its forward: {unused}; so live {r['live']:,}")


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
        print_json({"size": size, "models": rows})
        return
    table = Table(title=f"avskit zoo on synthetic inputs ({size}x{size}, batch 1, CPU, random weights)")
    for col in ("model", "declared", "live", "trainable", "reported (paper)", "output", "first forward"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for r in rows:
        table.add_row(
            r["model"], millions(r["declared"]), millions(r["live"]), millions(r["trainable"]),
            f"{r['reported_params_m']}M" if r["reported_params_m"] else "", "x".join(map(str, r["output_shape"])),
            f"{r['first_forward_s'] * 1000:.0f} ms",
        )
    out.print(table)
    fixed = sorted({r["size"] for r in rows} - {size})
    if fixed:
        out.print(f"ran at {', '.join(map(str, fixed))}x{', '.join(map(str, fixed))}: "
                  + ", ".join(r["model"] for r in rows if r["size"] != size) + " (built for that frame size only)")
    out.print("first forward = one cold pass, not a latency measurement; reported = the paper's Table 3, not measured here")
