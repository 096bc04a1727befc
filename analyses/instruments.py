"""The report's instrument checks (issue #28), drawn from records only: the localisation scores read
on their three controls (a positive control whose map was supervised, the ordinary base, the
audio-blind control) and each probed checkpoint's audio paths measured by patching (`avskit
pathways`). Rendering: no model, no measuring module."""

from __future__ import annotations

import dataclasses
from typing import Any

from avsbench_kit.recipe import RECIPE_KEYS, identity_of, same_run
from avsbench_kit.results import matching
from avsbench_kit.spec import make_spec, spec_from_dict
from avsbench_kit.stats import mean_ci, mean_sd
from avskit.analyses.figure_io import pyplot
from avskit.analyses.summaries import trained_attention
from avskit.analyses.tables import MISSING, SYNTHETIC_DATA, TABLES, TRAINED_BASE, Table, _frame, seed_runs

CONTROLS = ("positive control (map supervised)", "base (unsupervised)", "audio-blind control")
CHANCE = {"ROC-AUC": 0.5, "energy ratio": 1.0}


def _control(prov: dict) -> str:
    if prov.get("supervise_attention"):
        return CONTROLS[0]
    return CONTROLS[2] if prov.get("audio_blind") else CONTROLS[1]


def _recipe(prov: dict) -> dict:
    return {k: v for k, v in identity_of(prov, RECIPE_KEYS).items() if k != "supervise_attention"}


def control_runs(records: list[dict], data: str = SYNTHETIC_DATA) -> dict[str, dict[int, dict[str, Any]]]:
    """Per control, per seed: the J of the base model's run with the base's recipe (the supervision
    aside) and, when its checkpoint was probed, that probe's attention summary (the latest of each)."""
    spec = make_spec(TRAINED_BASE).to_dict()
    base = seed_runs(records, make_spec(TRAINED_BASE), data)
    if not base:
        return {}
    recipe = {k: v for k, v in base["recipe"].items() if k != "supervise_attention"}
    probes = matching(records, "attention_frames", spec)
    runs: dict[str, dict[int, dict[str, Any]]] = {}
    for r in matching(records, "train", spec, {"data": data}, "jaccard"):
        prov = r["provenance"]
        if _recipe(prov) != recipe:
            continue
        run = {"jaccard": r["value"]}
        probed = [p for p in probes if same_run(p["provenance"].get("trained") or {}, prov)]
        if probed:
            run["attention"] = trained_attention(probed[-1])
        runs.setdefault(_control(prov), {})[prov.get("seed", 0)] = run
    return runs


def _mean(values: list) -> float | None:
    return mean_sd([v for v in values if v is not None])[0]


def instrument_check(records: list[dict]) -> Table:
    """The localisation instrument's three rows: a score believed only when the positive control
    moves it far from chance and the base and blind control are read beside it."""
    runs = control_runs(records)
    rows = []
    for control in CONTROLS:
        seeds = runs.get(control, {})
        probed = [s["attention"] for s in seeds.values() if s.get("attention")]
        j, j_sd = mean_sd([s["jaccard"] for s in seeds.values()])
        selected = [a for a in probed if a.get("selected_roc_auc") is not None]
        rows.append({
            "row": control, "seeds trained": len(seeds), "synthetic S4 J (measured)": j and 100 * j,
            "J sd (measured)": j_sd and 100 * j_sd, "seeds probed with a query chosen on val": len(selected),
            "chosen query's ROC-AUC (measured; chance 0.5)": _mean([a["selected_roc_auc"] for a in selected]),
            "chosen query's energy ratio (measured; chance 1)": _mean([a.get("selected_energy_ratio") for a in selected]),
            "chosen query's cIoU area-matched (measured)": _mean([a.get("selected_ciou_area") for a in selected]),
            "query-mean ROC-AUC (measured; chance 0.5)": _mean([a.get("roc_auc") for a in probed]),
            "query-mean energy ratio (measured; chance 1)": _mean([a.get("energy_ratio") for a in probed]),
        })
    notes = (f"{TRAINED_BASE} on synthetic S4 with the ablation recipe; each row's maps are those of the last decoder fusion "
             "(Figure 8's site), scored on the probed test frames against the sounding object. The positive control is trained "
             "with --supervise-attention on that site (a Dice loss on query 0's map); the audio-blind control hears silence. "
             "'Chosen query': the query with the highest mean ROC-AUC on validation frames, then scored on test frames; "
             "'query-mean': the mean map over the queries (normalised across queries, so it can hide one query that points). "
             f"Mean over the probed seeds; {MISSING}: not trained or not probed with the selection yet.")
    return Table("instrument_check", "Instrument check: the localisation scores on their controls", notes, _frame(rows))


def pathway_records(records: list[dict]) -> list[dict]:
    """The latest ``pathways`` record of each (model, weights file, data), in first-seen order."""
    latest: dict[tuple, dict] = {}
    for r in records:
        if r.get("kind") == "pathways":
            prov = r["provenance"]
            latest[(r["model"].split("[weights=")[0], prov.get("weights_sha256"), prov.get("data"), prov.get("subset"))] = r
    return list(latest.values())


def checkpoint_label(record: dict, records: list[dict] = ()) -> str:
    """A probed checkpoint as the table and figure name it: the variant, its data, and the training run
    that made it (seed and steps, from a probe of ``records`` that names the same file) or the file's hash."""
    label = dataclasses.replace(spec_from_dict(record["spec"]), weights=None).label
    sha = record["provenance"].get("weights_sha256")
    trained = next((r["provenance"]["trained"] for r in records if r.get("kind") == "attention_frames" and sha
                    and r["provenance"].get("weights_sha256") == sha and r["provenance"].get("trained")), None)
    if trained:
        made = f"seed {trained.get('seed', 0)}, {trained.get('steps')} steps" + (", audio-blind" if trained.get("audio_blind") else "") \
            + (", map supervised" if trained.get("supervise_attention") else "")
        return f"{label} on {trained.get('data') or record['provenance'].get('data')} ({made}, sha256 {sha[:12]})"
    return f"{label} on {record['provenance'].get('data')}" + (f" (sha256 {sha[:12]})" if sha else " (random weights)")


def _ci(row: dict) -> str:
    low, high = row["drop_ci95"]
    return f"{row['drop']:.3f} [{low:.3f}, {high:.3f}]" if low is not None else f"{row['drop']:.3f}"


def pathways(records: list[dict]) -> Table:
    """Per probed checkpoint and audio path: J with only that path patched, in both modes, and the drop."""
    rows = []
    for record in pathway_records(records):
        by = {(p["path"], p["mode"]): p for p in record["whole_audio"] + record["paths"]}
        clean = record["clean_jaccard"]
        complete = " / ".join(f"{m} {'OK' if c['ok'] else 'INCOMPLETE'}" for m, c in sorted(record["completeness"].items()))
        for path in dict.fromkeys(p for p, _ in by):
            row = {"checkpoint": checkpoint_label(record, records), "frames": record["provenance"].get("frames"),
                   "clean J (measured)": clean["mean"], "path": path}
            for mode in ("swap", "zero"):
                found = by.get((path, mode))
                row[f"{mode}: J patched (measured)"] = found and found["jaccard"]
                row[f"{mode}: drop [95% CI] (measured)"] = found and _ci(found)
            row["completeness"] = complete
            rows.append(row)
    notes = ("avskit pathways: each declared audio path's tensor replaced by the one another frame's audio produces "
             "(swap: a probed frame that sounds another class) or silence produces (zero), everything else keeping the "
             "frame's own audio; drop = clean J minus patched J, with its 95% Student-t interval over the frames. 'whole "
             "audio' swaps the input itself; completeness: every path patched at once equals it (<= 1e-5). "
             + ("" if rows else f"No pathways record yet: avskit pathways {TRAINED_BASE} --set weights=CHECKPOINT --data synthetic:s4 "
                                "--frames 32 --results STORE."))
    return Table("pathways", "Audio pathways, measured by patching", notes, _frame(rows))


REPORT_TABLES = (*TABLES, instrument_check, pathways)  # every table the report writes, in its order


def pathways_figure(records: list[dict]):
    """The drops of every probed checkpoint's paths, both modes side by side, with their CIs and the
    whole-audio drop as each checkpoint's reference; 0 (the path carries nothing) dashed."""
    plt = pyplot()

    found = pathway_records(records)
    rows = []  # per checkpoint: a header row naming it, then one row per path
    for r in found:
        rows += [(f"{checkpoint_label(r, records)}, clean J {r['clean_jaccard']['mean']:.3f}", None)] + [
            (None, p) for p in dict.fromkeys(x["path"] for x in r["whole_audio"] + r["paths"])]
    fig, axes = plt.subplots(1, 2, figsize=(13, 1.8 + 0.38 * max(4, len(rows))), squeeze=False, sharey=True, sharex=True)
    if not rows:
        axes[0][0].text(0.5, 0.5, "no pathways record yet:\navskit pathways MODEL --set weights=CHECKPOINT --data synthetic:s4",
                        ha="center", va="center", transform=axes[0][0].transAxes, color="0.4", fontsize=9)
        for ax in axes[0]:
            ax.set_axis_off()
    for ax, mode in zip(axes[0], ("swap", "zero"), strict=True):
        if not rows:
            break
        y = 0
        for record in found:
            y += 1  # the checkpoint's header row
            for p in [x for x in record["whole_audio"] + record["paths"] if x["mode"] == mode]:
                whole = p["path"] == "whole audio"
                low, high = p["drop_ci95"]
                if low is not None:
                    ax.errorbar(p["drop"], y, xerr=[[p["drop"] - low], [high - p["drop"]]], fmt="none", ecolor="0.3", capsize=3)
                ax.scatter([p["drop"]], [y], marker="s" if whole else "o", s=40, zorder=3,
                           facecolor="white" if whole else "tab:purple", edgecolor="tab:purple")
                y += 1
        ax.axvline(0, color="tab:red", linestyle="--", linewidth=1)
        ax.set_xlabel("drop in J, clean - patched (measured)", fontsize=9)
        ax.set_yticks(range(len(rows)), [c if c else f"{p}" for c, p in rows], fontsize=8)
        for tick, (c, _) in zip(ax.get_yticklabels(), rows, strict=False):  # the shared axis's labels: the left panel's
            tick.set_fontweight("bold" if c else "normal")
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.grid(axis="x", alpha=0.3)
        ax.set_title({"swap": "swap: another class's audio", "zero": "zero: silence"}[mode], fontsize=10)
    if rows:
        handles = [plt.Line2D([], [], marker="s", markerfacecolor="white", markeredgecolor="tab:purple", linestyle="",
                              label="whole audio (reference)"),
                   plt.Line2D([], [], marker="o", color="tab:purple", linestyle="", label="one path patched"),
                   plt.Line2D([], [], color="0.3", label="95% CI over frames (t)"),
                   plt.Line2D([], [], color="tab:red", linestyle="--", label="0: the path carries nothing")]
        axes[0][1].legend(handles=handles, loc="upper left", fontsize=7, frameon=False, bbox_to_anchor=(1.02, 1.0))
    frames = sorted({r["provenance"].get("frames") for r in found})
    fig.suptitle("Audio pathways, measured by patching: how much J each path's audio carries"
                 + (f" ({'/'.join(map(str, frames))} test frames per checkpoint)" if frames else ""), fontsize=10)
    return fig


INSTRUMENT_PANELS = (("ROC-AUC", "roc_auc", 0.5, (0.0, 1.0)), ("energy ratio", "energy_ratio", 1.0, None))


def instrument_check_figure(records: list[dict]):
    """The three controls' last-fusion maps, scored: per seed the query chosen on validation frames
    (filled) and the mean over queries (hollow), each panel with its chance line."""
    plt = pyplot()

    runs = control_runs(records)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4), squeeze=False, sharey=True)
    for ax, (name, key, chance, limits) in zip(axes[0], INSTRUMENT_PANELS, strict=True):
        for y, control in enumerate(CONTROLS):
            probed = [(seed, run["attention"]) for seed, run in sorted(runs.get(control, {}).items()) if run.get("attention")]
            chosen = [a[f"selected_{key}"] for _, a in probed if a.get(f"selected_{key}") is not None]
            pooled = [a[key] for _, a in probed if a.get(key) is not None]
            if not probed:
                ax.text(0.02, y, "not probed yet", va="center", transform=ax.get_yaxis_transform(), fontsize=8, color="0.35")
            ax.scatter(pooled, [y + 0.12] * len(pooled), facecolor="white", edgecolor="tab:blue", s=36, zorder=3)
            ax.scatter(chosen, [y - 0.12] * len(chosen), color="tab:blue", s=36, zorder=3)
            if len(chosen) > 1:
                stat = mean_ci(chosen)
                ax.errorbar(stat["mean"], y - 0.12, xerr=[[stat["mean"] - stat["ci95"][0]], [stat["ci95"][1] - stat["mean"]]],
                            fmt="none", ecolor="0.3", capsize=3)
        ax.axvline(chance, color="tab:red", linestyle="--", linewidth=1)
        if limits:
            ax.set_xlim(limits[0], limits[1] + 0.03)  # a point at 1 stays whole
        ax.set_xlabel(f"{name} (measured); chance {chance:g} (red)", fontsize=9)
        ax.set_yticks(range(len(CONTROLS)), CONTROLS, fontsize=8)
        ax.set_ylim(len(CONTROLS) - 0.5, -0.5)
        ax.grid(axis="x", alpha=0.3)
    handles = [plt.Line2D([], [], marker="o", color="tab:blue", linestyle="", label="query chosen on val, one seed"),
               plt.Line2D([], [], marker="o", markerfacecolor="white", markeredgecolor="tab:blue", linestyle="",
                          label="mean over queries, one seed"),
               plt.Line2D([], [], color="0.3", label="95% CI over seeds (t)")]
    axes[0][1].legend(handles=handles, loc="upper left", fontsize=7, frameon=False, bbox_to_anchor=(1.02, 1.0))
    fig.suptitle(f"Instrument check: the last decoder fusion's maps of {TRAINED_BASE} on synthetic S4 (ablation recipe), each "
                 "seed's checkpoint probed on its test frames;\nthe positive control's map was supervised toward the sounding object",
                 fontsize=10)
    return fig
