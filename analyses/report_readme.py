"""The report's README: an index of every table and figure, how to read it, and where it came from.

A pure function of the records shown (no clock, no machine lookups), like the rest of the report.
"""

from __future__ import annotations

from pathlib import Path

from avsbench_kit.spec import make_spec
from avskit.analyses import latency_runs, tables
from avskit.analyses.instruments import REPORT_TABLES
from avskit.analyses.summaries import effect

FIGURE_NOTES = {
    "fig1_accuracy_latency": "Accuracy against latency. Left and middle: the paper's reported J on S4 and MS3 (y) against latency "
    "measured here (x); right: J measured here on the synthetic S4 benchmark after training from random weights, each model with "
    "its recipe, minutes and GEMM probe, and a verdict from its validation curve (learned: test J >= 0.6; a cross marks a model "
    "that did not learn the task in its budget, so its J is the budget's, not the architecture's). "
    "The dashed staircase is the Pareto frontier (no other model is both faster and more accurate); marker area is the live "
    "parameter count. ECMVAE and CATR carry the J the paper prints for them (in its ResNet-50 group) at the latency measured for "
    "the PVT-v2-b5 models that Table 3's parameter counts describe.",
    "fig1_training_curves": "The validation J by step of each run behind Figure 1's synthetic panel, with its recipe, budget "
    "and verdict; the dashed line is J 0.6, the bar for having learned the task.",
    "fig3_runtime_breakdown": "Share of one forward pass spent in each part, measured with per-part hooks in the same passes as "
    "the whole forward; the text at the right gives the end-to-end median and the share of the query generator and decoder.",
    "scaling_input_size": "Latency of the four zoo models as the input grows from 224 to 512 pixels (median; bars: IQR).",
    "scaling_queries": "Latency of AVESFormer-R50 with 8 to 256 PQG queries (the Table 8 sweep).",
    "latency_distributions": "Every timed round of each table's latency run (seaborn violins with the points; the black tick is the "
                             "median). A candidate whose IQR exceeds 10% of its median is flagged NOISY in red: read its ratios with care.",
    "fig4a_query_attention": "Figure 4(a): each generated query's attention probabilities. AVSegFormer's QG attends to one audio "
    "token, so every probability is exactly 1 (dissipated); PQG's queries attend over [audio prompt | queries].",
    "fig7_decoder_layers": "The audio-to-visual map of each block of an all-transformer (TTT) decoder.",
    "fig8_fusion_maps": "Figure 8: the audio-to-visual map of each fusion strategy at the last decoder layer, over the frame; "
    "with trained checkpoints, each fusion's own.",
    "fig9_pqg_queries": "Figure 9: the map of each of the 16 PQG queries.",
    "localisation_by_variant": "For each trained variant of Tables 4, 5 and 7 (avesformer-r18's, trained on synthetic S4 with the "
    "seeds of `--train-tables`), the energy ratio (chance = 1, the dashed line) and cIoU@0.5 of its last audio-to-visual map over "
    "probed test frames: one point per seed, the bar its mean with a 95% CI. CHA has no spatial map. Empty until such runs exist.",
    "attention_over_training": "The trained base's runs (`--val-every`): validation J and, on 16 fixed validation frames, the energy "
    "ratio, row diversity and dissipated share of its last audio-to-visual site at each validation step, one line per seed: whether "
    "dissipation appears or fades as the model learns. Empty until such runs exist.",
    "instrument_check": "The localisation scores on their controls (the table `instrument_check`): per seed, the query chosen on "
    "validation frames (filled) and the mean over queries (hollow), for the positive control whose map was supervised toward the "
    "sounding object, the base and the audio-blind control; red: chance. A score is believed only where the positive control "
    "moves it. Rows without a probed checkpoint say so.",
    "pathways": "`avskit pathways` on each probed checkpoint: the drop in J when one audio path's tensor comes from another class's "
    "audio (left) or from silence (right), with its 95% CI over frames; the hollow square is the whole audio swapped, the most a "
    "path can carry; red: 0, the path carries nothing. Empty until a pathways record exists.",
}

TABLE_READING = {
    "table3": "Compare the reported and measured *ratios* to AVESFormer-R50, not the milliseconds: the paper timed an RTX 3090. "
    "ECMVAE's and CATR's reported figures sit on their PVT-v2-b5 rows, where their parameter counts fit.",
    "table4": "The reported J/F say what each query generator buys on AVSBench; the measured columns say what it costs here "
    "and whether its attention dissipates.",
    "table5": "The cost of each fusion (latency ratio) beside its reported accuracy; only 'dissipation' should show dissipated sites.",
    "table6": "PQG's plug-in effect: params and latency reported and measured for both models with both generators.",
    "table7": "Moving the convolution stage: the reported latency spread (11.8-14.9 ms) against the measured one.",
    "table8": "Queries are cheap: the latency column should grow slowly from 8 to 256.",
    "table9": "The backbone's share of the time, reported on a GPU and measured here.",
    "instrument_check": "The positive control's chosen-query ROC-AUC must sit far above 0.5 and the other two rows near it; "
    "only then does a near-chance score on a trained variant say something about the variant.",
    "pathways": "A drop near the whole-audio drop: that path carries the audio to the mask; a drop near 0: it carries none.",
}


def _values(records: list[dict], key: str) -> list[str]:
    return sorted({str(r["provenance"][key]) for r in records if r.get("provenance", {}).get(key) not in (None, "")})


def _provenance(records: list[dict]) -> list[str]:
    lines = ["| | |", "|---|---|"]
    for label, key in (("devices", "device_name"), ("device kinds", "device"), ("CPU threads", "threads"), ("torch", "torch"),
                       ("python", "python"), ("CUDA", "cuda"), ("commits", "commit")):
        vals = _values(records, key)
        if vals:
            lines.append(f"| {label} | {', '.join(vals)} |")
    times = _values(records, "time")
    if times:
        lines.append(f"| measured | {times[0]} to {times[-1]} |")
    kinds: dict[str, int] = {}
    for r in records:
        kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
    lines.append("| records | " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) + " |")
    dirty: dict[str, list[str]] = {}
    for r in records:
        commit = str(r.get("provenance", {}).get("commit", ""))
        if commit.endswith("+dirty"):
            dirty.setdefault(r["kind"], []).append(commit[:7] + "+dirty")
    if dirty:
        lines += ["", "Records measured from a tree with uncommitted changes (the commit alone does not say what ran): "
                  + "; ".join(f"{kind}: {len(found)} of {sum(r['kind'] == kind for r in records)} (commits "
                              f"{', '.join(sorted(set(found)))}), shown in {SHOWN_IN.get(kind, 'the records only')}"
                              for kind, found in sorted(dirty.items())) + "."]
    commands = _values(records, "command")
    lines += ["", "Commands that made these records:", ""] + [f"- `{c}`" for c in commands]
    return lines


SHOWN_IN = {  # where a kind of record appears in the report (figures.FIGURE_KINDS says it per figure)
    "latency": "Tables 3-9, Figures 1 and 3, the scaling and latency-distribution figures",
    "params": "Tables 3-9 and Figure 1", "flops": "Tables 4-9", "dissipation": "Tables 4-9",
    "train": "Tables 4, 5 and 7, Figure 1's third panel and the training figures", "attention_frames": "Tables 4, 5 and 7 and "
    "localisation_by_variant", "attention_maps": "Figures 4a, 7, 8 and 9", "eval": "Table 3 and Figure 1"}


def _ratio_line(records: list[dict]) -> str:
    """The whole speed story of Table 3, from its one timing run per device: every model's measured
    ratio to AVESFormer-R50 beside the paper's, and where the order flips."""
    from avsbench_kit.reported import reported_for

    base = reported_for(make_spec(tables.BASE))
    rows = []
    for dev in tables.devices(records):
        found = latency_runs.table_latencies(records, [make_spec(n) for n in tables.TABLE3_ORDER], tables.BASE, dev)
        parts, flips = [], []
        for spec, r in found.items():
            rep = reported_for(spec)
            if not r or spec.name == tables.BASE:
                continue
            paper_ratio = rep.latency_ms / base.latency_ms if rep and rep.latency_ms else None
            parts.append(f"{spec.name} {r['ratio_to_anchor']:.2f}" + (f" (paper {paper_ratio:.2f})" if paper_ratio else " (paper: none)"))
            if paper_ratio and (r["ratio_to_anchor"] < 1) != (paper_ratio < 1):
                flips.append(f"{spec.name} is {'faster' if r['ratio_to_anchor'] < 1 else 'slower'} than AVESFormer-R50 here, "
                             f"{'slower' if paper_ratio > 1 else 'faster'} in the paper")
        if parts:
            rows.append(f"on {dev}, each model's time over AVESFormer-R50's: " + ", ".join(parts)
                        + (". The order flips: " + "; ".join(flips) if flips else ". The order is the paper's"))
    if not rows:
        return "No latency records yet."
    return ("; ".join(rows) + ". These ratios say how the models compare on this CPU at batch 1 (Figure 3 shows where each "
            "one's time goes here), not how they compare on the paper's RTX 3090: a GPU runs the same operations at other "
            "relative costs, so neither order predicts the other (`avskit gpu-bench` measures a GPU where one is lent).")


# the ablation tables' trained rows: (table, axis, the trained base's value, the other values, the paper's J/F by value)
TRAINED_TABLES = (("Table 4", "qg", "pqg", ("none", "qg", "bqg"), "TABLE4_QG"),
                  ("Table 5", "fusion", "cross_attention", ("dissipation", "tpavi", "cha", "sigmoid"), "TABLE5_FUSION"),
                  ("Table 7", "stages", "CTT", ("TTT", "TCT", "TTC"), "TABLE7_STAGES"))


def trained_findings(records: list[dict]) -> list[str]:
    """What the trained ablation rows show, in sentences: each variant's synthetic J against the
    trained base's, in points and in units of the seed spread, beside the paper's reported
    difference on S4 and MS3, and its trained maps' localisation; measured, never mixed with reported."""
    from avsbench_kit import reported as paper

    lines = []
    for table, axis, base_value, values, reported_name in TRAINED_TABLES:
        reported = getattr(paper, reported_name)
        base = tables.trained_cells(records, make_spec(tables.TRAINED_BASE, {axis: base_value}))
        if not base:
            continue
        bj, bsd, bn = base["synthetic S4 J (measured)"], base["synthetic S4 J sd (measured)"], base["seeds (measured)"]
        for value in values:
            cells = tables.trained_cells(records, make_spec(tables.TRAINED_BASE, {axis: value}))
            if not cells:
                continue
            j, sd, n = cells["synthetic S4 J (measured)"], cells["synthetic S4 J sd (measured)"], cells["seeds (measured)"]
            diff = j - bj
            runs = tables.seed_runs(records, make_spec(tables.TRAINED_BASE, {axis: value}))
            per_seed = {seed: run["jaccard"] for seed, run in sorted(runs["runs"].items()) if "jaccard" in run}
            set_aside = [f"seed {r['seed']}'s J {100 * r['jaccard']:.1f} ({r['why']}; replaced by {100 * r['kept_jaccard']:.1f})"
                         for r in runs.get("replaced", []) if r.get("jaccard") is not None and r.get("kept_jaccard") is not None]
            set_aside += [f"seed {seed}'s only run was {run['interrupted']}: no uninterrupted run of it yet"
                          for seed, run in sorted(runs["runs"].items()) if run.get("interrupted")]
            failed = [seed for seed, v in per_seed.items() if v < tables.CONVERGED_J]
            seeds_text = (": " + ", ".join(f"{100 * v:.1f}" for v in per_seed.values()) if n > 1 else "") + (
                f"; seed {', '.join(map(str, failed))} did not learn the task (J < {tables.CONVERGED_J})" if failed and n > 1 else "")
            base_seeds = [100 * run["jaccard"] for run in tables.seed_runs(records, make_spec(tables.TRAINED_BASE, {axis: base_value}))
                          ["runs"].values() if "jaccard" in run]
            found = effect([100 * v for v in per_seed.values()], base_seeds)
            low, high = found["ci95"]
            verdict = found["words"] + (f"; 95% CI of the difference [{low:+.1f}, {high:+.1f}] (Welch's t)" if low is not None else "")
            said = []
            for subset in ("s4", "ms3"):
                if reported.get(value, {}).get(subset) and reported.get(base_value, {}).get(subset):
                    rdiff = reported[value][subset][0] - reported[base_value][subset][0]
                    said.append(f"{subset.upper()} {rdiff:+.1f}")
            agree = ""
            if said and found["measurable"]:  # a direction is compared only where there is an effect to have one
                signs = {(float(x.split()[1]) > 0) - (float(x.split()[1]) < 0) for x in said}
                measured_sign = (diff > 0) - (diff < 0)
                agree = "; the same direction as reported" if signs == {measured_sign} else \
                    "; not the direction reported" if measured_sign not in signs else "; reported directions differ by subset"
            maps = ""
            if cells.get("energy ratio, trained (measured)") is not None or cells.get("dissipated share, trained (measured)") is not None:
                er, ciou, ds = (cells.get(k) for k in ("energy ratio, trained (measured)", "cIoU@0.5, trained (measured)",
                                                       "dissipated share, trained (measured)"))
                sites = cells.get("dissipated sites, trained (measured)")
                rocs = [r["attention"]["roc_auc"] for r in tables.seed_runs(records, make_spec(tables.TRAINED_BASE, {axis: value}))["runs"]
                        .values() if (r.get("attention") or {}).get("roc_auc") is not None]
                roc = f", ROC-AUC {sum(rocs) / len(rocs):.2f}" if rocs else ""
                maps = (" Its trained maps: " + (f"energy ratio {er:.2f}{roc}, cIoU@0.5 {ciou:.2f}" if er is not None else "no localisation "
                        "(no spatial map, or every map constant)") + (f", dissipated share {ds:.2f}" if ds is not None else "")
                        + (f"; attention sites dissipated on most test frames: {sites}" if sites else "") + ".")
            gain, base_gain = (tables.late_gain(tables.train_record(records, make_spec(tables.TRAINED_BASE, {axis: v}))) for v in (value, base_value))
            if gain and base_gain:
                (g, start, end), (bg, _, _) = gain, base_gain
                maps += (f" Seed 0's validation J gained {g:+.2f} from step {start} to {end} (the base's: {bg:+.2f})"
                         + (": still climbing faster than the base, so the difference partly measures how fast it learns under "
                            "this budget, not where it ends." if g > 2 * max(bg, 0.01) else "."))
            lines.append(f"- {table}, {axis}={value}: synthetic J {j:.1f}" + (f" ± {sd:.1f}" if sd is not None else "")
                         + f" ({n} seed{'s' if n != 1 else ''}{seeds_text}) against the base's ({axis}={base_value}) {bj:.1f}"
                         + (f" ± {bsd:.1f}" if bsd is not None else "") + f" ({bn} seeds): {diff:+.1f} points, {verdict}. "
                         + (f"Reported (J, against {base_value}): {', '.join(said)}{agree}." if said else "")
                         + (f" Resumed runs (the rule: a seed's last uninterrupted run is kept where there is one): {'; '.join(set_aside)}."
                            if set_aside else "") + maps)
    return lines


def readme(records: list[dict], written: list[str], out: Path, maps_trained: bool = False) -> str:
    names = sorted({Path(p).name for p in written})
    stems = sorted({Path(p).stem for p in written if Path(p).parent.name == "figures"})
    lines = [
        "# avskit report: the paper's tables and figures, measured on this machine",
        "",
        "Generated by `avskit report` from `records.jsonl` (in this folder) and nothing else: `avskit report --results "
        "reports/records.jsonl --no-measure --out OTHER` redraws the same bytes. Columns marked *(reported)* are the AVESFormer "
        "paper's numbers (RTX 3090, trained on AVSBench); columns marked *(measured)* were measured here, with the device named. "
        "The two are never mixed in one column.",
        "",
        "Each table's latencies come from one interleaved run, named in its note (date, device, threads, rounds); a row that run "
        "did not time shows its ratio to the anchor from its own run and no milliseconds. Runs made hours apart on a shared "
        "machine differ in speed by up to 3x, so milliseconds are compared within a table, never across tables: the same model "
        "reads different milliseconds in Tables 3 and 9 because they are different runs.",
        "",
        "Every model here starts from **random weights** (no ImageNet or VGGish weights can be downloaded on the machine that made "
        "the records): parameters, FLOPs and latency do not depend on the weights; the dissipation counts of the tables' "
        "'dissipated sites' columns are those of untrained models; synthetic accuracy comes from training runs from random "
        "initial weights. " + ("Figures 4a, 7, 8 and 9 are drawn from the trained ablation checkpoints (each panel says [trained] "
                               "or [untrained])." if maps_trained else "Figures 4a, 7, 8 and 9 are drawn from random weights "
                                                                      "(untrained)."),
        "",
        "## Provenance",
        "",
        *_provenance(records),
        "",
        "## Tables",
        "",
        "Each table is written three times: `tables/NAME.md`, `tables/NAME.tex` (booktabs) and `tables/NAME.csv`. A dash means "
        "not measured yet (or not given by the paper).",
        "",
    ]
    for make in REPORT_TABLES:
        table = make(records)
        lines += [f"- **{table.name}** ({table.title}): {table.notes} *How to read it:* {TABLE_READING[table.name]}"]
    findings = trained_findings(records)
    if findings:
        lines += ["", "## What the trained ablation rows show (measured on synthetic S4)", "",
                  f"Each variant of {tables.TRAINED_BASE} trained with the ablation recipe (docs/training.md), against the trained "
                  "base; an effect counts when it exceeds twice the larger seed sd. The reported differences are the paper's, "
                  "on AVSBench with avesformer-r50 and pretrained backbones: a different model, data and budget, shown for "
                  "direction only.", "", *findings]
        areas = [r["attention"]["area"] for table, axis, base_value, values, _ in TRAINED_TABLES for v in (base_value, *values)
                 for r in (tables.seed_runs(records, make_spec(tables.TRAINED_BASE, {axis: v})).get("runs") or {}).values()
                 if (r.get("attention") or {}).get("area")]
        if areas:
            area = sum(areas) / len(areas)
            lines += ["", f"cIoU keeps the pixels above a map's median: a map with no plateau at its median keeps half the frame, "
                          f"and its cIoU cannot exceed about twice the object's share of the frame. The sounding objects cover "
                          f"{100 * area:.1f}% of the probed test frames on average, so such maps stay below a cIoU of about "
                          f"{2 * area:.2f} and cIoU@0.5 is 0 by construction on this benchmark. The energy ratio (chance 1) and "
                          "the ROC-AUC (chance 0.5; below 0.5, the map avoids the object) are the scores that can tell maps apart here."]
    lines += ["", "## Figures", "", "Each figure is a PNG and an SVG in `figures/`.", ""]
    for stem in stems:
        lines.append(f"- **{stem}**: {FIGURE_NOTES.get(stem, '')}")
    lines += [
        "",
        "## What differs from the paper's GPU, and why",
        "",
        f"- {_ratio_line(records)}",
        "- A CPU runs one operator at a time on few cores: time goes where the FLOPs are (backbones, the stride-4 mask head), "
        "while a GPU at batch 1 is bound by kernel launches and memory traffic, which is where AVSegFormer's many small "
        "transformer kernels cost most. Ratios between models therefore shrink on a CPU; the GPU section (device kind cuda) "
        "appears in every table and figure once records measured on a GPU are in the store.",
        "- `docs/performance.md` (in the avskit checkout) works the CPU-vs-GPU difference out part by part, from the "
        "per-module breakdown and FLOPs.",
        "- The models are re-implemented from the papers and the released code (REFERENCE.md); AVESFormer's code is not "
        "public, so its parameter count differs from the paper's (docs/implementation.md explains the gap part by part).",
        "- Latency here is eager PyTorch fp32, batch 1, one frame (T=1), 224x224, on synthetic inputs; the paper does not say "
        "which precision or runtime it timed.",
        "",
        "Files: " + ", ".join(f"`{n}`" for n in names if n != "README.md") + ".",
        "",
    ]
    return "\n".join(lines)
