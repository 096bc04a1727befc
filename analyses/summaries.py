"""Records read back as a few numbers, shared by measuring (compare's summary) and rendering (the
tables and figures): pure functions of records, no models, no I/O."""

from __future__ import annotations

import statistics
from typing import Any


def trained_attention(record: dict) -> dict[str, Any]:
    """One probed checkpoint in a few numbers: over the model's audio-to-visual sites, the share of
    (site, frame) pairs flagged dissipated; over all its attention sites, how many are flagged on at
    least half the frames (a dissipation the training made or kept: QG's queries that come to attend
    alike); of the last audio-to-visual site (the finest decoder map, Figure 8's), the energy ratio and
    cIoU@0.5 of its maps' per-frame mean, or that it has no spatial map."""
    declared = [s for s in record["sites"] if s.get("localisation") is not None]
    scored = [s for s in declared if isinstance(s["localisation"], dict)]
    out: dict[str, Any] = {"dissipated_share": statistics.fmean([s["dissipated_share"] for s in declared]) if declared else None,
                           "dissipated_sites": sum((s.get("dissipated_share") or 0) >= 0.5 for s in record["sites"]),
                           "sites": len(record["sites"])}
    if scored:
        last = scored[-1]["localisation"]["mean"]
        out.update(site=scored[-1]["site"], energy_ratio=last["energy_ratio"]["mean"], ciou_at_05=last["ciou@0.5"], auc=last["auc"],
                   roc_auc=(last.get("roc_auc") or {}).get("mean"), area=last.get("area"), degenerate=last["degenerate"], frames=last["n"])
    elif declared:
        out.update(site=declared[-1]["site"], localisation=declared[-1]["localisation"])
    return out
