"""Attention capture on the project's models and on foreign ones; dissipation metrics."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from avsbench_kit import build_model
from avsbench_kit.nn import attention
from avsbench_kit.probes import capture_attention, site_metrics


class MHAOnly(nn.Module):
    """A foreign model: pixels attend to one audio token, then to 16 queries, with nn.MultiheadAttention."""

    def __init__(self):
        super().__init__()
        self.to_audio = nn.MultiheadAttention(32, 4, batch_first=True)
        self.to_queries = nn.MultiheadAttention(32, 4, batch_first=True)
        self.queries = nn.Parameter(torch.randn(1, 16, 32))

    def forward(self, pixels, audio):
        x = pixels + self.to_audio(pixels, audio, audio, need_weights=False)[0]
        q = self.queries.expand(pixels.shape[0], -1, -1)
        return x + self.to_queries(x, q, q)[0]


class SDPAOnly(nn.Module):
    """A foreign model calling F.scaled_dot_product_attention directly."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(32, 32)
        self.keys = nn.Parameter(torch.randn(1, 2, 9, 16))

    def forward(self, pixels, audio):
        q = self.proj(pixels).view(pixels.shape[0], -1, 2, 16).transpose(1, 2)
        a = audio.view(audio.shape[0], 1, 2, 16).transpose(1, 2)
        one = F.scaled_dot_product_attention(q, a, a)  # one key
        many = F.scaled_dot_product_attention(q, self.keys.expand(pixels.shape[0], -1, -1, -1), self.keys.expand(pixels.shape[0], -1, -1, -1))
        return (one + many).transpose(1, 2).reshape(pixels.shape)


@pytest.mark.parametrize("model_cls,kind", [(MHAOnly, "mha"), (SDPAOnly, "sdpa")])
def test_foreign_models(model_cls, kind):
    torch.manual_seed(0)
    model = model_cls().eval()
    pixels, audio = torch.randn(2, 49, 32), torch.randn(2, 1, 32)
    with torch.no_grad():
        plain = model(pixels, audio)
        with capture_attention(model) as recorder:
            probed = model(pixels, audio)
    assert torch.equal(plain, probed)  # bit-identical under the probe
    table = recorder.summary()
    assert list(table["kind"]) == [kind, kind]
    one_key, many_keys = table.iloc[0], table.iloc[1]
    assert one_key["n_keys"] == 1 and one_key["dissipated"] and "single key" in one_key["reason"]
    assert many_keys["n_keys"] in (9, 16) and not many_keys["dissipated"]
    assert math.isnan(one_key["entropy_norm"]) and 0 < many_keys["entropy_norm"] <= 1


def test_mha_weights_match_torch():
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(32, 4, batch_first=True).eval()
    x, kv = torch.randn(2, 10, 32), torch.randn(2, 5, 32)
    mask = torch.zeros(2, 5, dtype=torch.bool)
    mask[:, -1] = True
    with torch.no_grad(), capture_attention(mha) as recorder:
        _, expected = mha(x, kv, kv, key_padding_mask=mask, average_attn_weights=False)
    torch.testing.assert_close(recorder.records[0].weights, expected)


def test_own_models_are_bit_identical_and_every_kind_is_captured():
    model = build_model("avsegformer-r50")
    image, audio = torch.randn(1, 3, 64, 64), torch.randn(1, 1, 96, 64)
    with torch.inference_mode():
        plain = model(image, audio)
        with capture_attention(model) as recorder:
            probed = model(image, audio)
    assert torch.equal(plain, probed)
    table = recorder.summary()
    assert {"softmax", "cha", "deformable"} <= set(table["kind"])
    assert "sdpa" not in set(table["kind"])  # our own SDPA calls are reported once, by the primitive
    cha = table[table["kind"] == "cha"].iloc[0]
    assert cha["site"] == "mask_head.mixer" and cha["n_queries"] == 1 and not cha["dissipated"]
    qg_cross = table[table["site"].str.contains("query_generator.layers.0.cross_attn")].iloc[0]
    assert qg_cross["n_keys"] == 1 and qg_cross["dissipated"]


def test_tpavi_affinity_is_captured():
    model = build_model("avsbench-r50")
    with torch.inference_mode(), capture_attention(model) as recorder:
        model(torch.randn(1, 3, 64, 64), torch.randn(1, 1, 96, 64))
    tpavi = recorder.find(kind="tpavi")
    assert [r.site for r in tpavi] == [f"tpavi.{i}" for i in range(4)]
    assert tpavi[0].n_queries == 16 * 16 and tpavi[0].n_keys == 1


def test_verdicts_on_the_zoo():
    def flagged(**overrides):
        model = build_model("avesformer-r18", **overrides)
        with torch.inference_mode(), capture_attention(model) as recorder:
            model(torch.randn(1, 3, 64, 64), torch.randn(1, 1, 96, 64))
        table = recorder.summary()
        return set(table[table["dissipated"]]["site"])

    assert flagged() == set()
    assert flagged(fusion="dissipation") == {f"decoder.stages.{s}.layers.{layer}.fusion.cross_attn.attn" for s in (1, 2) for layer in (0, 1)}
    qg_flagged = flagged(qg="qg")
    assert {f"query_generator.layers.{i}.cross_attn.attn" for i in range(6)} <= qg_flagged
    assert all(site.startswith("query_generator.") for site in qg_flagged)


def test_no_probe_no_recording():
    assert not attention.observing()
    model = build_model("avesformer-r18")
    with capture_attention(model):
        assert attention.observing()
    assert not attention.observing()
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_memory_bound():
    model = build_model("avesformer-r18")
    with torch.inference_mode(), capture_attention(model, max_elements=1000) as recorder:
        model(torch.randn(1, 3, 64, 64), torch.randn(1, 1, 96, 64))
    assert all(r.weights.numel() <= 1000 for r in recorder.records)
    assert any(r.reduced for r in recorder.records)


def test_metric_definitions():
    uniform = torch.full((1, 1, 4, 8), 1 / 8)
    m = site_metrics(uniform, "softmax")
    assert m.entropy_norm == pytest.approx(1.0) and m.row_diversity == pytest.approx(0.0) and m.dissipated
    one_hot = torch.eye(4).view(1, 1, 4, 4)
    m = site_metrics(one_hot, "softmax")
    assert m.entropy_norm == pytest.approx(0.0, abs=1e-6) and m.row_diversity == pytest.approx(0.75) and not m.dissipated
    gates = torch.tensor([0.1, 0.9, 0.5, 0.3]).view(1, 1, 4, 1)
    m = site_metrics(gates, "sigmoid")
    assert math.isnan(m.entropy_norm) and m.row_diversity == pytest.approx((0.35 + 0.45 + 0.05 + 0.15) / 4 / 2 / 0.45)
    assert not m.dissipated
