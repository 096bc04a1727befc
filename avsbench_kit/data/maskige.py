"""COMBO's Maskige: a class-agnostic mask image, one colour per instance, the third input of COMBO
(issue #31). The release makes it offline from Semantic-SAM's masks; this module renders it from any
instance masks exactly as the release's `avs_tools/pre_mask2rgb` does:

1. the masks are ordered by area, smallest first (numpy's default argsort, as the release);
2. each pixel takes the id (rank + 1) of the first mask in that order that covers it, 0 elsewhere,
   so a small object drawn over a large one keeps its own colour;
3. the id image is resized to ``size`` with nearest-neighbour sampling (PIL);
4. id k is drawn in colour k of the ADE20K palette (id 0, no mask: grey 120, 120, 120).

The synthetic benchmark renders one from its own object masks; AVSBench readers take the release's
precomputed PNGs. Producing the Maskige (Semantic-SAM on a GPU) is not part of COMBO's latency.
"""

from __future__ import annotations

import numpy as np

from avsbench_kit.errors import UserError

ADE_PALETTE = (  # the ADE20K palette, 150 RGB triples, as the release lists it
    120, 120, 120, 180, 120, 120, 6, 230, 230, 80, 50, 50, 4, 200, 3, 120, 120, 80, 140, 140, 140, 204, 5, 255, 230, 230, 230, 4, 250, 7,
    224, 5, 255, 235, 255, 7, 150, 5, 61, 120, 120, 70, 8, 255, 51, 255, 6, 82, 143, 255, 140, 204, 255, 4, 255, 51, 7, 204, 70, 3,
    0, 102, 200, 61, 230, 250, 255, 6, 51, 11, 102, 255, 255, 7, 71, 255, 9, 224, 9, 7, 230, 220, 220, 220, 255, 9, 92, 112, 9, 255,
    8, 255, 214, 7, 255, 224, 255, 184, 6, 10, 255, 71, 255, 41, 10, 7, 255, 255, 224, 255, 8, 102, 8, 255, 255, 61, 6, 255, 194, 7,
    255, 122, 8, 0, 255, 20, 255, 8, 41, 255, 5, 153, 6, 51, 255, 235, 12, 255, 160, 150, 20, 0, 163, 255, 140, 140, 140, 250, 10, 15,
    20, 255, 0, 31, 255, 0, 255, 31, 0, 255, 224, 0, 153, 255, 0, 0, 0, 255, 255, 71, 0, 0, 235, 255, 0, 173, 255, 31, 0, 255,
    11, 200, 200, 255, 82, 0, 0, 255, 245, 0, 61, 255, 0, 255, 112, 0, 255, 133, 255, 0, 0, 255, 163, 0, 255, 102, 0, 194, 255, 0,
    0, 143, 255, 51, 255, 0, 0, 82, 255, 0, 255, 41, 0, 255, 173, 10, 0, 255, 173, 255, 0, 0, 255, 153, 255, 92, 0, 255, 0, 255,
    255, 0, 245, 255, 0, 102, 255, 173, 0, 255, 0, 20, 255, 184, 184, 0, 31, 255, 0, 255, 61, 0, 71, 255, 255, 0, 204, 0, 255, 194,
    0, 255, 82, 0, 10, 255, 0, 112, 255, 51, 0, 255, 0, 194, 255, 0, 122, 255, 0, 255, 163, 255, 153, 0, 0, 255, 10, 255, 112, 0,
    143, 255, 0, 82, 0, 255, 163, 255, 0, 255, 235, 0, 8, 184, 170, 133, 0, 255, 0, 255, 92, 184, 0, 255, 255, 0, 31, 0, 184, 255,
    0, 214, 255, 255, 0, 112, 92, 255, 0, 0, 224, 255, 112, 224, 255, 70, 184, 160, 163, 0, 255, 153, 0, 255, 71, 255, 0, 255, 0, 163,
    255, 204, 0, 255, 0, 143, 0, 255, 235, 133, 255, 0, 255, 0, 235, 245, 0, 255, 255, 0, 122, 255, 245, 0, 10, 190, 212, 214, 255, 0,
    0, 204, 255, 20, 0, 255, 255, 255, 0, 0, 153, 255, 0, 41, 255, 0, 255, 204, 41, 0, 255, 41, 255, 0, 173, 0, 255, 0, 245, 255,
    71, 0, 255, 122, 0, 255, 0, 255, 184, 0, 92, 255, 184, 255, 0, 0, 133, 255, 255, 214, 0, 25, 194, 194, 102, 255, 0, 92, 0, 255,)
MAX_INSTANCES = 255  # ids are uint8


def instance_ids(masks: np.ndarray) -> np.ndarray:
    """[N, H, W] boolean masks -> [H, W] uint8 ids: smallest area first, the first covering mask wins."""
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise UserError(f"a Maskige is made from instance masks [N, H, W], got shape {tuple(masks.shape)}")
    if len(masks) > MAX_INSTANCES:
        raise UserError(f"a Maskige holds at most {MAX_INSTANCES} instances, got {len(masks)}")
    masks = masks.astype(np.uint8)
    ids = np.zeros(masks.shape[1:], dtype=np.uint8)
    for rank, index in enumerate(np.argsort(masks.sum(axis=(1, 2)))):
        ids = np.where(ids == 0, masks[index] * np.uint8(rank + 1), ids)
    return ids


def render_maskige(masks: np.ndarray, size: int = 224) -> np.ndarray:
    """[N, H, W] instance masks -> the [size, size, 3] uint8 RGB Maskige (no mask at all: uniform grey)."""
    from PIL import Image

    masks = np.asarray(masks)
    ids = instance_ids(masks) if len(masks) else np.zeros(masks.shape[1:] if masks.ndim == 3 else (size, size), dtype=np.uint8)
    image = Image.fromarray(ids).resize((size, size), Image.NEAREST)
    image.putpalette(list(ADE_PALETTE))
    return np.asarray(image.convert("RGB"))
