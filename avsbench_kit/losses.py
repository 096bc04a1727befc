"""The paper's losses (appendix A.2.1): IoU (weight 1.8 on S4/MS3, 1.0 on AVSS) + Dice (1.0) on the
sigmoid mask, plus the auxiliary "mix" loss (0.1) on the channel mean of the mask feature;
cross-entropy is AVSS's main loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

DICE_EPS = 0.002
LAMBDA_IOU = {"s4": 1.8, "ms3": 1.8, "avss": 1.0}
LAMBDA_DICE = 1.0
LAMBDA_AUX = 0.1


def dice_loss(probs: Tensor, target: Tensor) -> Tensor:
    """``1 - 2 sum(p g) / (sum(p^2) + sum(g^2) + 0.002)`` per frame, averaged."""
    inter = (probs * target).flatten(1).sum(1)
    denominator = (probs * probs).flatten(1).sum(1) + (target * target).flatten(1).sum(1) + DICE_EPS
    return (1 - 2 * inter / denominator).mean()


def iou_loss(probs: Tensor, target: Tensor) -> Tensor:
    """Soft IoU: ``1 - sum(p g) / sum(p + g - p g)`` per frame, averaged (1 for an empty frame predicted empty is 0 loss)."""
    inter = (probs * target).flatten(1).sum(1)
    union = (probs + target - probs * target).flatten(1).sum(1)
    return (1 - (inter + 1.0) / (union + 1.0)).mean()


def binary_loss(logits: Tensor, target: Tensor, subset: str) -> Tensor:
    probs = torch.sigmoid(logits)
    return LAMBDA_IOU[subset] * iou_loss(probs, target) + LAMBDA_DICE * dice_loss(probs, target)


def segmentation_loss(logits: Tensor, target: Tensor, subset: str, mask_feature: Tensor | None = None) -> Tensor:
    """The paper's loss for ``logits [B, C, H, W]`` and ``target [B, H, W]`` (binary float or class indices)."""
    if subset == "avss":
        main = F.cross_entropy(logits, target.long(), ignore_index=255)
        binary_target = (target > 0).float()
    else:
        main = binary_loss(logits[:, 0], target, subset)
        binary_target = target
    if mask_feature is None:
        return main
    aux_logits = F.interpolate(mask_feature.mean(1, keepdim=True), size=target.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    return main + LAMBDA_AUX * binary_loss(aux_logits, binary_target, "s4" if subset != "avss" else "avss")
