"""Figures 4a, 7, 8 and 9: the attention maps ``dissipation.collect_maps`` captured, drawn over the
frame. Rendering only: the same data gives the same bytes."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from avskit.analyses.figure_io import pyplot, save_figure

CMAP = "viridis"  # perceptually uniform: equal steps look equal (jet made flat maps look sharp)
KEY = "colour (viridis) within each panel: dark = its minimum, yellow = its maximum, range printed on it; dashed: the sounding object"

MAP_FIGURES = {"fig4a": "fig4a_query_attention", "fig8": "fig8_fusion_maps", "fig9": "fig9_pqg_queries", "fig7": "fig7_decoder_layers"}


def render_maps(data: dict[str, Any], rgb: np.ndarray, out: Path, provenance: dict[str, Any], mask: np.ndarray | None = None) -> list[str]:
    """The four attention figures from ``collect_maps`` data: the same data, the same bytes. Maps from
    trained checkpoints name them (label, seed, steps, J, SHA-256) in the footer and the metadata;
    maps from random weights say "untrained" in their titles."""
    provenance = {"tool": "avskit", "base_model": data["base_model"], "input": data["input"], "weights": data["weights"], **provenance}
    trained = "checkpoints" in data
    written = []
    for key, draw in (("fig4a", _fig4a), ("fig8", _fig8), ("fig9", _fig9), ("fig7", _fig7)):
        sources = data.get("sources", {}).get(key)
        shown = {**provenance, "panel weights": sources} if sources is not None else dict(provenance)
        if trained:
            used = data["checkpoints"].get(key, [])
            shown["checkpoints"] = used
            shown["weights"] = ("trained: " + "; ".join(_checkpoint_line(c) for c in used)) if used else "untrained (random weights): no checkpoint"
        fig = draw(data[key], rgb, mask) if key != "fig9" else draw(data[key], rgb, mask, data.get("fig9_scores"))
        _state(fig, trained, data.get("sources", {}).get(key), data.get("checkpoints", {}).get(key, []))
        written += save_figure(fig, out / MAP_FIGURES[key], shown)
    return written


def _checkpoint_line(c: dict[str, Any]) -> str:
    j = f", J {c['jaccard']:.3f}" if c.get("jaccard") is not None else ""
    verdict = f", {c['verdict']}" if c.get("verdict") else ""
    return f"{c['label']} (seed {c.get('seed', '?')}, {c.get('steps', '?')} steps{j}{verdict}, sha256 {str(c.get('sha256', ''))[:12]})"


def _state(fig, trained: bool, sources, checkpoints: list[dict[str, Any]] = ()) -> None:
    """A line under the figure's title: whether its maps come from trained models, and which of those
    models had not converged (their maps are a training budget's, not the architecture's)."""
    kinds = set(sources if isinstance(sources, list) else [sources or "random"])
    kinds = {k.rsplit(", ", 1)[-1] for k in kinds}
    if kinds <= {"random", "untrained"}:
        words = "UNTRAINED: random weights, so these maps show the architecture's structure, not what a model learns"
    elif trained:
        words = "trained checkpoints (synthetic S4)" + ("; panels marked [untrained] have none yet: random weights" if "untrained" in kinds else "")
        unconverged = [c for c in checkpoints if c.get("verdict") and (not c["verdict"].startswith("learned") or "still rising" in c["verdict"])]
        if unconverged:  # validation J still rising at the budget (or never learned): the maps are that budget's, not the architecture's
            names = [(c["label"].partition("[")[2].rstrip("]") or "base") + (f" (J {c['jaccard']:.2f})" if c.get("jaccard") is not None else "")
                     for c in unconverged]
            learned = all(c["verdict"].startswith("learned") for c in unconverged)
            head = "learned (J >= 0.6) but validation J STILL RISING at the budget" if learned else "NOT CONVERGED"
            words += "\n" + "\n".join(textwrap.wrap(f"{head}: " + ", ".join(names), 150))
    else:
        words = "panels marked [weights] from the given weights, the others random"
    title = fig.get_suptitle()
    fig.suptitle(f"{title}\n{words}", fontsize=10)


def _scores_text(scores: dict[str, Any] | None) -> str:
    """A map's localisation scores in a panel title (energy ratio: chance reads 1)."""
    if not scores:
        return ""
    if scores.get("degenerate"):
        return "\nconstant map: localises nothing"
    auc = "n/a" if scores.get("roc_auc") is None else f"{scores['roc_auc']:.2f}"
    return f"\nenergy x{scores['energy_ratio']:.2f}, cIoU {scores['ciou']:.2f}, ROC-AUC {auc}"


def _overlay(ax, rgb: np.ndarray, heat, title: str, mask: np.ndarray | None = None) -> None:
    """The map over the frame in a perceptually uniform colour map (viridis), scaled within the panel
    (its range printed on it), the sounding object outlined; a constant map is a flat mid-tone said to
    be uniform, and a site without a spatial map shows the frame alone."""
    ax.imshow(rgb)
    if heat is None:
        ax.text(0.5, 0.5, "no spatial map", ha="center", va="center", transform=ax.transAxes, color="white", fontsize=9,
                bbox={"facecolor": "0.2", "alpha": 0.7, "edgecolor": "none"})
    else:
        heat = np.asarray(heat, dtype=np.float32)
        up = F.interpolate(torch.from_numpy(heat)[None, None], size=rgb.shape[:2], mode="bilinear", align_corners=False)[0, 0].numpy()
        low, high = float(up.min()), float(up.max())
        if high - low > 1e-6 * max(abs(high), 1e-12):
            ax.imshow((up - low) / (high - low), cmap=CMAP, alpha=0.55, vmin=0, vmax=1)
            ax.text(0.02, 0.02, f"range {low:.2g} to {high:.2g}", transform=ax.transAxes, fontsize=6.5, color="white",
                    bbox={"facecolor": "0.1", "alpha": 0.6, "edgecolor": "none", "pad": 1.5})
        else:
            ax.imshow(np.full(up.shape, 0.5), cmap=CMAP, alpha=0.55, vmin=0, vmax=1)
            ax.text(0.5, 0.5, "uniform (dissipated)", ha="center", va="center", transform=ax.transAxes, color="white", fontsize=9,
                    bbox={"facecolor": "0.2", "alpha": 0.7, "edgecolor": "none"})
    if mask is not None and np.asarray(mask).any():
        ax.contour(np.asarray(mask, dtype=float), levels=[0.5], colors="white", linewidths=1.0, linestyles="--")
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def _from(panel: dict | str | None) -> str:
    """`` [weights]`` or `` [trained]`` in a panel's title when its weights were not random."""
    source = (panel.get("source", "") if isinstance(panel, dict) else panel) or ""
    kind = source.rsplit(", ", 1)[-1]
    return {"weights": " [weights]", "trained": " [trained]", "untrained": " [untrained]"}.get(kind, "")


def _fig4a(data: dict, rgb: np.ndarray, mask: np.ndarray | None = None):
    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), gridspec_kw={"width_ratios": [1.3, 1]})
    im = axes[0].imshow(np.asarray(data["qg"]["probs"]), aspect="auto", cmap="viridis", vmin=0, vmax=1)
    axes[0].set_title(f"QG: 300 queries x 1 audio key (last layer){_from(data['qg'])}\n{data['qg']['verdict']}", fontsize=9)
    axes[0].set_xlabel("query")
    axes[0].set_yticks([0], ["audio"])
    fig.colorbar(im, ax=axes[0], fraction=0.05)
    im = axes[1].imshow(np.asarray(data["pqg"]["probs"]), aspect="auto", cmap="viridis")
    axes[1].set_title(f"PQG: 16 queries x [audio | 16 queries] (last layer){_from(data['pqg'])}\n{data['pqg']['verdict']}", fontsize=9)
    axes[1].set_xlabel("key (0 = audio prompt)")
    axes[1].set_ylabel("query")
    fig.colorbar(im, ax=axes[1], fraction=0.05)
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[1].yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle("Attention probabilities of each generated query (heads averaged)", fontsize=11)
    return fig


def _fig8(data: list, rgb: np.ndarray, mask: np.ndarray | None = None):
    plt = pyplot()

    fig, axes = plt.subplots(1, len(data), figsize=(3.2 * len(data), 4.0))
    for ax, entry in zip(axes, data, strict=True):
        cha = entry["kind"] == "cha"  # channel weights: nothing to draw over the pixels
        scores = "\nchannel weights" if cha else _scores_text(entry.get("scores"))
        _overlay(ax, rgb, None if cha else entry["map"], f"{entry['fusion']} ({entry['kind']}){_from(entry)}\n{entry['verdict']}{scores}", mask)
    fig.suptitle(f"Audio-to-visual maps of each fusion strategy (last decoder layer, stride 8)\n{KEY}", fontsize=11)
    return fig


def _fig9(data: list, rgb: np.ndarray, mask: np.ndarray | None = None, scores: list | None = None):
    plt = pyplot()

    cols = 4
    rows = math.ceil(len(data) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.8 * cols, (3.3 if scores else 2.9) * rows + 0.8))
    for i, ax in enumerate(np.atleast_1d(axes).ravel()):
        if i < len(data):
            _overlay(ax, rgb, data[i], f"query {i}" + (_scores_text(scores[i]) if scores else ""), mask)
        else:
            ax.axis("off")
    fig.suptitle(f"Attention of the pixels to each PQG query (last decoder layer)\n{KEY}", fontsize=11)
    return fig


def _fig7(data: list, rgb: np.ndarray, mask: np.ndarray | None = None):
    plt = pyplot()

    fig, axes = plt.subplots(1, len(data), figsize=(2.9 * len(data), 3.8))
    for i, (ax, entry) in enumerate(zip(axes, data, strict=True)):
        _overlay(ax, rgb, entry["map"], f"block {i + 1}\n{entry['verdict']}{_scores_text(entry.get('scores'))}", mask)
    fig.suptitle("Attention of the pixels to the audio queries, per decoder block (TTT decoder; heads and queries averaged)"
                 f"\n{KEY}", fontsize=11)
    return fig


