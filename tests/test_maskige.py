"""COMBO's Maskige (avsbench_kit.data.maskige) against the release's own rendering
(avs_tools/pre_mask2rgb/mask_precess_s4.py, run in a scratch folder on these masks; stored in
tests/data/released/combo_maskige.json)."""

import hashlib
import json

import numpy as np
import pytest

from avsbench_kit.data.maskige import ADE_PALETTE, instance_ids, render_maskige
from avsbench_kit.errors import UserError

from released import DATA


def _shapes(h=96, w=120):
    yy, xx = np.mgrid[:h, :w]
    return np.stack([(yy - 40) ** 2 + (xx - 50) ** 2 < 30 ** 2,               # a big disc
                     (yy > 30) & (yy < 60) & (xx > 40) & (xx < 100),          # a box over it
                     (yy > 10) & (yy < 20) & (xx > 10) & (xx < 20),           # a small square
                     (yy > 70) & (xx > 5) & (xx < 105),                       # a band
                     (yy > 10) & (yy < 20) & (xx > 90) & (xx < 100)])         # a square of the same area (a tie)


def test_maskige_equals_the_releases_rendering():
    data = json.loads((DATA / "combo_maskige.json").read_text())
    for frame, masks in (("frame_1", _shapes()), ("frame_2", np.zeros((0, 96, 120), dtype=bool))):
        image = render_maskige(masks)
        assert list(image.shape) == data[frame]["shape"] and image.dtype == np.uint8
        assert image[112][::8].tolist() == data[frame]["row_112"], frame
        assert hashlib.sha256(image.tobytes()).hexdigest() == data[frame]["rgb_sha256"], frame


def test_smaller_instances_are_drawn_over_larger_ones():
    masks = _shapes()
    ids = instance_ids(masks)
    assert len(ADE_PALETTE) == 150 * 3 and set(np.unique(ids)) == set(range(6))
    small = masks[2]
    assert (ids[small] == ids[small][0]).all() and ids[small][0] in (1, 2)  # one of the two smallest, whole
    overlap = masks[0] & masks[1]
    assert (ids[overlap] == ids[masks[1] & ~masks[0]][0]).all()  # the box is smaller than the disc: it wins where they overlap
    with pytest.raises(UserError, match="instance masks"):
        instance_ids(masks[0])
