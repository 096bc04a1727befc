"""Figures 1 and 3 and the scaling plots, drawn from records alone (the same records, the same bytes).

- fig1: accuracy against latency measured here, Pareto frontier, marker area = live parameters.
  Two panels take the paper's reported J (S4, MS3): only the x axis is measured. The third takes
  the J measured here on the synthetic S4 benchmark.
- fig3: where one forward's time goes, per part, for AVSegFormer and AVESFormer.
- scaling: latency against input size (224-512) and against the number of PQG queries (8-256).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from avsbench_kit import reported as paper
from avsbench_kit.recipe import RECIPE_KEYS, same_run
from avsbench_kit.results import same_spec
from avsbench_kit.spec import make_spec
from avskit.analyses import tables
from avskit.analyses.breakdown_groups import GROUP_COLOURS, OUTSIDE_COLOUR, PART_GROUPS, _groups
from avskit.analyses.figure_io import pyplot, save_figure
from avskit.analyses.instruments import instrument_check_figure, pathways_figure
from avskit.analyses.latency_runs import latencies, one_session
from avskit.analyses.tables import BASE, REPORT_SIZE, TABLE3_ORDER, ZOO_ORDER, devices, params_record, released_eval_record, train_record

COLOURS = {"avsbench-r50": "tab:blue", "avsegformer-r50": "tab:orange", "avesformer-r18": "tab:green", "avesformer-r50": "tab:red",
           "ecmvae-pvt": "tab:purple", "ecmvae-r50": "tab:pink", "catr-pvt": "tab:brown", "cavp-r50": "tab:olive"}
SCALING_SIZES = (224, 288, 352, 416, 480, 512)


def pareto(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both lower x (latency) and higher y (accuracy), by x."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -np.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def _accuracy_panel(ax, points: list[dict[str, Any]], ylabel: str, title: str, legend_below: bool = True) -> None:
    """Accuracy against latency, one colour per model (named in the legend, so no label can overlap
    another); a point whose accuracy belongs to another configuration is hollow and says so; the
    Pareto frontier over the points that pair one configuration's numbers."""
    if not points:
        ax.text(0.5, 0.5, "no records yet", ha="center", va="center", transform=ax.transAxes, color="0.4")
        ax.set_title(title, fontsize=10)
        return
    for p in points:
        other, colour = p.get("other"), COLOURS.get(p.get("colour", p["name"]), "0.5")
        ax.scatter(p["x"], p["y"], s=p["size"], facecolor="none" if other else colour, alpha=0.75,
                   edgecolor=colour if other else "black", linewidth=1.6 if other else 0.6, zorder=3,
                   label=p["name"] + (f" (hollow: {other})" if other else ""))
    fair = [p for p in points if not p.get("other")]
    front = [fair[i] for i in pareto([(p["x"], p["y"]) for p in fair])]
    ax.step([p["x"] for p in front], [p["y"] for p in front], where="post", color="0.3", linestyle="--", linewidth=1, zorder=2,
            label="Pareto frontier (filled points)")
    for params_m in (100, 150):  # the marker-area key
        ax.scatter([], [], s=params_m * 1e6 / 4e5, facecolor="0.85", edgecolor="0.4", label=f"{params_m}M live parameters")
    ax.set_xlabel(f"latency ms, {points[0]['device']} (measured, 224x224, T=1)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.margins(x=0.25, y=0.2)
    if legend_below:
        ax.legend(fontsize=6.5, loc="upper left", bbox_to_anchor=(0.0, -0.16), ncol=2, frameon=False, labelspacing=1.1, borderpad=0.8)
    else:  # the panel's own lines are below it: the key goes to its right, outside the data
        ax.legend(fontsize=6.5, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, labelspacing=1.1, borderpad=0.8)


def fig1(records: list[dict]):
    plt = pyplot()
    devs = devices(records)
    dev = devs[-1] if devs else "cpu"  # a GPU when there is one: the paper's setting
    base = {}
    zoo = [make_spec(name) for name in TABLE3_ORDER]
    lats = latencies(records, zoo, BASE, dev)
    for spec in zoo:
        name = spec.name
        lat, params = lats[spec], params_record(records, spec)
        if lat and params:
            base[name] = {"name": name, "x": lat["value"], "size": params["value"] / 4e5, "device": dev}
    fig, axes = plt.subplots(1, 3, figsize=(18, 6.4), gridspec_kw={"width_ratios": [1, 1, 1.15]})
    for ax, subset in zip(axes[:2], ("s4", "ms3"), strict=True):
        points = [{**p, "name": n if source == "AVESFormer paper" else f"{n} (J: its authors' paper)", "colour": n,
                   "y": j, "other": paper.ACCURACY_OF_ANOTHER.get(n)}
                  for n, p in base.items() if (j := (found := paper.published_accuracy(n, subset))[0]) is not None and (source := found[1])]
        measured = [{**p, "y": 100 * r["value"]} for n, p in base.items() if (r := released_eval_record(records, n, subset))]
        title = f"{subset.upper()}: J reported vs latency measured here\n(J: the paper's, or its authors' where the key says so)"
        if measured:
            title += "\n(squares: J measured here with the released weights)"
        _accuracy_panel(ax, points, f"{subset.upper()} J, % (filled: reported)" if measured else f"{subset.upper()} J, % (reported)", title)
        for p in measured:
            ax.scatter(p["x"], p["y"], s=p["size"], marker="s", facecolor="none", edgecolor=COLOURS.get(p["name"], "0.5"), linewidth=1.6,
                       zorder=4)
    synthetic = []
    for name, p in base.items():
        j = train_record(records, make_spec(name))
        if j:
            synthetic.append({**p, "y": 100 * j["value"], "record": j})
    _accuracy_panel(axes[2], synthetic, "synthetic S4 J, % (measured here)",
                    "synthetic S4: J (trained at 64x64, seed 0) and latency (224x224) measured here;\nrandom init; each model's "
                    "budget and verdict in the figure's last lines", legend_below=False)
    for i, p in enumerate(sorted(synthetic, key=lambda p: p["x"])):
        verdict = tables.convergence(p["record"])
        if not verdict.startswith("learned"):  # a cross over the marker: this J is a training budget's, not the architecture's
            axes[2].scatter(p["x"], p["y"], s=p["size"] * 0.5, marker="x", color="black", linewidth=1.2, zorder=4)
        # under the panel, a model's recipe and verdict on two lines: the texts beside the markers overlapped
        # (close latencies). Offsets in points, below the tick labels and the axis label: axes fractions
        # moved with the axes' height, which the layout changes
        axes[2].annotate(f"{p['name']}: {recipe_text(p['record'])}\n    {verdict}", (0, 0), xycoords="axes fraction",
                         xytext=(0, -34 - 19 * i), textcoords="offset points", fontsize=6.5, va="top",
                         color="0.2" if verdict.startswith("learned") else "tab:red")
    fig.suptitle("Figure 1: accuracy vs latency (marker area = live parameters, VGGish included)", fontsize=12)
    return fig


def recipe_text(record: dict) -> str:
    """A training run's recipe and budget in a line: steps, batch, lr, warmup, frame size, minutes and
    the GEMM probe (GMAC/s) and CPU beside them when recorded (the probe does not carry across CPU kinds)."""
    p = record["provenance"]
    parts = [f"{p.get('steps')} steps", f"batch {p.get('batch')}", f"lr {p.get('lr'):g}" if p.get("lr") else None,
             f"warmup {p['warmup']}" if p.get("warmup") else None, f"{p.get('size')}px"]
    if record.get("seconds"):
        probe = p.get("gemm_gmacs_before")
        where = p.get("device_name") if p.get("device", "cpu") == "cpu" else None
        where = where and " ".join(where.replace("(R)", "").replace("(TM)", "").replace(" Processor", "").split())
        parts.append(f"{record['seconds'] / 60:.0f} min" + (f" at {probe:.0f} GMAC/s" if probe else "") + (f" ({where})" if where else ""))
    return ", ".join(x for x in parts if x)


def fig1_training_curves(records: list[dict]):
    """The validation curves behind Figure 1's synthetic panel: each zoo model's validation J by step,
    its recipe, budget and verdict (tables.convergence); the J = 0.6 line a model must reach to count as learned."""
    from avskit.analyses.tables import CONVERGED_J

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.8))
    drawn = 0
    for name in ZOO_ORDER:
        record = train_record(records, make_spec(name))
        if not record:
            continue
        curve = [(pt["step"], pt["jaccard"]) for pt in record.get("val_curve") or [] if pt.get("jaccard") is not None]
        label = f"{name}: test J {record['value']:.2f}; {recipe_text(record)}; {tables.convergence(record)}"
        if curve:
            ax.plot(*zip(*curve, strict=True), marker="o", markersize=3, color=COLOURS.get(name, "0.5"), label=label)
        else:
            ax.plot([], [], color=COLOURS.get(name, "0.5"), label=label)
        drawn += 1
    ax.axhline(CONVERGED_J, color="0.4", linestyle="--", linewidth=1)
    ax.set_xlabel("training step")
    ax.set_ylabel("validation J (measured)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(fontsize=6.5, loc="lower right")
    else:
        ax.text(0.5, 0.5, "no training records yet (avskit report --train synthetic:s4 --val-every 100)", ha="center", va="center",
                transform=ax.transAxes, color="0.4")
    ax.set_title(f"Figure 1's synthetic panel: each model's validation J on synthetic S4 (seed 0); dashed: J {CONVERGED_J}, the bar "
                 "for having learned the task", fontsize=9)
    return fig


def fig3(records: list[dict]):
    plt = pyplot()
    devs = devices(records)
    names = list(TABLE3_ORDER)
    fig, axes = plt.subplots(len(devs) or 1, 1, figsize=(11, 1.6 + 0.75 * len(names) * max(1, len(devs))), squeeze=False)
    for ax, dev in zip(axes[:, 0], devs or ["cpu"], strict=True):
        rows = []
        lats = latencies(records, [make_spec(name) for name in TABLE3_ORDER], BASE, dev)
        for name in names:
            lat = lats[make_spec(name)]
            if lat and lat.get("modules"):
                rows.append((name, lat["value"], *_groups(lat["modules"])))
        for y, (_name, total, shares, outside) in enumerate(rows):
            left = 0.0
            for (group, _), colour, share in zip(PART_GROUPS, GROUP_COLOURS, shares, strict=True):
                ax.barh(y, share, left=left, color=colour, edgecolor="white", label=group if y == 0 else None)
                if share >= 0.04:
                    ax.text(left + share / 2, y, f"{share:.0%}", ha="center", va="center", fontsize=8, color="white")
                left += share
            ax.barh(y, outside, left=left, color=OUTSIDE_COLOUR, edgecolor="white", hatch="//", label="outside the parts" if y == 0 else None)
            transformer = shares[3] + shares[4]
            ax.text(1.01, y, f"{total:,.0f} ms unhooked\nQG + decoder {transformer:.0%}", va="center", fontsize=8)
        ax.set_yticks(range(len(rows)), [r[0] for r in rows])
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel(f"share of one hooked forward, {dev} (measured, 224x224, per-part hooks; the shares sum to at most 1); "
                      "right: the unhooked median of the same run", fontsize=9)
        if not rows:
            ax.text(0.5, 0.5, "no records yet", ha="center", va="center", transform=ax.transAxes, color="0.4")
        ax.legend(fontsize=7, ncol=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.suptitle(f"Figure 3: runtime breakdown (the paper reports the transformer, query generator included, above "
                 f"{paper.FIG3_TRANSFORMER_SHARE:.0%} of AVSegFormer's time on its GPU)", fontsize=10)
    return fig


def scaling_sizes(records: list[dict], device: str) -> list[int]:
    """Input sizes the zoo was timed at on ``device`` in runs anchored on the base model."""
    zoo = [make_spec(name).to_dict() for name in ZOO_ORDER]
    return sorted({r["provenance"]["size"] for r in records if r.get("kind") == "latency"
                   and any(same_spec(r.get("spec"), spec) for spec in zoo)
                   and r["provenance"].get("anchor") == BASE and r["provenance"].get("device") == device})


def scaling_size(records: list[dict]):
    plt = pyplot()
    devs = devices(records)
    fig, axes = plt.subplots(1, max(1, len(devs)), figsize=(6.5 * max(1, len(devs)), 4.4), squeeze=False)
    for ax, dev in zip(axes[0], devs or ["cpu"], strict=True):
        zoo = [make_spec(name) for name in ZOO_ORDER]
        by_size = one_session(records, zoo, dev, scaling_sizes(records, dev))
        for spec in zoo:
            name = spec.name
            pts = [(s, lats[spec]) for s, lats in by_size.items()]
            pts = [(s, r) for s, r in pts if r]
            if pts:
                ax.errorbar([s for s, _ in pts], [r["value"] for _, r in pts], yerr=[r["stats"]["iqr"] / 2 for _, r in pts],
                            marker="o", capsize=3, color=COLOURS[name], label=name)
        ax.set_xlabel("input height = width (pixels)")
        ax.set_ylabel(f"latency ms, {dev} (measured, median; bars: IQR)")
        ax.set_xticks(scaling_sizes(records, dev) or [REPORT_SIZE])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Latency vs input size (T=1, batch 1, eager fp32)", fontsize=12)
    return fig


def scaling_queries(records: list[dict]):
    plt = pyplot()
    devs = devices(records)
    fig, ax = plt.subplots(1, 1, figsize=(6.5, 4.4))
    for dev, marker in zip(devs, ("o", "s", "^", "D"), strict=False):  # a marker per device, four at most
        specs = [make_spec(BASE, {"queries": q}) for q in paper.TABLE8_QUERIES]
        lats = latencies(records, specs, BASE, dev)  # one run: the base's point is from the sweep's rounds
        pts = [(q, lats[spec]) for q, spec in zip(paper.TABLE8_QUERIES, specs, strict=True)]
        pts = [(q, r) for q, r in pts if r]
        if pts:
            ax.errorbar([q for q, _ in pts], [r["value"] for _, r in pts], yerr=[r["stats"]["iqr"] / 2 for _, r in pts],
                        marker=marker, capsize=3, label=f"{BASE}, {dev} (measured)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(paper.TABLE8_QUERIES), [str(q) for q in paper.TABLE8_QUERIES])
    ax.set_xlabel("PQG queries")
    ax.set_ylabel("latency ms (median; bars: IQR)")
    ax.set_ylim(bottom=0)  # from zero: the growth is small and should look it
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    ax.set_title("Latency vs number of queries (224x224, T=1)", fontsize=11)
    return fig


LOCALISATION_PANELS = (  # (metric, the trained_attention key, chance): a score that is 0 by construction gets no panel
    ("energy ratio", "energy_ratio", 1.0), ("ROC-AUC", "roc_auc", 0.5), ("cIoU, area-matched", "ciou_area", None),
    ("ROC-AUC, query chosen on val", "selected_roc_auc", 0.5))


def localisation_by_variant(records: list[dict]):
    """Per trained variant of Tables 4, 5 and 7 (avesformer-r18's), its trained maps' scores measured
    from chance: one point per seed, the mean and its 95% CI over the seeds (Student's t for n). The
    base, the same checkpoints in all three tables, is drawn once under its three names. A variant
    without a spatial map (CHA) or whose maps are all constant (a dissipated fusion) says so instead;
    one without probed checkpoints is left out; a score no checkpoint has gets no panel."""
    from avsbench_kit.stats import mean_ci
    from avskit.analyses.tables import TRAINED_BASE, seed_runs

    plt = pyplot()
    rows, names = [], {}
    for table, axis, values in (("Table 4", "qg", paper.TABLE4_QG), ("Table 5", "fusion", paper.TABLE5_FUSION),
                                ("Table 7", "stages", paper.TABLE7_STAGES)):
        for value in values:
            spec = make_spec(TRAINED_BASE, {axis: value})
            names.setdefault(spec.label, []).append(f"{axis}={value}")
            if len(names[spec.label]) > 1:
                continue  # the base again, under another table's name
            for seed, run in (seed_runs(records, spec).get("runs") or {}).items():
                attention = run.get("attention") or {}
                constant = attention.get("frames") and attention.get("degenerate") == attention["frames"]
                note = attention.get("localisation") or ("every map constant (dissipated)" if constant else None)
                rows.append({"spec": spec.label, "table": table, "seed": seed, "note": note, **attention})
    panels = [p for p in LOCALISATION_PANELS if any(r.get(p[1]) is not None for r in rows)]
    order = list(dict.fromkeys(r["spec"] for r in rows))
    label = {s: " = ".join(names[s]) + (" (base)" if len(names[s]) > 1 else "") for s in order}
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(4.2 * max(1, len(panels)) + 2.5, 1.6 + 0.42 * max(4, len(order))),
                             squeeze=False, sharey=True)
    if not rows or not panels:
        ax = axes[0][0]
        ax.text(0.5, 0.5, "no trained checkpoint probed yet:\navskit report --train synthetic:s4 --train-tables 4,5,7 --seeds 0,1,2",
                ha="center", va="center", transform=ax.transAxes, color="0.4", fontsize=9)
        ax.set_axis_off()
    else:
        colours = {"Table 4": "tab:blue", "Table 5": "tab:orange", "Table 7": "tab:green"}
        for ax, (metric, key, chance) in zip(axes[0], panels, strict=True):
            for y, spec in enumerate(order):
                mine = [r for r in rows if r["spec"] == spec]
                values = [r[key] for r in mine if r.get(key) is not None]
                if not values:
                    note = next((r["note"] for r in mine if r["note"]), "not scored")
                    ax.text(0.02, y, note, va="center", transform=ax.get_yaxis_transform(), fontsize=8, color="0.35")
                    continue
                stat = mean_ci(values)
                colour = colours[mine[0]["table"]]
                ax.scatter(values, [y] * len(values), color="black", s=12, zorder=3)
                low, high = stat["ci95"]
                if low is not None:
                    ax.errorbar(stat["mean"], y, xerr=[[stat["mean"] - low], [high - stat["mean"]]], fmt="none", ecolor=colour, capsize=4)
                ax.scatter([stat["mean"]], [y], marker="D", color=colour, s=36, zorder=4)
            if chance is not None:
                ax.axvline(chance, color="tab:red", linestyle="--", linewidth=1)
            ax.set_xlabel(f"{metric} (measured)" + (f"; chance {chance:g} (red)" if chance is not None else ""), fontsize=9)
            ax.set_yticks(range(len(order)), [label[s] for s in order])
            ax.set_ylim(len(order) - 0.5, -0.5)
            ax.grid(axis="x", alpha=0.3)
        handles = [plt.Line2D([], [], marker="D", color=c, linestyle="", label=t) for t, c in colours.items()] + [
            plt.Line2D([], [], marker="o", color="black", linestyle="", markersize=4, label="one seed's checkpoint"),
            plt.Line2D([], [], color="0.3", label="95% CI over seeds (t)")]
        axes[0][-1].legend(handles=handles, loc="upper left", fontsize=7, frameon=False, bbox_to_anchor=(1.02, 1.0))  # outside the data
    fig.suptitle(f"Localisation by variant: {TRAINED_BASE}'s variants trained on synthetic S4; each checkpoint's last audio-to-visual "
                 "map scored against the sounding object\n(diamond: the mean over seeds with its 95% CI, Student's t; dashed: chance)",
                 fontsize=10)
    return fig


def training_curves(records: list[dict]) -> list[dict[str, Any]]:
    """The validation curves of the trained base's runs (with audio), one per seed of its most-seeded recipe."""
    from avskit.analyses.tables import TRAINED_BASE, seed_runs

    spec = make_spec(TRAINED_BASE)
    found = seed_runs(records, spec)
    if not found:
        return []
    recipe = found["recipe"]
    curves = {}
    for r in records:
        prov = r.get("provenance", {})
        if r.get("kind") == "train" and r.get("metric") == "jaccard" and r.get("val_curve") and same_spec(r.get("spec"), spec.to_dict()) \
                and not prov.get("audio_blind") and same_run(prov, recipe, RECIPE_KEYS):
            curves[prov.get("seed", 0)] = r["val_curve"]
    return [{"seed": seed, "curve": curve} for seed, curve in sorted(curves.items())]


def attention_over_training(records: list[dict]):
    """Does dissipation appear or fade as the model learns? The trained base's validation J and, at
    its last audio-to-visual site on fixed validation frames, the energy ratio, the row diversity and
    the dissipated share, against the training step; one line per seed."""
    from avskit.analyses.tables import TRAINED_BASE

    plt = pyplot()
    runs = training_curves(records)
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
    panels = (("val J", lambda p, a: p.get("jaccard")), ("energy ratio (chance 1)", lambda p, a: a and a.get("energy_ratio")),
              ("row diversity", lambda p, a: a and a.get("row_diversity")), ("dissipated share", lambda p, a: a and a.get("dissipated_share")))
    site = None
    for run in runs:
        for ax, (_, get) in zip(axes, panels, strict=True):
            xs, ys = [], []
            for point in run["curve"]:
                last = (point.get("attention") or [None])[-1]
                site = site or (last or {}).get("site")
                value = get(point, last)
                if value is not None:
                    xs.append(point["step"])
                    ys.append(value)
            if xs:
                ax.plot(xs, ys, marker="o", markersize=3, label=f"seed {run['seed']}")
    for ax, (name, _) in zip(axes, panels, strict=True):
        ax.set_xlabel("training step")
        ax.set_title(name, fontsize=9)
        ax.grid(alpha=0.3)
        if not ax.get_legend_handles_labels()[0]:
            ax.text(0.5, 0.5, "no validation curve yet\n(train with --val-every)", ha="center", va="center", transform=ax.transAxes,
                    color="0.4", fontsize=8)
    axes[1].axhline(1.0, color="tab:red", linestyle="--", linewidth=1, label="chance (energy ratio 1)")
    handles, labels = axes[1].get_legend_handles_labels()
    if handles:  # one key for the four panels, to the right of the data
        axes[-1].legend(handles, labels, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    axes[3].set_ylim(-0.05, 1.05)  # a share: its whole range, so a flat 0 reads as none
    fig.suptitle(f"Attention over training: {TRAINED_BASE} on synthetic S4, validation J and, on fixed validation frames, "
                 f"its last audio-to-visual site{' (' + site + ')' if site else ''} (measured)", fontsize=10)
    return fig


FIGURES = {"fig1_accuracy_latency": fig1, "fig1_training_curves": fig1_training_curves,
           "fig3_runtime_breakdown": fig3, "scaling_input_size": scaling_size,
           "scaling_queries": scaling_queries, "localisation_by_variant": localisation_by_variant,
           "attention_over_training": attention_over_training, "instrument_check": instrument_check_figure,
           "pathways": pathways_figure}


# the kinds of record each figure reads: its footer names the commits, torch versions and devices of
# those records only (a latency figure measured on one CPU does not name the CPU a training ran on)
FIGURE_KINDS = {"fig1_accuracy_latency": ("latency", "params", "train"), "fig1_training_curves": ("train",),
                "fig3_runtime_breakdown": ("latency",), "scaling_input_size": ("latency",),
                "scaling_queries": ("latency",), "localisation_by_variant": ("train", "attention_frames"),
                "attention_over_training": ("train",), "instrument_check": ("train", "attention_frames"),
                "pathways": ("pathways",)}


def draw(records: list[dict], out: Path, provenance: Callable[[list[dict]], dict[str, Any]]) -> list[str]:
    """Every figure of FIGURES into ``out``, each footer from ``provenance`` of the records it reads."""
    written = []
    for stem, make in FIGURES.items():
        shown = [r for r in records if r.get("kind") in FIGURE_KINDS[stem]]
        written += save_figure(make(records), out / stem, provenance(shown))
    return written


# ---- latency distributions (seaborn) ------------------------------------------------------------

def latency_candidates(records: list[dict]) -> list[dict[str, Any]]:
    """What a distribution plot needs of latency records (or profile results): label, rounds, median, spread."""
    from avsbench_kit.profiling.timing import NOISY_IQR

    found = []
    for r in records:
        stats = r.get("stats") or r.get("latency_ms")
        label = r["model"] + (f" ({r['path']})" if r.get("path") not in (None, "eager") else "")
        found.append({"label": label, "samples": list(r.get("samples_ms") or []), "median": stats["median"],
                      "iqr_ratio": stats["iqr"] / stats["median"] if stats["median"] else 0.0,
                      "noisy": bool(stats["median"]) and stats["iqr"] / stats["median"] > NOISY_IQR})
    return found


def latency_distributions(panels: list[tuple[str, list[dict[str, Any]]]], title: str = "Latency distributions"):
    """One panel per run: each candidate's timed rounds as a violin with every point, its median
    marked; a noisy candidate (IQR above 10% of its median) is flagged in red. Deterministic: the
    points' jitter comes from a fixed seed, so the same records give the same bytes."""
    import pandas as pd
    import seaborn as sns

    plt = pyplot()
    panels = [(t, c) for t, c in panels if c] or [("no latency records yet", [])]
    heights = [max(1, len(c)) * 0.45 + 0.9 for _, c in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, sum(heights) + 0.8), gridspec_kw={"height_ratios": heights}, dpi=110,
                             squeeze=False)
    state = np.random.get_state()  # seaborn's strip jitter draws from numpy's global generator
    np.random.seed(0)
    try:
        for ax, (panel_title, candidates) in zip(axes[:, 0], panels, strict=True):
            _latency_panel(ax, panel_title, candidates, pd, sns)
    finally:
        np.random.set_state(state)
    # the title sits on the first panel: a figure-level title would leave a tall figure's top empty
    first = axes[0, 0]
    first.set_title(f"{title}\n\n{first.get_title(loc='left')}", fontsize=9, loc="left")
    return fig


def _latency_panel(ax, title: str, candidates: list[dict[str, Any]], pd, sns) -> None:
    ax.set_title(title, fontsize=9, loc="left")
    if not candidates:
        ax.text(0.5, 0.5, "no latency records yet", ha="center", va="center", transform=ax.transAxes, color="0.4")
        ax.set_axis_off()
        return
    labels = [c["label"] for c in candidates]
    rows = [{"candidate": c["label"], "ms": v} for c in candidates for v in c["samples"]]
    if rows:
        frame = pd.DataFrame(rows)
        sns.violinplot(data=frame, x="ms", y="candidate", order=labels, ax=ax, inner=None, cut=0, density_norm="width",
                       color="#c6d7ec", linewidth=0.6)
        sns.stripplot(data=frame, x="ms", y="candidate", order=labels, ax=ax, size=2.5, jitter=0.18, color="#1f3b63", alpha=0.7)
    ax.scatter([c["median"] for c in candidates], range(len(candidates)), marker="|", s=260, color="black", linewidths=2,
               zorder=5, label="median")
    ax.set_yticks(range(len(candidates)), [c["label"] + ("" if c["samples"] else " (no rounds kept)") for c in candidates],
                  fontsize=8)
    for tick, c in zip(ax.yaxis.get_major_ticks(), candidates, strict=False):
        tick.label1.set_color("tab:red" if c["noisy"] else "black")
    for y, c in enumerate(candidates):
        note = f"median {c['median']:.1f} ms, IQR {c['iqr_ratio']:.0%}" + (" NOISY" if c["noisy"] else "")
        ax.annotate(note, (1.0, y), xycoords=("axes fraction", "data"), xytext=(4, 0), textcoords="offset points",
                    va="center", fontsize=7, color="tab:red" if c["noisy"] else "0.3")
    ax.set_xlim(left=0)
    ax.set_xlabel("latency per forward, ms (each point one timed round)", fontsize=8)
    ax.set_ylabel("")
    ax.grid(axis="x", alpha=0.3)
