import torch
import torch.nn.functional as F
from torch import nn

from avsbench_kit.nn import attention
from avsbench_kit.nn.attention import MultiHeadAttention, attend, attention_probabilities


def test_softmax_over_one_key_dissipates():
    """Paper Eq. 3-4: with one key, every probability is exactly 1 and every query gets v."""
    q = torch.randn(2, 8, 1029, 32) * 10  # large logits do not matter
    k = torch.randn(2, 8, 1, 32)
    v = torch.randn(2, 8, 1, 32)
    probs = attention_probabilities(q, k, "softmax")
    assert probs.shape == (2, 8, 1029, 1)
    assert torch.equal(probs, torch.ones_like(probs))
    out = attend(q, k, v)
    assert torch.equal(out, out[:, :, :1].expand_as(out))  # the same output for every query
    torch.testing.assert_close(out, v.expand_as(out))


def test_sigmoid_over_one_key_does_not_dissipate():
    q = torch.randn(1, 4, 50, 16)
    k = torch.randn(1, 4, 1, 16)
    probs = attention_probabilities(q, k, "sigmoid")
    assert ((probs > 0) & (probs < 1)).all()
    assert probs.std() > 0.05  # each pixel its own gate


def test_fast_path_matches_explicit_path_and_observers_see_probabilities():
    q, k, v = torch.randn(2, 8, 20, 32), torch.randn(2, 8, 7, 32), torch.randn(2, 8, 7, 32)
    fast = attend(q, k, v)
    seen = []
    observer = lambda site, kind, probs: seen.append((site, kind, probs))  # noqa: E731
    attention.add_observer(observer)
    try:
        slow = attend(q, k, v, site="here")
    finally:
        attention.remove_observer(observer)
    torch.testing.assert_close(fast, slow)
    assert len(seen) == 1 and seen[0][0] == "here" and seen[0][1] == "softmax"
    torch.testing.assert_close(seen[0][2].sum(-1), torch.ones(2, 8, 20))


def test_fast_path_calls_sdpa_only(monkeypatch):
    calls = []
    real = F.scaled_dot_product_attention
    monkeypatch.setattr(F, "scaled_dot_product_attention", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    monkeypatch.setattr(attention, "attention_probabilities", lambda *a, **kw: (_ for _ in ()).throw(AssertionError("slow path")))
    attend(torch.randn(1, 2, 3, 4), torch.randn(1, 2, 5, 4), torch.randn(1, 2, 5, 4))
    assert calls == [1]


def test_multi_head_attention_matches_torch_module():
    torch.manual_seed(0)
    ours = MultiHeadAttention(64, 8)
    ref = nn.MultiheadAttention(64, 8, batch_first=True)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight]))
        ref.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.k_proj.bias, ours.v_proj.bias]))
        ref.out_proj.weight.copy_(ours.out_proj.weight)
        ref.out_proj.bias.copy_(ours.out_proj.bias)
    x, m = torch.randn(2, 10, 64), torch.randn(2, 3, 64)
    torch.testing.assert_close(ours(x, m, m), ref(x, m, m, need_weights=False)[0], rtol=1e-4, atol=1e-5)
    no_bias = MultiHeadAttention(256, 8, bias=False)
    assert sum(p.numel() for p in no_bias.parameters()) == sum(p.numel() for p in nn.MultiheadAttention(256, 8, bias=False).parameters())
