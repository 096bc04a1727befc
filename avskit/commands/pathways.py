"""`avskit pathways`: which of a model's audio paths carries the audio to the mask, measured by patching."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from avskit.commands.console import bar_columns, err, out, print_json
from avskit.commands.options import DataOption, JsonFlag, ProbeVideosOption, ResultsOption, SetOption, SubsetOption


def pathways(
    model: Annotated[str, typer.Argument(help="A zoo model, a label like 'avesformer-r18[fusion=tpavi]', or FILE.py:factory whose "
                                              "module declares `audio_paths`.")],
    set_: SetOption = None,
    data: DataOption = "synthetic:s4",
    subset: SubsetOption = None,
    frames: Annotated[int, typer.Option(min=2, help="Test frames, spread evenly over the split; the swap donors are drawn among them.")] = 16,
    size: Annotated[int, typer.Option(min=32, help="Frame height and width (a multiple of 32); a checkpoint's training size for "
                                                   "trained maps (the recipe's is 64).")] = 224,
    videos: ProbeVideosOption = 200,
    results: ResultsOption = None,
    json_out: JsonFlag = False,
) -> None:
    """Which path carries the audio to the mask? Each declared audio path patched, frame by frame.

    A model declares its audio paths: the tensors through which audio-derived information enters
    the rest of the network (for AVESFormer: the queries as the decoder's fusion sees them, the
    raw audio token as the decoder sees it, the queries as the mask head sees them). For each test
    frame and each path, the output is recomputed with only that path's tensor taken from a run on
    another audio: `swap` (a frame sounding another class) or `zero` (silence, the audio-blind
    input). Per path: J patched, the drop from the clean J and its 95% CI over the frames.
    Patching every path at once must reproduce swapping the whole audio; when it does not, a route
    is missing from the declaration and the completeness check says so.

    Examples:

        avskit pathways avesformer-r18 --data synthetic:s4 --frames 16 --json

        avskit pathways avesformer-r18 --set weights=runs/ckpt/last.pt --size 64

        avskit pathways avsbench-r50 --set weights=S4.pth --set vggish_weights=vggish.pth --data SYNTH_ROOT --subset s4 --frames 8
    """
    from rich.progress import Progress

    from avsbench_kit.results import default_store
    from avsbench_kit.spec import parse_set_options, spec_from_text
    from avskit.analyses.pathways import probe_pathways

    spec = spec_from_text(model, parse_set_options(set_))
    store = Path(results) if results else default_store()
    with Progress(*bar_columns(), console=err, transient=True) as bar:
        task = bar.add_task(f"patching {escape(spec.label)}", total=None)
        report = probe_pathways(spec, data, subset, frames, size, videos, store, on_start=lambda n: bar.update(task, total=n),
                                on_frame=lambda i, n: bar.update(task, completed=i))
    if json_out:
        print_json(report)
        return
    clean = report["clean_jaccard"]
    table = Table(title=f"audio paths of {escape(spec.label)} over {report['frames']} test frames of {escape(data)} "
                        f"(clean J {clean['mean']:.3f})")
    for col in ("path", "mode", "J patched", "drop", "95% CI of the drop"):
        table.add_column(col, justify="left" if col in ("path", "mode") else "right", overflow="fold")
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    for row in report["whole_audio"] + report["paths"]:
        low, high = row["drop_ci95"]
        table.add_row(escape(row["path"]), row["mode"], fmt(row["jaccard"]), fmt(row["drop"]), f"[{fmt(low)}, {fmt(high)}]")
    out.print(table)
    for mode, check in report["completeness"].items():
        verdict = "OK" if check["ok"] else "[bold red]INCOMPLETE[/]: the declared paths miss a route from the audio to the mask"
        done = {"swap": "swapped", "zero": "zeroed"}[mode]
        out.print(f"completeness ({mode}): every path patched vs the whole audio {done}: max abs diff {check['max_abs_diff']:.2e}, "
                  f"{verdict}", highlight=False, soft_wrap=True)
    out.print(f"swap donors: {escape(report['donor_rule'])}; records in {escape(str(store))}", highlight=False, soft_wrap=True)
