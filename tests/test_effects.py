"""How the report reads seeds: the t-based CI, the rule for runs that were resumed, and the words an
effect gets (no measurable effect inside the seed spread or where its CI crosses 0)."""

import math

import pytest

from avsbench_kit import make_spec
from avsbench_kit.stats import difference_ci, mean_ci
from avskit.analyses import tables
from avskit.analyses.summaries import effect


def test_the_ci_uses_students_t_for_n():
    found = mean_ci([1.0, 2.0, 3.0])
    assert found["ci95"] == pytest.approx([2 - 4.3027 / math.sqrt(3), 2 + 4.3027 / math.sqrt(3)], abs=1e-3)  # not 1.96
    assert mean_ci([5.0])["ci95"] == [None, None]
    welch = difference_ci([1.0, 2.0, 3.0], [0.0, 0.0, 0.0, 0.0])
    assert welch["diff"] == 2.0 and welch["ci95"] == pytest.approx([2 - 4.3027 / math.sqrt(3), 2 + 4.3027 / math.sqrt(3)], abs=1e-3)


def _run(spec, seed, value, **prov):
    base = {"data": "synthetic:s4", "size": 64, "videos": 3000, "steps": 600, "batch": 8, "lr": 2e-4, "warmup": 30, "seed": seed,
            "audio_blind": False, "time": f"t{seed}-{value}"}
    return {"kind": "train", "model": spec.label, "spec": spec.to_dict(), "metric": "jaccard", "value": value, "unit": "",
            "provenance": {**base, **prov}}


def test_a_seeds_last_uninterrupted_run_is_kept_and_the_replaced_one_named():
    spec = make_spec("avesformer-r18", {"fusion": "dissipation"})
    failed = _run(spec, 2, 0.47, resumed_from=300, threads_changed=True)
    rerun = _run(spec, 2, 0.92, resumed_from=0)
    same_threads = _run(spec, 1, 0.91, resumed_from=150, threads_changed=False)  # bit-exact: not flagged
    found = tables.seed_runs([_run(spec, 0, 0.90), same_threads, failed, rerun], spec)
    assert {seed: run["jaccard"] for seed, run in found["runs"].items()} == {0: 0.90, 1: 0.91, 2: 0.92}
    assert found["replaced"] == [{"seed": 2, "jaccard": 0.47, "why": "resumed at step 300 with another thread count", "kept_jaccard": 0.92}]
    # the rerun recorded first and the resumed run after it: the uninterrupted one is still the one kept
    assert tables.seed_runs([rerun, failed], spec)["runs"][2]["jaccard"] == 0.92
    alone = tables.seed_runs([failed], spec)
    assert alone["runs"][2]["interrupted"] == "resumed at step 300 with another thread count" and alone["replaced"] == []


@pytest.mark.parametrize("variant,base,measurable,words", [
    ([0.915, 0.918, 0.912], [0.914, 0.919, 0.915, 0.910, 0.916], False, "no measurable effect (inside the larger seed sd)"),
    ([0.80, 0.81, 0.79], [0.914, 0.919, 0.915, 0.910, 0.916], True, "lower than the base"),
    ([0.95, 0.99], [0.90, 0.902], False, "no measurable effect (its CI crosses 0)"),  # beyond the sd, but two seeds: a wide CI
])
def test_effect_words_follow_the_spread_and_the_ci(variant, base, measurable, words):
    found = effect(variant, base)
    assert found["measurable"] is measurable and found["words"].startswith(words)
    assert found["spread"] == pytest.approx(max(_sd(variant), _sd(base)))


def _sd(values):
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
