"""Saving a figure: PNG and SVG (or PDF) with its provenance in a footer and the metadata, byte for
byte reproducible, written atomically. Every figure of the project is saved here."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from avsbench_kit.errors import UserError

PLOT_FORMATS = ("png", "svg", "pdf")


def _short_commits(commits: str, most: int = 3) -> str:
    """A footer's commits: short hashes, and past ``most`` a count (the metadata keeps the full list:
    a report's store gathers records from many commits, and every figure's footer would list them all)."""
    short = [c[:7] + ("+dirty" if c.endswith("+dirty") else "") if len(c.split("+")[0]) == 40 else c
             for c in (c.strip() for c in commits.split(",")) if c]
    if len(short) <= most:
        return ", ".join(short)
    return f"{len(short)} commits ({', '.join(short[:most])}, ...; all of them in the file's metadata)"


def pyplot():
    """matplotlib's pyplot on the non-interactive Agg backend: every figure of the project is drawn through it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, stem: Path, provenance: dict, formats: tuple[str, ...] = ("png", "svg")) -> list[str]:
    """PNG and SVG (or ``formats``) with provenance in a footer and the metadata, byte-for-byte
    reproducible (no timestamps, fixed SVG ids); written to temporary names, then renamed."""
    import matplotlib

    plt = pyplot()
    shown = {k: provenance[k] for k in ("commit", "torch", "device", "base_model", "weights", "input") if provenance.get(k)}
    if "commit" in shown:
        shown["commit"] = _short_commits(str(shown["commit"]))
    footer = " | ".join(f"{k}: {v}" for k, v in shown.items())
    width, height = fig.get_size_inches()
    # wrapped here, so the footer's height is known and the axes are laid out above it (6 pt text:
    # about 19 characters and 0.1 inch a line); margins in inches, not fractions
    lines = textwrap.wrap(footer, max(40, int(width * 19))) or [""]
    fig.text(0.01, 0.005, "\n".join(lines), fontsize=6, color="0.35", ha="left", va="bottom")
    fig.tight_layout(rect=(0, min(0.5, (0.04 + 0.1 * len(lines)) / height), 1, 1 - min(0.08, 0.6 / height)))
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    description = json.dumps(provenance, sort_keys=True)
    try:
        for ext in formats:
            final = stem.with_name(stem.name + f".{ext}")
            tmp = final.with_name(f".{final.name}.partial")
            metadata = {"Title": stem.name, "Description": description} if ext != "pdf" else {"Title": stem.name}
            if ext in ("svg", "pdf"):
                metadata["CreationDate" if ext == "pdf" else "Date"] = None
            with matplotlib.rc_context({"svg.hashsalt": "avskit"}):
                fig.savefig(tmp, format=ext, dpi=110, metadata=metadata)
            tmp.replace(final)
            written.append(str(final))
    finally:
        plt.close(fig)
    return written


def save_plot(fig, target: str, provenance: dict) -> str:
    """Save ``fig`` to exactly ``target`` (.png, .svg or .pdf), atomically; UserError if it cannot be written."""
    path = Path(target)
    ext = path.suffix.lower().lstrip(".")
    try:
        return save_figure(fig, path.with_suffix(""), provenance, formats=(ext,))[0]
    except OSError as exc:
        raise UserError(f"--plot: cannot write {target}: {exc.strerror or exc}") from None
