"""`avskit synth`: the synthetic benchmark written in the AVSBench layout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from avsbench_kit.errors import UserError
from avskit.commands.console import err, out, print_json
from avskit.commands.options import JsonFlag


def synth(
    subset: Annotated[str, typer.Option(help="s4 (one sounding object), ms3 (two or three) or avss (semantic masks).")] = "s4",
    out_dir: Annotated[str, typer.Option("--out", metavar="DIR", help="A new (or empty) folder for the dataset root.")] = ...,
    videos: Annotated[int, typer.Option(help="Videos of 5 frames; split 70/15/15 into train/val/test.")] = 20,
    seed: Annotated[int, typer.Option(help="Everything is deterministic from the seed and the video index.")] = 0,
    size: Annotated[int, typer.Option(help="Frame height and width.")] = 224,
    json_out: JsonFlag = False,
) -> None:
    """Write the synthetic benchmark in the AVSBench layout, readable like the real dataset.

    Each frame shows 2-5 shapes of 6 classes (shape, colour and texture per class) on a textured
    background; the audio mixes the sounding objects' class signatures (harmonic tones with a
    class-specific pitch, timbre and modulation) and noise. Which objects sound does not depend on
    how they look, so only the audio can tell.

    Examples:

        avskit synth --subset s4 --out data/synthetic-s4

        avskit synth --subset avss --out data/synthetic-avss --videos 100 --json
    """
    from avsbench_kit.data.synthetic import SUBSETS, write_layout

    if subset not in SUBSETS:
        raise UserError(f"--subset {subset!r} is not accepted; choose one of: {', '.join(SUBSETS)}")
    if videos < 1 or size < 32 or size % 32:
        raise UserError("--videos must be at least 1 and --size a multiple of 32 (e.g. 224)")
    target = Path(out_dir)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UserError(f"--out {out_dir} exists and is not an empty folder; choose a new one")
    from rich.progress import Progress

    with Progress(console=err, transient=True) as bar:
        task = bar.add_task(f"writing synthetic {subset}", total=videos)
        info = write_layout(subset, target, videos, seed, size, progress=lambda n: bar.update(task, completed=n))
    if json_out:
        print_json(info)
        return
    out.print(f"wrote {videos} synthetic {subset} videos to {escape(str(target))} "
              f"(train {info['splits']['train']}, val {info['splits']['val']}, test {info['splits']['test']})", highlight=False, soft_wrap=True)
