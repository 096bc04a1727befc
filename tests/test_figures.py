"""What the figures draw, checked on their data: Fig 3's shares add up."""

import pytest

from avskit.analyses.figures import PART_GROUPS, _groups


def _modules(**shares):
    return [{"name": name, "depth": 1, "share": share} for name, share in shares.items()]


def test_fig3_shares_sum_to_at_most_one_with_the_rest_outside_the_parts():
    shares, outside = _groups(_modules(audio_backbone=0.1, visual_backbone=0.3, decoder=0.4))
    assert sum(shares) == pytest.approx(0.8) and outside == pytest.approx(0.2)
    shares, outside = _groups(_modules(audio_backbone=0.2, visual_backbone=0.5, decoder=0.311))  # timing noise: 1.011
    assert sum(shares) == pytest.approx(1.0) and outside == 0.0 and shares[1] == pytest.approx(0.5 / 1.011)
    shares, outside = _groups(_modules(visual_backbone=0.5, something_new=0.25))  # a part no group names is its own segment
    assert shares[[g for g, _ in PART_GROUPS].index("other parts")] == pytest.approx(0.25) and outside == pytest.approx(0.25)
