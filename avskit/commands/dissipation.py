"""`avskit dissipation`: what the attention of one frame, or of many test frames, does."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from avsbench_kit.errors import UserError
from avskit.commands.console import bar_columns, err, out, print_json, short_reason
from avskit.commands.options import JsonFlag, ProbeVideosOption, ResultsOption, SetOption


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
    size: Annotated[int, typer.Option(min=32, help="Frame height and width (a multiple of 32): the one frame's (resized to it), or "
                                                   "with --data every frame's.")] = 224,
    videos: ProbeVideosOption = 200,
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
    from avsbench_kit.recipe import check_size

    check_size(size)
    sample = load_sample(image, audio, size)
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
        print_json(report)
        return
    table = Table(title=f"attention sites of {escape(spec.label)}")
    table.add_column("site", overflow="fold")
    for col in ("call", "kind", "queries", "keys", "entropy", "diversity", "dissipated"):
        table.add_column(col, justify="left" if col in ("kind", "dissipated") else "right", no_wrap=True)
    for row in sites:
        fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
        table.add_row(escape(row["site"]), str(row["call"]), row["kind"], str(row["n_queries"]), str(row["n_keys"]), fmt(row["entropy_norm"]),
                      fmt(row["row_diversity"]), f"[bold red]yes[/] ({short_reason(row['reason'])})" if row["dissipated"] else "no")
    out.print(table)
    flagged = sum(row["dissipated"] for row in sites)
    out.print(f"{flagged} of {len(sites)} attention calls dissipated; input: {escape(used)}", highlight=False, soft_wrap=True)
    for path in figures:
        out.print(f"wrote {escape(path)}", highlight=False, soft_wrap=True)


def _dissipation_frames(spec, data: str, subset: str | None, frames: int, size: int, videos: int, results: str | None,
                        json_out: bool) -> None:
    """`avskit dissipation MODEL --data ...`: the probe over many test frames, with localisation."""
    from rich.progress import Progress

    from avsbench_kit.results import default_store
    from avskit.analyses.dissipation import probe_dataset

    store = Path(results) if results else default_store()
    with Progress(*bar_columns(), console=err, transient=True) as bar:
        task = bar.add_task(f"probing {escape(spec.label)}", total=None)
        report = probe_dataset(spec, data, subset, frames, size, videos, store, on_start=lambda n: bar.update(task, total=n),
                               on_frame=lambda i, n: bar.update(task, completed=i))
    name = report["subset"]
    if json_out:
        print_json(report)
        return
    table = Table(title=f"attention of {escape(spec.label)} over {report['frames']} test frames of {escape(data)} ({name})")
    table.add_column("site (call)", overflow="fold", min_width=24)
    for col in ("kind", "dissipated", "diversity", "energy ratio", "ROC-AUC", "cIoU (area)", "selected query", "degenerate"):
        table.add_column(col, justify="left" if col == "kind" else "right")
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    for row in report["sites"]:
        loc = row["localisation"]
        if isinstance(loc, dict):
            mean, er = loc["mean"], loc["mean"]["energy_ratio"]
            half = None if er["ci95"][1] is None else er["ci95"][1] - er["mean"]
            chosen = loc.get("selected")
            selected = f"#{chosen['query']}: AUC {fmt(chosen['roc_auc']['mean'])}" if chosen else ""
            cells = (fmt(er["mean"]) + (f" ±{half:.3f}" if half is not None else ""), fmt(mean["roc_auc"]["mean"]),
                     fmt((mean.get("ciou_area") or {}).get("mean")), selected, f"{mean['degenerate']}/{mean['n']}")
        else:
            cells = (loc or "", "", "", "", "")
        table.add_row(escape(row["site"]) + (f" ({row['call']})" if row["call"] else ""), row["kind"], f"{row['dissipated_share']:.0%}",
                      fmt(row["row_diversity"]["mean"]), *cells)
    out.print(table)
    out.print("energy ratio (chance 1), ROC-AUC (chance 0.5) and area-matched cIoU of the mean over a site's maps, ± the 95% CI "
              "half-width over the frames (Student's t); for maps normalised across queries that mean leans toward chance by "
              "construction, so 'selected query' is the one query chosen on the val split's frames first (highest ROC-AUC there), "
              "scored here on the test frames; --json has every statistic; records in "
              f"{escape(str(store))}", highlight=False, soft_wrap=True)
