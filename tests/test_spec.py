import pytest

from avsbench_kit import UserError, make_spec
from avsbench_kit.reported import reported_for
from avsbench_kit.spec import ZOO, parse_set_options


def test_zoo_names():
    assert list(ZOO) == ["avesformer-r18", "avesformer-r50", "avsegformer-r50", "avsbench-r50", "avsegformer-pvt", "avsbench-pvt",
                         "ecmvae-pvt", "ecmvae-r50", "catr-pvt", "cavp-r50"]


def test_overrides_from_strings():
    spec = make_spec("avesformer-r50", parse_set_options(["fusion=tpavi", "stages=t-t-t", "queries=64"]))
    assert (spec.fusion, spec.stages, spec.queries) == ("tpavi", "TTT", 64)
    assert spec.changes() == {"fusion": "tpavi", "stages": "TTT", "queries": 64}
    assert spec.label == "avesformer-r50[fusion=tpavi,stages=TTT,queries=64]"
    assert hash(spec) == hash(make_spec("avesformer-r50", {"fusion": "tpavi", "stages": "TTT", "queries": 64}))


def test_query_generator_brings_its_default_query_count():
    assert make_spec("avesformer-r50", {"qg": "qg"}).queries == 300
    assert make_spec("avesformer-r50", {"qg": "qg", "queries": 32}).queries == 32
    assert make_spec("avesformer-r50", {"qg": "none"}).queries == 1


@pytest.mark.parametrize(
    "name,overrides,message",
    [
        ("nope", {}, "unknown model 'nope'; accepted: avesformer-r18"),
        ("avesformer-r50", {"foo": 1}, "unknown override key 'foo'; accepted: backbone"),
        ("avesformer-r50", {"stages": "CXZ"}, "expected 3 letters from C"),
        ("avesformer-r50", {"stages": "CTTT"}, "expected 3 letters"),
        ("avesformer-r50", {"queries": 0}, r"integer in 1\.\.1024"),
        ("avesformer-r50", {"queries": "many"}, r"integer in 1\.\.1024"),
        ("avesformer-r50", {"fusion": "nonsense"}, "choose one of: cross_attention"),
        ("avesformer-r50", {"backbone": "vit"}, "choose one of: resnet18, resnet50"),
        ("avesformer-r50", {"classes": -1}, "1 for S4/MS3, 71 for AVSS"),
        ("avsbench-r50", {"fusion": "tpavi"}, "fusion does not apply to avsbench-r50"),
        ("avsegformer-r50", {"stages": "TTT"}, "stages does not apply to avsegformer-r50"),
        ("avesformer-r50", {"qg": "none", "queries": 16}, "does not apply with qg=none"),
        ("catr-pvt", {"temporal_ffn": 512}, "choose one of: 256, 2048"),
        ("catr-pvt", {"input_upsample": "maybe"}, "expected true or false"),
        ("catr-pvt", {"backbone": "resnet50"}, "backbone does not apply to catr-pvt"),
        ("ecmvae-pvt", {"latent": "median"}, "choose one of: mean, sample"),
        ("avesformer-r50", {"latent": "mean"}, "latent does not apply to avesformer-r50"),
    ],
)
def test_bad_overrides(name, overrides, message):
    with pytest.raises(UserError, match=message):
        make_spec(name, overrides)


@pytest.mark.parametrize("item", ["fusion", "=tpavi", ""])
def test_malformed_set_option(item):
    with pytest.raises(UserError, match="--set expects key=value"):
        parse_set_options([item])


def test_reported_figures_match_exact_configurations_only():
    assert reported_for(make_spec("avesformer-r50")).params_m == 127
    assert reported_for(make_spec("avesformer-r50", {"qg": "qg"})).params_m == 131
    assert reported_for(make_spec("avsegformer-r50", {"qg": "pqg"})).params_m == 144
    assert reported_for(make_spec("avesformer-r50", {"stages": "TTT"})).latency_ms == 14.9
    assert reported_for(make_spec("avesformer-r50", {"queries": 64})) is None
    assert reported_for(make_spec("avesformer-r50", {"vggish_weights": "/x.pth"})).params_m == 127


def test_labels_parse_back_to_specs():
    from avsbench_kit.spec import spec_from_text

    spec = make_spec("avesformer-r50", {"stages": "TTT", "queries": 64})
    assert spec_from_text(spec.label) == spec
    assert spec_from_text("avesformer-r50[stages=TTT]", {"queries": "64"}) == spec
    assert spec_from_text("avsbench-r50") == make_spec("avsbench-r50")
    with pytest.raises(UserError, match="not a model name or a label"):
        spec_from_text("avesformer-r50[stages=TTT")
    with pytest.raises(UserError, match="stages='X' is not accepted"):
        spec_from_text("avesformer-r50[stages=X]")


def test_family_fields_parse_label_and_stay_out_of_other_models_records():
    from avsbench_kit.spec import spec_from_text

    spec = make_spec("catr-pvt", {"temporal_ffn": "2048", "input_upsample": "off"})
    assert (spec.temporal_ffn, spec.input_upsample) == (2048, False)
    assert spec.label == "catr-pvt[temporal_ffn=2048,input_upsample=False]"
    assert spec_from_text(spec.label) == spec
    assert make_spec("ecmvae-r50", {"latent": "sample"}).label == "ecmvae-r50[latent=sample]"
    # a model without these fields writes the spec dict it wrote before they existed (its run ids stay the same)
    assert not {"latent", "temporal_ffn", "input_upsample"} & set(make_spec("avesformer-r50").to_dict())
    assert make_spec("catr-pvt").to_dict()["temporal_ffn"] == 256
    assert reported_for(make_spec("catr-pvt")).params_m == 177 and reported_for(make_spec("catr-pvt", {"temporal_ffn": 2048})) is None
