"""The variants of a sweep: axis values and the specs they make."""

import pytest

from avsbench_kit import UserError
from avsbench_kit.spec import make_spec
from avskit.analyses.variants import axis_values, variants


def test_axis_values_accept_lists_aliases_and_all():
    assert set(axis_values("fusion", ["all"])) == {"cross_attention", "dissipation", "tpavi", "cha", "sigmoid"}
    assert axis_values("queries", ["8,16", "16", "32"]) == ["8", "16", "32"]
    assert axis_values("backbone", ["r18"]) == ["resnet18"]
    assert axis_values("stages", ["all"]) == ["TTT", "CTT", "TCT", "TTC"]
    with pytest.raises(UserError, match="unknown axis"):
        axis_values("colour", ["red"])
    with pytest.raises(UserError, match="fusion='nonsense'"):
        variants(make_spec("avesformer-r50"), "fusion", ["nonsense"])


def test_variants_keep_the_base_changes_and_qg_brings_its_queries():
    base = make_spec("avesformer-r50", {"stages": "TTT"})
    specs = variants(base, "qg", ["qg", "pqg"])
    assert [s.label for s in specs] == ["avesformer-r50[qg=qg,stages=TTT,queries=300]", "avesformer-r50[stages=TTT]"]
    assert [s.queries for s in specs] == [300, 16]
