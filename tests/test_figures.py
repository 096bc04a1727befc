"""What the figures draw, checked on their data: Fig 3's shares add up."""

import pytest

from avskit.analyses.breakdown_groups import PART_GROUPS, _groups


def _modules(**shares):
    return [{"name": name, "depth": 1, "share": share} for name, share in shares.items()]


def test_fig3_shares_sum_to_at_most_one_with_the_rest_outside_the_parts():
    shares, outside = _groups(_modules(audio_backbone=0.1, visual_backbone=0.3, decoder=0.4))
    assert sum(shares) == pytest.approx(0.8) and outside == pytest.approx(0.2)
    shares, outside = _groups(_modules(audio_backbone=0.2, visual_backbone=0.5, decoder=0.311))  # timing noise: 1.011
    assert sum(shares) == pytest.approx(1.0) and outside == 0.0 and shares[1] == pytest.approx(0.5 / 1.011)
    shares, outside = _groups(_modules(visual_backbone=0.5, something_new=0.25))  # a part no group names is its own segment
    assert shares[[g for g, _ in PART_GROUPS].index("other parts")] == pytest.approx(0.25) and outside == pytest.approx(0.25)


def _latency(spec, run, ms, ratio, order):
    return {"kind": "latency", "model": spec.label, "spec": spec.to_dict(), "metric": "latency_ms", "value": ms, "unit": "ms",
            "ratio_to_anchor": ratio, "stats": {"iqr": 1.0}, "modules": [],
            "provenance": {"anchor": "avesformer-r50", "device": "cpu", "device_name": "AMD EPYC", "threads": 2, "size": 224,
                           "batch": 1, "dtype": "fp32", "path": "eager", "iters": 20, "run": run, "time": f"2026-12-0{order}T00:00"}}


def test_a_table_takes_its_milliseconds_from_one_run_and_keeps_the_others_ratio():
    """Records from two runs (a sweep extended later): the run with the most rows gives every
    millisecond; a row timed only in the other run shows its ratio (measured there) and no milliseconds."""
    from avsbench_kit.spec import make_spec
    from avskit.analyses.latency_runs import table_latencies, timing_note

    base, r18, pvt = (make_spec("avesformer-r50", {"backbone": b}) for b in ("resnet50", "resnet18", "pvt_v2_b5"))
    records = [_latency(r18, "early", 252.1, 0.92, 1),  # its anchor row of that run was never kept
               _latency(base, "late", 335.3, 1.0, 2), _latency(pvt, "late", 469.2, 1.40, 2)]
    found = table_latencies(records, [base, r18, pvt], "avesformer-r50", "cpu")
    assert found[r18]["value"] is None and found[r18]["ratio_to_anchor"] == 0.92 and found[r18]["other_run"]
    shown = [r for r in found.values() if r["value"] is not None]
    for a in shown:  # every pair of rows with milliseconds agrees with its ratios (the acceptance's 3%)
        for b in shown:
            assert a["value"] / b["value"] == pytest.approx(a["ratio_to_anchor"] / b["ratio_to_anchor"], rel=0.03)
    note = timing_note({"cpu": found})
    assert "one interleaved run, 2026-12-02, AMD EPYC, 2 threads, 20 timed rounds (run late)" in note and r18.label in note


def test_a_constant_map_is_drawn_as_a_uniform_mid_tone_and_no_map_as_none():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from avskit.analyses.attention_figures import _overlay

    rgb, mask = np.zeros((32, 32, 3), dtype=np.uint8), np.zeros((32, 32))
    mask[8:16, 8:16] = 1
    fig, axes = plt.subplots(1, 3)
    _overlay(axes[0], rgb, np.full((4, 4), 0.25), "constant", mask)
    _overlay(axes[1], rgb, np.arange(16.0).reshape(4, 4), "varied", mask)
    _overlay(axes[2], rgb, None, "channel weights", mask)
    texts = [[t.get_text() for t in ax.texts] for ax in axes]
    assert texts[0] == ["uniform (dissipated)"] and float(np.unique(axes[0].images[1].get_array())[0]) == 0.5  # flat, mid-scale
    assert texts[1] == ["range 0 to 15"] and axes[1].images[1].get_cmap().name == "viridis"
    assert texts[2] == ["no spatial map"] and len(axes[2].images) == 1  # the frame alone, no heat map
    assert all(ax.collections for ax in axes)  # the sounding object's outline on every panel
    plt.close(fig)


def test_a_map_from_a_model_still_learning_says_so_in_its_title():
    """Issue #29: a trained map's title names the checkpoints whose validation J was still rising at the
    budget (or that never learned); a converged checkpoint adds nothing."""
    import matplotlib.pyplot as plt

    from avskit.analyses.attention_figures import _state

    rising = {"label": "avesformer-r18[stages=TTT]", "verdict": "learned (J >= 0.6), still rising", "jaccard": 0.706}
    fig = plt.figure()
    fig.suptitle("maps")
    _state(fig, True, "trained", [rising, {"label": "avesformer-r18", "verdict": "learned (J >= 0.6)", "jaccard": 0.91}])
    title = fig.get_suptitle()
    assert "STILL RISING" in title and "stages=TTT (J 0.71)" in title and "base" not in title
    fig.suptitle("maps")
    _state(fig, True, "trained", [{**rising, "verdict": "not converged (still rising)", "jaccard": 0.4}])
    assert "NOT CONVERGED: stages=TTT (J 0.40)" in fig.get_suptitle()
    fig.suptitle("maps")
    _state(fig, True, "trained", [{**rising, "verdict": "learned (J >= 0.6)"}])
    assert fig.get_suptitle() == "maps\ntrained checkpoints (synthetic S4)"
    plt.close(fig)
