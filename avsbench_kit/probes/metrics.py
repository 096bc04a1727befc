"""Dissipation metrics of one attention call.

- ``n_keys``: how many keys each query distributes over.
- ``entropy_norm``: the entropy of each query's distribution over the keys divided by
  log(n_keys), averaged (1 = uniform, 0 = one key takes all). Undefined (NaN) at one key, where
  any distribution is trivially the point mass. Unnormalised weights (sigmoid, TPAVI) are
  normalised per query first.
- ``row_diversity``: how differently the queries attend: the mean over queries of
  ``|w_i - mean_i w_i|_1 / 2``, divided by the mean of ``|w_i|_1`` so that for probability rows it
  is the mean total-variation distance to the mean row. 0 means every query attends
  identically. Undefined with fewer than two queries.
- ``dissipated``: softmax over a single key (every probability is exactly 1, paper Eq. 4), or a
  row diversity below ``DIVERSITY_THRESHOLD``. Deformable attention is exempt from the second
  test: each query samples its own locations, so identical weights over "keys" do not mean
  identical attention.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import Tensor

DIVERSITY_THRESHOLD = 0.01  # below 1% mean total variation the queries attend alike
SOFTMAX_KINDS = {"softmax", "sdpa", "mha", "cha", "softmax-op"}
NORMALISED_KINDS = SOFTMAX_KINDS | {"deformable"}


@dataclass
class SiteMetrics:
    entropy_norm: float
    row_diversity: float
    dissipated: bool
    reason: str

    def to_dict(self) -> dict:
        clean = lambda x: None if isinstance(x, float) and math.isnan(x) else x  # noqa: E731  (JSON has no NaN)
        return {"entropy_norm": clean(self.entropy_norm), "row_diversity": clean(self.row_diversity),
                "dissipated": self.dissipated, "reason": self.reason}


def site_metrics(weights: Tensor, kind: str) -> SiteMetrics:
    """Metrics of weights ``[B, heads, Lq, Lk]`` of one call of the given kind."""
    w = weights.float()
    n_queries, n_keys = w.shape[-2:]
    rows = w if kind in NORMALISED_KINDS else w.abs() / w.abs().sum(-1, keepdim=True).clamp_min(1e-12)
    if n_keys > 1:
        entropy = -(rows * rows.clamp_min(1e-12).log()).sum(-1) / math.log(n_keys)
        entropy_norm = float(entropy.mean())
    else:
        entropy_norm = float("nan")
    if n_queries > 1:
        mean_row = w.mean(-2, keepdim=True)
        spread = (w - mean_row).abs().sum(-1).mean(-1) / 2  # [B, heads]
        scale = w.abs().sum(-1).mean(-1).clamp_min(1e-12)
        row_diversity = float((spread / scale).mean())
    else:
        row_diversity = float("nan")
    if kind in SOFTMAX_KINDS and n_keys == 1:
        return SiteMetrics(entropy_norm, row_diversity, True, "softmax over a single key: every probability is 1")
    if kind != "deformable" and n_queries > 1 and row_diversity < DIVERSITY_THRESHOLD:
        return SiteMetrics(entropy_norm, row_diversity, True, f"row diversity {row_diversity:.4f} < {DIVERSITY_THRESHOLD}")
    return SiteMetrics(entropy_norm, row_diversity, False, "")
