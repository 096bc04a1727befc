"""J and F exactly as the official AVSBench evaluation computes them.

S4/MS3 (binary): ``jaccard`` and ``f_score`` return the value of one batch; the official score is
the mean of the per-batch values (``BinaryMeter``), so it depends slightly on the batch size (the
official test batch is 4). AVSS (71 classes): ``SemanticMeter`` accumulates per-class sums over
the whole test set.
"""

from __future__ import annotations

import torch
from torch import Tensor

IOU_EPS = 1e-7
PR_EPS = 1e-20
BETA2 = 0.3
THRESHOLDS = 255


def _check(logits: Tensor, target: Tensor) -> None:
    if logits.dim() != 3 or logits.shape != target.shape:
        raise ValueError(f"logits and target must both be [N, H, W], got {list(logits.shape)} and {list(target.shape)}")


def jaccard(logits: Tensor, target: Tensor) -> float:
    """Mean over the batch's frames of IoU(sigmoid(logit) > 0.5, target).

    A frame whose ground truth is empty scores its true-negative pixels over all pixels.
    """
    _check(logits, target)
    pred = (torch.sigmoid(logits.float()) > 0.5).float()
    gt = (target > 0).float()
    inter = (pred * gt).sum((1, 2))
    union = torch.maximum(pred, gt).sum((1, 2))
    empty = gt.sum((1, 2)) == 0
    pixels = float(gt.shape[-1] * gt.shape[-2])
    inter = torch.where(empty, ((1 - pred) * (1 - gt)).sum((1, 2)), inter)
    union = torch.where(empty, torch.full_like(union, pixels), union)
    return float((inter / (union + IOU_EPS)).mean())


def f_score(logits: Tensor, target: Tensor) -> float:
    """Max over 255 thresholds of the F-curve (beta^2 = 0.3) averaged over the batch's non-empty frames.

    Frames with empty ground truth are skipped; a batch with no valid frame scores 0.
    """
    _check(logits, target)
    probs = torch.sigmoid(logits.float())
    gt = (target > 0).float()
    thresholds = torch.linspace(0, 1 - 1e-10, THRESHOLDS)  # float32, as the official code builds it
    curves = []
    for frame, truth in zip(probs, gt, strict=True):
        if truth.mean() == 0:
            continue
        binary = (frame[None] >= thresholds[:, None, None]).float()  # [255, H, W]
        tp = (binary * truth).sum((1, 2))
        precision = tp / (binary.sum((1, 2)) + PR_EPS)
        recall = tp / (truth.sum() + PR_EPS)
        curve = (1 + BETA2) * precision * recall / (BETA2 * precision + recall)
        curves.append(torch.nan_to_num(curve, nan=0.0))
    if not curves:
        return 0.0
    return float(torch.stack(curves).mean(0).max())


class BinaryMeter:
    """The official S4/MS3 aggregation: the mean of per-batch J and F."""

    def __init__(self) -> None:
        self.j: list[float] = []
        self.f: list[float] = []

    def update(self, logits: Tensor, target: Tensor) -> None:
        self.j.append(jaccard(logits, target))
        self.f.append(f_score(logits, target))

    def compute(self) -> dict[str, float]:
        if not self.j:
            raise ValueError("no batch was evaluated")
        return {"jaccard": sum(self.j) / len(self.j), "f_score": sum(self.f) / len(self.f), "batches": len(self.j)}


class SemanticMeter:
    """AVSS: per-class IoU and F from class histograms, summed over all frames.

    Predictions are the argmax over classes. A class counts in a frame when it occurs in the
    prediction or the ground truth; the final scores average sum / count over **all** classes, a
    class never seen scoring 0.
    """

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.iou_sum = torch.zeros(num_classes, dtype=torch.float64)
        self.f_sum = torch.zeros(num_classes, dtype=torch.float64)
        self.count = torch.zeros(num_classes, dtype=torch.float64)

    def update(self, logits: Tensor, target: Tensor) -> None:
        if logits.dim() != 4 or logits.shape[1] != self.num_classes or logits.shape[0] != target.shape[0] or logits.shape[2:] != target.shape[1:]:
            raise ValueError(f"expected logits [N, {self.num_classes}, H, W] and target [N, H, W], got {list(logits.shape)} and {list(target.shape)}")
        c = self.num_classes
        pred = logits.argmax(1)
        for p, t in zip(pred, target, strict=True):
            # as the official code: pixels labelled < 0 are dropped from the prediction too; labels
            # >= C are outside the ground-truth histogram but their predictions still count
            keep = t >= 0
            p, t = p[keep], t[keep]
            area_pred = torch.bincount(p, minlength=c).double()
            area_gt = torch.bincount(t[t < c], minlength=c).double()
            area_inter = torch.bincount(p[p == t], minlength=c).double()
            area_union = area_pred + area_gt - area_inter
            self.iou_sum += area_inter / (area_union + 2.220446049250313e-16)
            precision, recall = area_inter / area_pred, area_inter / area_gt
            self.f_sum += torch.nan_to_num((1 + BETA2) * precision * recall / (BETA2 * precision + recall), nan=0.0)
            self.count += (area_union > 0).double()

    def compute(self) -> dict[str, float]:
        miou = torch.nan_to_num(self.iou_sum / self.count, nan=0.0).mean()
        f = torch.nan_to_num(self.f_sum / self.count, nan=0.0).mean()
        return {"miou": float(miou), "f_score": float(f)}
