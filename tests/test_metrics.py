"""The official AVSBench metrics on hand-made cases."""

import pytest
import torch

from avsbench_kit.metrics import BinaryMeter, SemanticMeter, f_score, jaccard

BIG = 20.0  # a logit whose sigmoid is 1 to float precision


def logits_from(mask: torch.Tensor) -> torch.Tensor:
    return torch.where(mask.bool(), torch.tensor(BIG), torch.tensor(-BIG))


def test_jaccard_by_hand():
    gt = torch.zeros(2, 4, 4)
    gt[0, :2, :2] = 1  # 4 pixels
    pred = torch.zeros(2, 4, 4)
    pred[0, :2, :] = 1  # 8 pixels, 4 of them right
    # frame 1: empty ground truth, 3 false positives -> 13 true negatives of 16 pixels
    pred[1, 0, :3] = 1
    expected = (4 / (8 + 1e-7) + 13 / (16 + 1e-7)) / 2
    assert jaccard(logits_from(pred), gt) == pytest.approx(expected)


def test_jaccard_threshold_is_strict():
    gt = torch.ones(1, 2, 2)
    assert jaccard(torch.zeros(1, 2, 2), gt) == pytest.approx(0.0)  # sigmoid(0) = 0.5 is not > 0.5


def test_f_score_perfect_and_empty():
    gt = torch.zeros(1, 8, 8)
    gt[0, 2:6, 2:6] = 1
    assert f_score(logits_from(gt), gt) == pytest.approx(1.0, abs=1e-6)
    assert f_score(logits_from(gt), torch.zeros(1, 8, 8)) == 0.0  # no valid frame: 0, and it still counts


def test_f_score_by_hand_on_one_threshold_regime():
    # probabilities 0.9 on 2 pixels (one right), 0.2 on the other right pixel: the best threshold keeps the
    # two 0.9 pixels (P = 1/2, R = 1/2) or all three above 0.2 (P = 2/3, R = 1)
    gt = torch.tensor([[[1.0, 0.0, 1.0, 0.0]]])
    probs = torch.tensor([[[0.9, 0.9, 0.2, 0.1]]])
    logits = torch.log(probs / (1 - probs))
    f = lambda p, r: 1.3 * p * r / (0.3 * p + r)  # noqa: E731
    assert f_score(logits, gt) == pytest.approx(max(f(1 / 2, 1 / 2), f(2 / 3, 1.0), f(2 / 4, 1.0)), rel=1e-5)


def test_f_score_skips_empty_frames_in_the_average():
    gt = torch.zeros(2, 4, 4)
    gt[0, 0, 0] = 1
    pred = gt.clone()
    assert f_score(logits_from(pred), gt) == pytest.approx(1.0, abs=1e-6)


def test_binary_meter_is_a_mean_of_batches():
    meter = BinaryMeter()
    gt = torch.ones(1, 2, 2)
    meter.update(logits_from(gt), gt)  # J = 1
    meter.update(logits_from(torch.zeros(1, 2, 2)), gt)  # J = 0
    out = meter.compute()
    assert out["jaccard"] == pytest.approx(0.5) and out["batches"] == 2


def test_semantic_meter_by_hand():
    meter = SemanticMeter(3)
    target = torch.tensor([[[0, 1], [1, 2]]])
    pred = torch.tensor([[[0, 1], [2, 2]]])
    logits = torch.nn.functional.one_hot(pred, 3).permute(0, 3, 1, 2).float()
    meter.update(logits, target)
    # class 0: IoU 1, F 1; class 1: inter 1, pred 1, gt 2 -> IoU 1/2, P 1, R 1/2; class 2: inter 1, pred 2, gt 1 -> IoU 1/2, P 1/2, R 1
    f = lambda p, r: 1.3 * p * r / (0.3 * p + r)  # noqa: E731
    out = meter.compute()
    assert out["miou"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert out["f_score"] == pytest.approx((1 + f(1, 0.5) + f(0.5, 1)) / 3)


def test_semantic_meter_unseen_classes_pull_the_mean_down():
    meter = SemanticMeter(4)
    target = torch.zeros(1, 2, 2, dtype=torch.long)
    logits = torch.nn.functional.one_hot(target, 4).permute(0, 3, 1, 2).float()
    meter.update(logits, target)
    assert meter.compute()["miou"] == pytest.approx(1 / 4)
