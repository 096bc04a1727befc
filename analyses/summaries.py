"""Records read back as a few numbers, shared by measuring (compare's summary) and rendering (the
tables and figures): pure functions of records, no models, no I/O."""

from __future__ import annotations

import statistics
from typing import Any


def trained_attention(record: dict) -> dict[str, Any]:
    """One probed checkpoint in a few numbers: over the model's audio-to-visual sites, the share of
    (site, frame) pairs flagged dissipated; over all its attention sites, how many are flagged on at
    least half the frames (a dissipation the training made or kept: QG's queries that come to attend
    alike); of the last audio-to-visual site (the finest decoder map, Figure 8's), the energy ratio,
    ROC-AUC, cIoU@0.5 and area-matched cIoU of its maps' per-frame mean and, where a query was chosen
    on val frames, that query's test scores; or that it has no spatial map."""
    declared = [s for s in record["sites"] if s.get("localisation") is not None]
    scored = [s for s in declared if isinstance(s["localisation"], dict)]
    out: dict[str, Any] = {"dissipated_share": statistics.fmean([s["dissipated_share"] for s in declared]) if declared else None,
                           "dissipated_sites": sum((s.get("dissipated_share") or 0) >= 0.5 for s in record["sites"]),
                           "sites": len(record["sites"])}
    if scored:
        last = scored[-1]["localisation"]["mean"]
        out.update(site=scored[-1]["site"], energy_ratio=last["energy_ratio"]["mean"], ciou_at_05=last["ciou@0.5"], auc=last["auc"],
                   roc_auc=(last.get("roc_auc") or {}).get("mean"), area=last.get("area"), degenerate=last["degenerate"], frames=last["n"])
        if "ciou_area" in last:  # probes since issue #28: the area-matched cIoU, and a query chosen on val frames
            out["ciou_area"] = last["ciou_area"]["mean"]
        chosen = scored[-1]["localisation"].get("selected")
        if chosen:
            out.update(selected_query=chosen["query"], selected_roc_auc=chosen["roc_auc"]["mean"],
                       selected_energy_ratio=chosen["energy_ratio"]["mean"], selected_ciou_area=(chosen.get("ciou_area") or {}).get("mean"))
    elif declared:
        out.update(site=declared[-1]["site"], localisation=declared[-1]["localisation"])
    return out


def effect(variant: list[float], base: list[float]) -> dict[str, Any]:
    """A variant's effect on a score against the base's, over seeds: the difference of the means, its
    Welch 95% CI, the larger of the two seed sds, and whether it is measurable: only when the
    difference is larger than that sd and its CI excludes 0. Anything less reads "no measurable effect"
    (and is not compared with a reported direction)."""
    from avsbench_kit.stats import difference_ci, mean_sd

    found = difference_ci(variant, base)
    sds = [sd for sd in (mean_sd(variant)[1], mean_sd(base)[1]) if sd is not None]
    spread = max(sds) if sds else None
    low, high = found["ci95"]
    crosses = low is None or low <= 0 <= high
    measurable = found["diff"] is not None and spread is not None and abs(found["diff"]) > spread and not crosses
    if found["diff"] is None:
        words = "not trained"
    elif spread is None or low is None:
        words = "one seed on a side: no spread to judge it against"
    elif measurable:
        words = f"{'higher' if found['diff'] > 0 else 'lower'} than the base, beyond the larger seed sd ({spread:.3g}) and with a CI that excludes 0"
    else:
        why = "inside the larger seed sd" if abs(found["diff"]) <= spread else "its CI crosses 0"
        words = f"no measurable effect ({why})"
    return {**found, "spread": spread, "measurable": measurable, "words": words}


def interrupted(provenance: dict[str, Any]) -> str | None:
    """Why a training run's result may not be that of one uninterrupted run, or None. A run resumed
    at the thread count it started with is bit-exact; at another count floats are summed in another
    order (records before 2026-12-05 do not say which)."""
    if not provenance.get("resumed_from") or provenance.get("threads_changed") is False:
        return None
    if provenance.get("threads_changed"):
        return f"resumed at step {provenance['resumed_from']} with another thread count"
    return f"resumed at step {provenance['resumed_from']}, thread counts not recorded"


def kept_run(candidates: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The rule for runs that went wrong: of one (variant, seed)'s runs, oldest first, keep the last
    uninterrupted one when there is one, else the last; the others are replaced, each with its why."""
    clean = [c for c in candidates if not c["interrupted"]]
    kept = (clean or candidates)[-1]
    others = [{**c, "why": c["interrupted"] or "an earlier run of the same seed"} for c in candidates if c is not kept]
    return kept, others
