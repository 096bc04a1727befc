"""The one attention primitive of the project's own models.

Every attention in avsbench_kit and baselines goes through :func:`attend`. Its output is a
single ``F.scaled_dot_product_attention`` call (softmax) or two matmuls and a sigmoid (sigmoid
attention has no fused kernel). While an observer is registered (the probes do that), it also
computes the explicit probabilities with :func:`attention_probabilities` and hands them to the
observers; the output is computed exactly as without observers, so probing changes no bit of it.
"""

from __future__ import annotations

import math
from typing import Callable, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Kind = Literal["softmax", "sigmoid"]
KINDS: tuple[str, ...] = ("softmax", "sigmoid")

# Callables (site, kind, weights[B, heads, Lq, Lk]) -> None. Empty in normal use, so the
# fast path costs one truthiness check.
_observers: list[Callable[[str, str, Tensor], None]] = []
# > 0 while attend() runs its own SDPA call, so an interceptor of foreign SDPA calls skips it.
_inside_primitive = 0


def add_observer(fn: Callable[[str, str, Tensor], None]) -> None:
    _observers.append(fn)


def remove_observer(fn: Callable[[str, str, Tensor], None]) -> None:
    _observers.remove(fn)


def observing() -> bool:
    return bool(_observers)


def notify(site: str, kind: str, weights: Tensor) -> None:
    """Hand attention-like weights ``[B, heads, Lq, Lk]`` to every observer (parts call this when observed)."""
    for observe in list(_observers):
        observe(site, kind, weights)


def inside_primitive() -> bool:
    return _inside_primitive > 0


class own_weights:
    """Marks weights a part computes and reports itself (deformable sampling weights, the
    probabilities computed beside SDPA): a probe's softmax interception does not count them again."""

    def __enter__(self) -> None:
        global _inside_primitive
        _inside_primitive += 1

    def __exit__(self, *exc) -> None:
        global _inside_primitive
        _inside_primitive -= 1


def attention_probabilities(q: Tensor, k: Tensor, kind: Kind = "softmax", scale: float | None = None) -> Tensor:
    """Explicit attention probabilities ``[..., Lq, Lk]`` for queries ``[..., Lq, d]``, keys ``[..., Lk, d]``."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    logits = torch.matmul(q, k.transpose(-2, -1)) * scale
    if kind == "softmax":
        return logits.softmax(dim=-1)
    if kind == "sigmoid":
        return logits.sigmoid()
    raise ValueError(f"attention kind must be one of {KINDS}, got {kind!r}")


def attend(q: Tensor, k: Tensor, v: Tensor, kind: Kind = "softmax", scale: float | None = None, site: str = "",
           record_as: str | None = None) -> Tensor:
    """Attention output ``[B, heads, Lq, d_v]`` for ``q [B, heads, Lq, d]``, ``k, v [B, heads, Lk, d]``.

    The output always comes from the same kernel, observed or not, so a probe changes no bit of
    it; while observed, the probabilities are computed on the side and reported under
    ``record_as`` (default: ``kind``).
    """
    global _inside_primitive
    if kind == "softmax":
        _inside_primitive += 1
        try:
            out = F.scaled_dot_product_attention(q, k, v, scale=scale)
        finally:
            _inside_primitive -= 1
        if _observers:
            with own_weights():
                probs = attention_probabilities(q, k, kind, scale)
            notify(site, record_as or kind, probs)
        return out
    probs = attention_probabilities(q, k, kind, scale)
    if _observers:
        notify(site, record_as or kind, probs)
    return torch.matmul(probs, v)


class MultiHeadAttention(nn.Module):
    """Multi-head attention over batch-first token sequences, through :func:`attend`.

    Same parameters as ``nn.MultiheadAttention(dim, heads, bias=bias)`` (q, k, v and output
    projections), so counts match the released baselines that use it; ``out_bias`` differs from
    ``bias`` for attention with bias-free q/k/v but a biased projection (CAVP's sigmoid attention).
    """

    def __init__(self, dim: int, heads: int, bias: bool = True, kind: Kind = "softmax", out_bias: bool | None = None):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.kind = kind
        self.q_proj = nn.Linear(dim, dim, bias=bias)
        self.k_proj = nn.Linear(dim, dim, bias=bias)
        self.v_proj = nn.Linear(dim, dim, bias=bias)
        self.out_proj = nn.Linear(dim, dim, bias=bias if out_bias is None else out_bias)
        self.site = ""  # set by name_attention_sites() to the module's path
        for proj in (self.q_proj, self.k_proj, self.v_proj, self.out_proj):
            nn.init.xavier_uniform_(proj.weight)
            if proj.bias is not None:
                nn.init.zeros_(proj.bias)

    def _split(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        return x.view(b, n, self.heads, c // self.heads).transpose(1, 2)

    def forward(self, query: Tensor, key: Tensor, value: Tensor | None = None) -> Tensor:
        value = key if value is None else value
        q = self._split(self.q_proj(query))
        k = self._split(self.k_proj(key))
        v = self._split(self.v_proj(value))
        out = attend(q, k, v, self.kind, site=self.site)
        b, h, n, d = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, n, h * d))


def name_attention_sites(model: nn.Module) -> None:
    """Give every attention module of ``model`` its path as ``site``, for probes and profiles."""
    for name, module in model.named_modules():
        if hasattr(module, "site") and isinstance(module.site, str):
            module.site = name
