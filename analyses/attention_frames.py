"""Attention over many frames: per site, how often it dissipates and whether its audio-to-visual maps
point at the object that sounds (``avskit dissipation MODEL --data ...``; issue #16).

One model is built, then each of N test frames (spread evenly over the test split) goes through one
captured forward pass. Every attention call is summarised over the frames: the share of frames it is
flagged dissipated in, its normalised entropy and row diversity (mean and 95% CI). The sites a model
declares as audio-to-visual (``audio_visual_sites``: the fusion maps figures 7, 8 and 9 draw) are also
scored against the frame's ground truth with :func:`avsbench_kit.probes.localisation.score_map`:
the sounding object's mask (S4, MS3), the pixels of any class (AVSS). A site with several maps
(PQG's 16 queries, heads averaged) has each map scored; the summary gives their per-frame mean and
the best query. Channel attention has no spatial map and says so.
"""

from __future__ import annotations

import fnmatch
import math
import statistics
from typing import Any, Callable

import torch

from avsbench_kit import UserError, build_from_spec
from avsbench_kit.probes import capture_attention
from avsbench_kit.probes.capture import AttentionRecord
from avsbench_kit.probes.localisation import SUMMARISED, score_map, summarise
from avsbench_kit.probes.maps import NO_SPATIAL_MAP, query_maps
from avsbench_kit.spec import ModelSpec
from avsbench_kit.stats import mean_ci


def declared_sites(model) -> tuple[tuple[str, str], ...]:
    """The model's audio-to-visual sites: (glob pattern over site names, orientation)."""
    return tuple(getattr(model, "audio_visual_sites", ()))


def site_maps(record: AttentionRecord, orientation: str) -> list[torch.Tensor] | str:
    """The ``[h, w]`` maps of one recorded call (heads averaged after each head's map is normalised by
    its absolute sum over the pixels), or why there are none."""
    if record.kind == "cha":
        return NO_SPATIAL_MAP
    if orientation == "pixels-audio" and record.query_stride != 1:
        return "pixel rows subsampled in the capture"
    maps = query_maps(record.weights[0].float(), orientation)  # [heads, rows, keys] -> [queries, side, side]
    return maps if isinstance(maps, str) else list(maps)


def ground_truth(mask: torch.Tensor, subset: str) -> torch.Tensor:
    """The pixels a map should point at: the sounding object(s) (S4, MS3), any class (AVSS)."""
    return (mask > 0).float() if subset == "avss" else (mask > 0.5).float()


def spread_frames(n_total: int, wanted: int) -> list[int]:
    if wanted >= n_total:
        return list(range(n_total))
    return sorted({round(i * (n_total - 1) / (wanted - 1)) for i in range(wanted)}) if wanted > 1 else [0]


def _query_mean(scores: list[dict]) -> dict:
    """One frame's maps of one site as one score: each value averaged over the non-degenerate maps."""
    usable = [s for s in scores if not s["degenerate"]]
    if not usable:
        return {**{k: math.nan for k in ("energy", *SUMMARISED)}, "area": scores[0]["area"], "degenerate": True}
    out = {k: statistics.fmean([s[k] for s in usable if not math.isnan(s[k])] or [math.nan]) for k in ("energy", *SUMMARISED)}
    return {**out, "area": scores[0]["area"], "degenerate": False}


def _clean(value):
    """NaN -> None all the way down (JSON has no NaN)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def probe_frames(spec: ModelSpec, dataset, subset: str, frames: int = 64,
                 on_frame: Callable[[int, int], None] | None = None, select_on=None) -> dict[str, Any]:
    """Capture every attention call of ``spec`` on ``frames`` test frames of ``dataset`` (an avskit
    frames dataset: image, audio, mask, info) and summarise each site over them. With ``select_on``
    (the val split), a site with several query maps has one chosen first, on as many val frames:
    the highest mean ROC-AUC there, ties to the lowest index; its test scores are ``selected``."""
    if frames < 1:
        raise UserError(f"--frames must be at least 1, got {frames}")
    if len(dataset) == 0:
        raise UserError("the test split has no frames")
    model = build_from_spec(spec)
    chosen = spread_frames(len(dataset), frames)
    picks = None
    if select_on is not None and len(select_on):
        val = spread_frames(len(select_on), frames)
        picks = select_queries(probe_model(model, select_on, subset, val), len(val))
    sites = probe_model(model, dataset, subset, chosen, on_frame, picks)
    return _clean({"model": spec.label, "spec": spec.to_dict(), "subset": subset, "frames": len(chosen), "frame_indices": chosen,
                   "sites": sites})


def select_queries(val_sites: list[dict], val_frames: int) -> dict[tuple[str, int], dict[str, Any]]:
    """Per (site, call) with several query maps: the query with the highest mean ROC-AUC over the val
    frames (ties to the lowest index; a query whose maps were all constant never wins)."""
    picks = {}
    for site in val_sites:
        loc = site.get("localisation")
        if not isinstance(loc, dict) or loc["maps"] < 2:
            continue
        aucs = [-math.inf if a is None or math.isnan(a) else a for a in loc["query_roc_auc"]]
        best = max(range(len(aucs)), key=lambda q: (aucs[q], -q))
        picks[(site["site"], site["call"])] = {"query": best, "chosen_on": "val", "val_frames": val_frames,
                                               "val_roc_auc": None if aucs[best] == -math.inf else aucs[best]}
    return picks


def probe_model(model, dataset, subset: str, chosen: list[int], on_frame: Callable[[int, int], None] | None = None,
                picks: dict | None = None) -> list[dict]:
    """The per-site summaries of a built model over the frames ``chosen`` of ``dataset`` (its weights,
    mode and the RNG are left as they were: a training run probes itself with this); ``picks`` are
    the queries chosen beforehand on other frames (:func:`select_queries`)."""
    was_training = model.training
    model.eval()
    declared = declared_sites(model)
    per_site: dict[tuple[str, int], dict[str, Any]] = {}
    order: list[tuple[str, int]] = []
    for done, index in enumerate(chosen):
        image, audio, mask, _info = dataset[index]
        target = ground_truth(mask, subset)
        with torch.inference_mode(), capture_attention(model) as recorder:
            model(image[None], audio[None])
        for record in recorder.records:
            key = (record.site, record.call)
            if key not in per_site:
                order.append(key)
                orientation = next((o for pattern, o in declared if fnmatch.fnmatch(record.site, pattern)), None)
                per_site[key] = {"site": record.site, "call": record.call, "kind": record.kind, "n_queries": record.n_queries,
                                 "n_keys": record.n_keys, "orientation": orientation, "dissipated": [], "entropy": [],
                                 "diversity": [], "maps": None, "why": None}
            entry = per_site[key]
            m = record.metrics
            entry["dissipated"].append(bool(m.dissipated))
            entry["entropy"].append(m.entropy_norm)
            entry["diversity"].append(m.row_diversity)
            if entry["orientation"] is not None:
                maps = site_maps(record, entry["orientation"])
                if isinstance(maps, str):
                    entry["why"] = maps
                else:
                    scores = [score_map(m_, target) for m_ in maps]
                    entry["maps"] = entry["maps"] or [[] for _ in scores]
                    for q, s in enumerate(scores):
                        entry["maps"][q].append(s)
        if on_frame:
            on_frame(done + 1, len(chosen))
    model.train(was_training)
    return _clean([_summary(per_site[key], (picks or {}).get(key)) for key in order])


def compact(sites: list[dict]) -> list[dict]:
    """A few numbers per audio-to-visual site, for a training run's curve: dissipated share, row
    diversity, and the energy ratio of its maps' per-frame mean (None without a spatial map)."""
    out = []
    for s in sites:
        if s["localisation"] is None:
            continue
        loc = s["localisation"]
        out.append({"site": s["site"], "call": s["call"], "dissipated_share": s["dissipated_share"],
                    "row_diversity": s["row_diversity"]["mean"],
                    "energy_ratio": loc["mean"]["energy_ratio"]["mean"] if isinstance(loc, dict) else None})
    return out


def _summary(entry: dict[str, Any], pick: dict[str, Any] | None = None) -> dict[str, Any]:
    out = {k: entry[k] for k in ("site", "call", "kind", "n_queries", "n_keys")}
    out["frames"] = len(entry["dissipated"])
    out["dissipated_share"] = sum(entry["dissipated"]) / len(entry["dissipated"])
    out["entropy_norm"] = mean_ci(entry["entropy"])
    out["row_diversity"] = mean_ci(entry["diversity"])
    if entry["orientation"] is None:
        out["localisation"] = None  # not an audio-to-visual site of this model
    elif entry["maps"] is None:
        out["localisation"] = entry["why"] or NO_SPATIAL_MAP
    else:
        per_query = [summarise(scores) for scores in entry["maps"]]
        # the mean over queries: for maps normalised across the queries (each pixel's weights sum to 1
        # over them) it leans toward chance by construction; it says whether any query points, not which
        mean = summarise([_query_mean(list(frame)) for frame in zip(*entry["maps"], strict=True)])
        out["localisation"] = {"orientation": entry["orientation"], "maps": len(per_query), "mean": mean,
                               "query_roc_auc": [q["roc_auc"]["mean"] for q in per_query]}
        if pick is not None:  # chosen on other frames before these were scored: never in-sample
            out["localisation"]["selected"] = {**pick, **per_query[pick["query"]]}
    return out
