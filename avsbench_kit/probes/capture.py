"""Capture attention in any PyTorch model: the project's own, ``nn.MultiheadAttention``, foreign SDPA.

``with capture_attention(model) as recorder: model(...)`` records every attention call made while
the block runs:

- the project's attention primitive (softmax, sigmoid), the channel mixer (``cha``), TPAVI's
  affinity (``tpavi``) and deformable attention's sampling weights (``deformable``), reported by
  the parts themselves through the primitive's observers;
- every ``nn.MultiheadAttention`` of the model (``mha``): a forward hook recomputes the weights
  from the module's inputs and parameters (masks included) without touching its output;
- every ``F.scaled_dot_product_attention`` call made by other code (``sdpa``): a
  ``TorchFunctionMode`` lets the call run unchanged and recomputes the probabilities beside it;
- every hand-written attention (``softmax-op``): the same mode records each softmax
  (``torch.softmax``, ``Tensor.softmax``, ``F.softmax``) over the last dimension of a tensor of
  rank 3 or more, at the innermost module running it; ``n_keys`` is the softmax dimension and
  ``n_queries`` the one before. Softmaxes the sites above already report (the primitive's,
  deformable sampling weights, inside ``nn.MultiheadAttention``) are not counted twice.

Outputs under the probe are bit-identical to outputs without it, and with no probe active
nothing is hooked and nothing recorded. Metrics are computed on the full weights at capture time;
what is kept for figures is memory-bounded (heads averaged, then query rows subsampled).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from avsbench_kit.nn import attention as primitive
from avsbench_kit.probes.metrics import SiteMetrics, site_metrics

MAX_ELEMENTS = 1 << 22  # weights kept per record (16 MiB of float32)


@dataclass
class AttentionRecord:
    site: str
    kind: str
    batch: int
    heads: int
    n_queries: int
    n_keys: int
    metrics: SiteMetrics
    weights: Tensor  # [B, heads or 1, rows, n_keys] on the CPU, float32
    reduced: str = ""  # "", "head-mean", or "head-mean, every k-th query"
    query_stride: int = 1
    call: int = 0  # the how-many-th call at this site in the captured run (0 = first)


@dataclass
class AttentionRecorder:
    max_elements: int = MAX_ELEMENTS
    records: list[AttentionRecord] = field(default_factory=list)
    input_description: str = ""  # what the captured forward ran on, in words (set by the caller)

    def add(self, site: str, kind: str, weights: Tensor) -> None:
        w = weights.detach().float()
        b, h, lq, lk = w.shape
        metrics = site_metrics(w, kind)
        kept, reduced, stride = w, "", 1
        if kept.numel() > self.max_elements:
            kept, reduced = kept.mean(1, keepdim=True), "head-mean"
        if kept.numel() > self.max_elements:
            stride = math.ceil(kept.numel() / self.max_elements)
            kept, reduced = kept[:, :, ::stride], f"head-mean, every {stride}th query"
        call = sum(1 for r in self.records if r.site == site and r.kind == kind)
        self.records.append(AttentionRecord(site, kind, b, h, lq, lk, metrics, kept.cpu().clone(), reduced, stride, call))

    def find(self, site: str | None = None, kind: str | None = None) -> list[AttentionRecord]:
        return [r for r in self.records if (site is None or r.site == site) and (kind is None or r.kind == kind)]

    def summary(self):
        """One row per recorded call: site, kind, n_queries, n_keys, entropy_norm, row_diversity, dissipated, ..."""
        import pandas as pd

        rows = [{"site": r.site, "call": r.call, "kind": r.kind, "batch": r.batch, "heads": r.heads, "n_queries": r.n_queries,
                 "n_keys": r.n_keys, **r.metrics.to_dict()} for r in self.records]
        columns = ["site", "call", "kind", "batch", "heads", "n_queries", "n_keys", "entropy_norm", "row_diversity", "dissipated", "reason"]
        return pd.DataFrame(rows, columns=columns)


def sdpa_probabilities(q: Tensor, k: Tensor, attn_mask: Tensor | None = None, is_causal: bool = False,
                       scale: float | None = None, enable_gqa: bool = False) -> Tensor:
    """What ``F.scaled_dot_product_attention`` weights its values with, written out."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    if enable_gqa and k.shape[-3] != q.shape[-3]:
        k = k.repeat_interleave(q.shape[-3] // k.shape[-3], dim=-3)
    logits = torch.matmul(q.float(), k.float().transpose(-2, -1)) * scale
    lq, lk = logits.shape[-2:]
    if is_causal:
        logits = logits.masked_fill(~torch.ones(lq, lk, dtype=torch.bool, device=q.device).tril(), float("-inf"))
    if attn_mask is not None:
        logits = logits.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool else logits + attn_mask
    return logits.softmax(-1)


def _as_4d(p: Tensor) -> Tensor:
    while p.dim() < 4:
        p = p.unsqueeze(0)
    return p.flatten(0, -4) if p.dim() > 4 else p


SOFTMAXES = (torch.softmax, torch.Tensor.softmax, F.softmax, torch.nn.functional.softmax, torch.special.softmax)


def _softmax_dim(args: tuple, kwargs: dict) -> int | None:
    dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
    return dim if isinstance(dim, int) else None


class _SDPAInterceptor(TorchFunctionMode):
    """Records foreign ``F.scaled_dot_product_attention`` calls and hand-written softmax attention;
    every call itself runs unchanged, so outputs stay bit-identical."""

    def __init__(self, recorder: AttentionRecorder, where: list[str], skip_sites: set[str]):
        super().__init__()
        self.recorder, self.where, self.skip_sites = recorder, where, skip_sites

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        site = self.where[-1] if self.where else ""
        if primitive.inside_primitive() or site in self.skip_sites:
            return out  # our primitive reports its own calls; nn.MultiheadAttention is recorded by its hook
        if func in SOFTMAXES and isinstance(out, Tensor) and out.dim() >= 3 and self.where:
            dim = _softmax_dim(args, kwargs)
            if dim is not None and dim % out.dim() == out.dim() - 1:
                self.recorder.add(site, "softmax-op", _as_4d(out.detach()))
            return out
        if func is F.scaled_dot_product_attention:
            names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")
            bound = dict(zip(names, args, strict=False)) | kwargs
            probs = sdpa_probabilities(bound["query"], bound["key"], bound.get("attn_mask"), bound.get("is_causal", False),
                                       bound.get("scale"), bound.get("enable_gqa", False))
            self.recorder.add(site, "sdpa", _as_4d(probs))
        return out


def _mha_weights(module: nn.MultiheadAttention, args: tuple, kwargs: dict) -> Tensor:
    """``[B, heads, Lq, Lk]`` attention weights of one ``nn.MultiheadAttention`` call, recomputed."""
    names = ("query", "key", "value", "key_padding_mask", "need_weights", "attn_mask")
    bound = dict(zip(names, args, strict=False)) | kwargs
    query, key = bound["query"], bound["key"]
    batched = query.dim() == 3
    if not batched:
        query, key = query.unsqueeze(1), key.unsqueeze(1)  # -> [L, 1, E]
    elif module.batch_first:
        query, key = query.transpose(0, 1), key.transpose(0, 1)  # -> [L, B, E]
    e, h = module.embed_dim, module.num_heads
    if module._qkv_same_embed_dim:
        w_q, w_k = module.in_proj_weight[:e], module.in_proj_weight[e:2 * e]
    else:
        w_q, w_k = module.q_proj_weight, module.k_proj_weight
    b_q = b_k = None
    if module.in_proj_bias is not None:
        b_q, b_k = module.in_proj_bias[:e], module.in_proj_bias[e:2 * e]
    q, k = F.linear(query, w_q, b_q), F.linear(key, w_k, b_k)
    lq, b = q.shape[:2]
    if module.bias_k is not None:
        k = torch.cat([k, module.bias_k.expand(1, b, e)])
    if module.add_zero_attn:
        k = torch.cat([k, k.new_zeros(1, b, e)])
    q = q.reshape(lq, b, h, e // h).permute(1, 2, 0, 3)
    k = k.reshape(k.shape[0], b, h, e // h).permute(1, 2, 0, 3)
    logits = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(e // h)
    lk = logits.shape[-1]
    mask = bound.get("attn_mask")
    if mask is not None:
        mask = mask.view(b, h, lq, -1) if mask.dim() == 3 else mask
        mask = F.pad(mask, (0, lk - mask.shape[-1])) if mask.shape[-1] < lk else mask
        logits = logits.masked_fill(mask, float("-inf")) if mask.dtype == torch.bool else logits + mask
    padding = bound.get("key_padding_mask")
    if padding is not None:
        padding = F.pad(padding, (0, lk - padding.shape[-1])) if padding.shape[-1] < lk else padding
        padding = padding.view(b, 1, 1, lk)
        logits = logits.masked_fill(padding, float("-inf")) if padding.dtype == torch.bool else logits + padding
    return logits.softmax(-1)


@contextlib.contextmanager
def capture_attention(model: nn.Module, max_elements: int = MAX_ELEMENTS):
    """Record every attention call of ``model`` while the block runs; yields the recorder."""
    from avsbench_kit.foreign import public_path

    recorder = AttentionRecorder(max_elements)
    names = {module: public_path(model, name) for name, module in model.named_modules()}
    where: list[str] = []
    handles = []

    def enter(module, args):
        where.append(names[module])

    def leave(module, args, output):
        where.pop()

    def mha_hook(module, args, kwargs, output):
        with primitive.own_weights():  # the recomputation's softmax is this site's, already recorded
            weights = _mha_weights(module, args, kwargs)
        recorder.add(names[module], "mha", weights)

    for module in names:
        handles.append(module.register_forward_pre_hook(enter))
        handles.append(module.register_forward_hook(leave))
        if isinstance(module, nn.MultiheadAttention):
            handles.append(module.register_forward_hook(mha_hook, with_kwargs=True))

    def observe(site: str, kind: str, weights: Tensor) -> None:
        recorder.add(site or (where[-1] if where else ""), kind, weights)

    primitive.add_observer(observe)
    mha_sites = {name for module, name in names.items() if isinstance(module, nn.MultiheadAttention)}
    try:
        with _SDPAInterceptor(recorder, where, mha_sites):
            yield recorder
    finally:
        primitive.remove_observer(observe)
        for handle in handles:
            handle.remove()
