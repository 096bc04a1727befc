"""Does an audio-to-visual attention map point at the object that sounds? Scores of one map against
the sounding object's mask, with the conventions of the sound-source-localisation papers (LVS,
EZ-VSL; REFERENCE.md section 11), and their summary over many frames.

One map (:func:`score_map`): the map ``[h, w]`` (any real values: softmax weights, cosine
similarities) is resized to the mask's ``[H, W]`` bilinearly with ``align_corners=False`` and
min-max normalised to [0, 1]; call it ``m``. EZ-VSL resizes with ``align_corners=True``, which
stretches the map so that its corner samples sit on the image's corner pixels; with
``align_corners=False`` each map cell covers the image region it was computed from (the geometry
of the strided features), so this project uses it.

- ``degenerate``: the map's range is at most 1e-6 of its largest magnitude. A constant map
  localises nothing (a dissipated fusion shows up here): every score is NaN, and the dataset
  summary counts such frames instead of averaging them.
- ``area``: the mask's share of the image.
- ``energy``: sum(m * mask) / sum(m), the share of the map's mass on the object;
  ``energy_ratio`` = energy / area, so chance reads 1.
- ``ciou``: with A = (m > median(m)), strictly above as in LVS (torch's median: the lower middle
  value), sum(A * mask) / (sum(mask) + sum(A * (1 - mask))). EZ-VSL keeps ``>=``, which on a map
  with plateaus selects everything.
- ``ciou_area``: the area-matched cIoU, for objects much smaller than half the frame (where the
  median threshold bounds ``ciou`` near twice their area): A = the k = round(sum(mask)) pixels of m
  with the largest values (``argsort(m.flatten(), descending=True, stable=True)[:k]``: ties to the
  first in raster order), |A & G| / |A | G|; NaN for an empty or full mask.
- ``pointing_hit``: 1.0 when the first argmax of m lies on the object.
- ``roc_auc``: the pixels' ROC-AUC of m against the mask, ties counted half; NaN for an empty or
  full mask.
"""

from __future__ import annotations

import math
import statistics
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor

from avsbench_kit.stats import mean_ci

KEYS = ("energy", "energy_ratio", "ciou", "ciou_area", "pointing_hit", "roc_auc", "area", "degenerate")
CIOU_THRESHOLDS = [round(0.05 * i, 2) for i in range(21)]  # 0, 0.05, ..., 1: the SSL papers' AUC
SUMMARISED = ("energy_ratio", "ciou", "ciou_area", "pointing_hit", "roc_auc")


def score_map(attention_map: Tensor, mask: Tensor) -> dict:
    """The localisation scores of one map against one 0/1 mask (keys: :data:`KEYS`)."""
    if attention_map.dim() != 2 or mask.dim() != 2:
        raise ValueError(f"score_map takes a [h, w] map and an [H, W] mask, got {list(attention_map.shape)} and {list(mask.shape)}")
    raw = attention_map.detach().double()
    target = (mask.detach() > 0.5).double()
    area = target.mean().item()
    scale = max(raw.abs().max().item(), 1e-12)
    if (raw.max() - raw.min()).item() <= 1e-6 * scale:
        return {"energy": math.nan, "energy_ratio": math.nan, "ciou": math.nan, "ciou_area": math.nan, "pointing_hit": math.nan,
                "roc_auc": math.nan, "area": area, "degenerate": True}
    resized = F.interpolate(raw[None, None], size=target.shape, mode="bilinear", align_corners=False)[0, 0]
    m = (resized - resized.min()) / (resized.max() - resized.min())
    energy = (m * target).sum().item() / m.sum().item()
    selected = (m > m.flatten().median()).double()
    ciou = (selected * target).sum().item() / (target.sum().item() + (selected * (1 - target)).sum().item())
    peak = int(m.flatten().argmax())
    return {"energy": energy, "energy_ratio": energy / area if area > 0 else math.nan, "ciou": ciou, "ciou_area": _area_matched_ciou(m, target),
            "pointing_hit": float(target.flatten()[peak].item() > 0), "roc_auc": _roc_auc(m.flatten(), target.flatten()),
            "area": area, "degenerate": False}


def _area_matched_ciou(m: Tensor, target: Tensor) -> float:
    """|A & G| / |A | G| with A the round(sum(G)) largest pixels of m (stable order on ties)."""
    k = round(target.sum().item())
    if k == 0 or k == target.numel():
        return math.nan
    chosen = torch.zeros(m.numel(), dtype=torch.bool)
    chosen[torch.argsort(m.flatten(), descending=True, stable=True)[:k]] = True
    truth = target.flatten() > 0
    return (chosen & truth).sum().item() / (chosen | truth).sum().item()


def _roc_auc(scores: Tensor, labels: Tensor) -> float:
    """P(score of an object pixel > score of a background pixel) + P(equal) / 2, by average ranks."""
    positives = int(labels.sum().item())
    negatives = labels.numel() - positives
    if positives == 0 or negatives == 0:
        return math.nan
    order = torch.argsort(scores, stable=True)
    ranks = torch.empty_like(scores)
    ranks[order] = torch.arange(1, scores.numel() + 1, dtype=scores.dtype)
    uniques, inverse = torch.unique(scores, return_inverse=True)  # ties share their average rank
    mean_rank = torch.zeros(len(uniques), dtype=scores.dtype).index_add_(0, inverse, ranks)
    mean_rank /= torch.bincount(inverse, minlength=len(uniques)).to(scores.dtype)
    rank_sum = mean_rank[inverse][labels > 0].sum().item()
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def summarise(scores: Iterable[dict]) -> dict:
    """One site over many frames: n, the degenerate count, mean and 95% CI (Student's t for n frames) of
    energy_ratio, ciou, pointing_hit and roc_auc over the non-degenerate frames, ciou@0.5, the AUC of
    the success rate over cIoU thresholds 0..1, and the mean area."""
    scores = list(scores)
    usable = [s for s in scores if not s["degenerate"]]
    summary: dict = {"n": len(scores), "degenerate": len(scores) - len(usable),
                     "area": _mean([s["area"] for s in scores])}
    for key in SUMMARISED:
        stat = mean_ci(s.get(key) for s in usable)  # (scores made before a key existed lack it)
        summary[key] = {"mean": _nan(stat["mean"]), "ci95": [_nan(b) for b in stat["ci95"]], "n": stat["n"]}
    cious = [s["ciou"] for s in usable]
    success = [sum(c >= t for c in cious) / len(cious) if cious else math.nan for t in CIOU_THRESHOLDS]
    summary["ciou@0.5"] = success[CIOU_THRESHOLDS.index(0.5)]
    matched = [s["ciou_area"] for s in usable if not math.isnan(s.get("ciou_area", math.nan))]
    summary["ciou_area@0.5"] = sum(c >= 0.5 for c in matched) / len(matched) if matched else math.nan
    summary["auc"] = sum((success[i] + success[i + 1]) / 2 * (CIOU_THRESHOLDS[i + 1] - CIOU_THRESHOLDS[i])
                         for i in range(len(CIOU_THRESHOLDS) - 1)) if cious else math.nan
    return summary


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else math.nan


def _nan(value: float | None) -> float:
    return math.nan if value is None else value
