"""FLOPs with fvcore, completed for the operators the zoo uses.

Convention (fvcore's): one multiply-add is one FLOP; matmuls, convolutions, einsums and
attention count their multiply-adds; normalisations and bilinear resampling count fvcore's
per-element constants. fvcore silently skips pure data movement (view, permute, cat, ...) and
ReLU; every other operator without a handle is *listed* (``uncounted``) with how often it ran,
never dropped without a word. Added here: ``aten::scaled_dot_product_attention`` (fvcore has no
handle and would miss every attention of the fused path) and a ``aten::matmul`` handle that
accepts 1-D operands and broadcasting (fvcore's asserts on them).
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from dataclasses import dataclass, field

import torch
from torch import nn

CONVENTION = "1 multiply-add = 1 FLOP (fvcore)"


@dataclass
class FlopCount:
    total: int | None
    by_module: dict[str, int] = field(default_factory=dict)  # module path -> FLOPs ("" = whole model)
    by_operator: dict[str, int] = field(default_factory=dict)
    uncounted: dict[str, int] = field(default_factory=dict)  # operator -> occurrences without a handle
    note: str = CONVENTION


def _shape(value) -> list[int]:
    return value.type().sizes()


def sdpa_flop_jit(inputs, outputs) -> int:
    """``softmax(q k^T) v``: Lq*Lk*d multiply-adds for the scores, Lq*Lk*d_v for the weighted sum."""
    q, k, v = (_shape(x) for x in inputs[:3])
    batch = math.prod(q[:-2])
    return batch * q[-2] * k[-2] * (q[-1] + v[-1])


def matmul_flop_jit(inputs, outputs) -> int:
    """``torch.matmul`` with its full semantics (1-D operands, broadcast batch dimensions)."""
    a, b = _shape(inputs[0]), _shape(inputs[1])
    a = [1, a[0]] if len(a) == 1 else a
    b = [b[0], 1] if len(b) == 1 else b
    batch = torch.broadcast_shapes(tuple(a[:-2]), tuple(b[:-2]))
    return math.prod(batch) * a[-2] * a[-1] * b[-1]


EXTRA_HANDLES = {"aten::scaled_dot_product_attention": sdpa_flop_jit, "aten::matmul": matmul_flop_jit}


def count_flops(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> FlopCount:
    """FLOPs of one forward of ``model(*inputs)``; ``total=None`` when fvcore is not installed."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notices: fvcore traces, we do not script
        try:
            from fvcore.nn import FlopCountAnalysis
        except ImportError:
            return FlopCount(None, note="fvcore is not installed: FLOPs not counted")
        analysis = FlopCountAnalysis(model, inputs).set_op_handle(**EXTRA_HANDLES)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
        from avsbench_kit.foreign import public_path

        by_module = {public_path(model, name): int(v) for name, v in analysis.by_module().items()}
        by_operator = {name: int(v) for name, v in analysis.by_operator().items()}
        uncounted = dict(Counter(analysis.unsupported_ops()))
    return FlopCount(int(analysis.total()), by_module, by_operator, uncounted)
