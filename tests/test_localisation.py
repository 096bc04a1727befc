"""Localisation scores of attention maps (issue #16, item 1), each checked against an independent
computation in numpy: bilinear resizing by hand, pairwise ROC-AUC, the lower median."""

import math

import numpy as np
import pytest
import torch

from avsbench_kit.probes.localisation import KEYS, score_map, summarise


def resize_by_hand(grid: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Bilinear with half-pixel centres (align_corners=False), edges clamped."""
    h, w = grid.shape
    ys = np.clip((np.arange(out_h) + 0.5) * h / out_h - 0.5, 0, h - 1)
    xs = np.clip((np.arange(out_w) + 0.5) * w / out_w - 0.5, 0, w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x1] * fx
    bottom = grid[y1][:, x0] * (1 - fx) + grid[y1][:, x1] * fx
    return top * (1 - fy) + bottom * fy


def scores_by_hand(grid: np.ndarray, mask: np.ndarray) -> dict:
    m = resize_by_hand(grid, *mask.shape)
    m = (m - m.min()) / (m.max() - m.min())
    g = mask.astype(float)
    lower_median = np.sort(m.ravel())[(m.size - 1) // 2]
    a = (m > lower_median).astype(float)
    pos, neg = m[g > 0], m[g == 0]
    pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    energy = (m * g).sum() / m.sum()
    return {"energy": energy, "energy_ratio": energy / g.mean(), "ciou": (a * g).sum() / (g.sum() + (a * (1 - g)).sum()),
            "pointing_hit": float(g.ravel()[np.argmax(m.ravel())] > 0), "roc_auc": pairs, "area": g.mean()}


def object_mask(size: int = 56) -> np.ndarray:
    mask = np.zeros((size, size))
    mask[10:30, 20:44] = 1  # area 0.153
    return mask


def test_a_map_equal_to_the_mask_scores_perfectly():
    mask = torch.tensor(object_mask())
    scores = score_map(mask.clone(), mask)
    assert set(scores) == set(KEYS) and scores["degenerate"] is False
    assert scores["ciou"] == 1.0 and scores["pointing_hit"] == 1.0 and scores["roc_auc"] == 1.0 and scores["ciou_area"] == 1.0
    assert scores["energy"] == pytest.approx(1.0) and scores["energy_ratio"] == pytest.approx(1 / mask.mean().item())


def test_a_constant_map_is_degenerate():
    scores = score_map(torch.full((7, 7), 0.25), torch.tensor(object_mask()))
    assert scores["degenerate"] is True and scores["area"] == pytest.approx(object_mask().mean())
    assert all(math.isnan(scores[k]) for k in ("energy", "energy_ratio", "ciou", "ciou_area", "pointing_hit", "roc_auc"))
    assert score_map(torch.full((7, 7), 3.0) + 1e-9 * torch.rand(7, 7), torch.tensor(object_mask()))["degenerate"] is True


@pytest.mark.parametrize("offset", [0.0, -1.5], ids=["positive", "cosine-like negative"])
def test_a_coarse_map_is_resized_and_scored_as_specified(offset):
    gen = np.random.default_rng(3)
    grid = gen.normal(size=(7, 7)) * 0.2 + offset
    grid[2:4, 3:5] += 0.6  # the object's cells light up, not perfectly
    mask = object_mask()
    expected = scores_by_hand(grid, mask)
    got = score_map(torch.tensor(grid), torch.tensor(mask))
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    assert 0.5 < got["roc_auc"] <= 1 and got["energy_ratio"] > 1  # it does point at the object


def ciou_area_by_hand(m: np.ndarray, g: np.ndarray) -> float:
    """The k = round(sum(g)) largest pixels, ties to the first in raster order (a stable sort of -m)."""
    k = int(round(g.sum()))
    chosen = np.zeros(m.size, dtype=bool)
    chosen[np.argsort(-m.ravel(), kind="stable")[:k]] = True
    truth = g.ravel() > 0
    return (chosen & truth).sum() / (chosen | truth).sum()


def test_the_area_matched_ciou_takes_the_masks_area_and_breaks_ties_in_raster_order():
    mask = np.zeros((8, 8))
    mask[2:4, 2:5] = 1  # 6 pixels
    grid = np.zeros((8, 8))
    grid[2, 2:5] = 1.0  # 3 of the object's pixels at the top ...
    grid[6, 0:6] = 0.5  # ... then 6 tied background pixels: the first three in raster order are taken
    scores = score_map(torch.tensor(grid), torch.tensor(mask))
    assert scores["ciou_area"] == pytest.approx(ciou_area_by_hand(grid, mask)) == pytest.approx(3 / 9)
    rng = np.random.default_rng(3)
    coarse, big = rng.random((7, 7)), object_mask()
    assert score_map(torch.tensor(coarse), torch.tensor(big))["ciou_area"] == pytest.approx(
        ciou_area_by_hand((lambda m: (m - m.min()) / (m.max() - m.min()))(resize_by_hand(coarse, 56, 56)), big))
    assert math.isnan(score_map(torch.tensor(grid), torch.zeros(8, 8))["ciou_area"])  # an empty mask
    assert math.isnan(score_map(torch.tensor(grid), torch.ones(8, 8))["ciou_area"])  # a full one


def test_plateaus_are_not_selected_by_the_median():
    """A map that is zero except on a small blob: LVS's strict '>' keeps the blob, not the plateau."""
    grid = np.zeros((56, 56))
    grid[12:20, 24:32] = 1.0
    got = score_map(torch.tensor(grid), torch.tensor(object_mask()))
    assert got["ciou"] == pytest.approx(64 / object_mask().sum())  # the blob (inside the object) over the object


def test_the_summary_counts_degenerate_frames_and_integrates_the_success_rate():
    good = {"energy": 0.5, "energy_ratio": 3.0, "ciou": 0.6, "pointing_hit": 1.0, "roc_auc": 0.9, "area": 0.2, "degenerate": False}
    weak = {**good, "energy_ratio": 1.0, "ciou": 0.2, "pointing_hit": 0.0, "roc_auc": 0.5, "area": 0.4}
    flat = {**{k: math.nan for k in good}, "area": 0.3, "degenerate": True}
    summary = summarise([good, weak, flat])
    assert summary["n"] == 3 and summary["degenerate"] == 1 and summary["area"] == pytest.approx(0.3)
    assert summary["energy_ratio"]["mean"] == pytest.approx(2.0) and summary["energy_ratio"]["n"] == 2
    half = 12.7062 * np.std([3.0, 1.0], ddof=1) / np.sqrt(2)  # Student's t, 1 degree of freedom (not 1.96)
    assert summary["energy_ratio"]["ci95"] == pytest.approx([2.0 - half, 2.0 + half])
    assert summary["ciou@0.5"] == 0.5
    # success rate: 1 up to 0.2, 0.5 up to 0.6, then 0; trapezoids over the 0.05 grid
    thresholds = np.linspace(0, 1, 21)
    success = np.array([np.mean([c >= t - 1e-12 for c in (0.6, 0.2)]) for t in thresholds])
    assert summary["auc"] == pytest.approx(float(np.sum((success[1:] + success[:-1]) / 2 * np.diff(thresholds))))


def test_pixel_grids_of_a_site_and_both_orientations():
    """Which rows or keys of a recorded call are pixels (one square level, or the ELF decoder's
    three-level pyramid, finest first), and one map per audio key or per audio query."""
    from avsbench_kit.probes.capture import AttentionRecord
    from avsbench_kit.probes.maps import finest_side as _finest_side
    from avsbench_kit.probes.metrics import site_metrics
    from avskit.analyses.attention_frames import site_maps

    assert (_finest_side(784), _finest_side(16 * 16 + 8 * 8 + 4 * 4), _finest_side(50)) == (28, 16, None)
    weights = torch.rand(1, 2, 336, 3)  # [B, heads, pixels of 16x16 + 8x8 + 4x4, 3 audio keys]
    record = AttentionRecord("fusion", "softmax", 1, 2, 336, 3, site_metrics(weights, "softmax"), weights)
    maps = site_maps(record, "pixels-audio")
    assert len(maps) == 3 and maps[0].shape == (16, 16)
    column = weights[0, :, :256, 1] / weights[0, :, :256, 1].sum(-1, keepdim=True)
    assert torch.allclose(maps[1], column.mean(0).view(16, 16))
    transposed = weights.transpose(-1, -2)[..., :256].contiguous()  # 3 audio queries over 16x16 pixel keys
    record = AttentionRecord("va", "softmax", 1, 2, 3, 256, site_metrics(transposed, "softmax"), transposed)
    assert torch.allclose(site_maps(record, "audio-pixels")[1], maps[1], atol=1e-6)
    assert site_maps(AttentionRecord("mixer", "cha", 1, 1, 1, 256, record.metrics, transposed), "pixels-audio") == "no spatial map"
