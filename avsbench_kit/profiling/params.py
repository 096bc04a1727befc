"""Parameter counts: declared, live and trainable, in total and per top-level part.

*Declared* parameters are those the module holds. *Live* parameters take part in a forward pass:
found by running one and asking autograd which parameters the output depends on (a parameter
with no path to the output gets no gradient), never by listing modules by hand. *Trainable* are
the declared ones with ``requires_grad`` (VGGish is frozen by default).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class ParameterCounts:
    declared: int
    live: int
    trainable: int
    parts: dict[str, dict[str, int]] = field(default_factory=dict)  # part -> {declared, live, trainable}


def live_parameter_ids(model: nn.Module, *inputs: torch.Tensor) -> set[int]:
    """ids of the parameters the model's output depends on, found by one forward and backward pass.

    A model whose output picks among candidates (CATR keeps the best-scored query's mask) names what
    to differentiate instead: ``model.liveness_output(*inputs)``, every candidate and its score."""
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    was_training = model.training
    try:
        model.eval()
        for p in params:
            p.requires_grad_(True)
        with torch.enable_grad():
            select = getattr(model, "liveness_output", None)
            out = select(*inputs) if callable(select) else model(*inputs)
            grads = torch.autograd.grad(out.float().sum(), params, allow_unused=True)
    finally:
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad_(flag)
        model.train(was_training)
    return {id(p) for p, g in zip(params, grads, strict=True) if g is not None}


def count_parameters(model: nn.Module, size: int = 224) -> ParameterCounts:
    """Counts for a model (``model.parts`` names its top-level parts; otherwise its children)."""
    from avsbench_kit.inputs import model_inputs

    live = live_parameter_ids(model, *model_inputs(model, 1, size))
    parts: dict[str, dict[str, int]] = {}
    seen: set[int] = set()
    for name in getattr(model, "parts", ()) or tuple(n for n, _ in model.named_children()):
        parts[name] = _tally(getattr(model, name).parameters(), live, seen)
    rest = _tally(model.parameters(), live, seen)
    if rest["declared"]:
        parts["other"] = rest
    total = _tally(model.parameters(), live, set())
    return ParameterCounts(total["declared"], total["live"], total["trainable"], parts)


def _tally(params, live: set[int], seen: set[int]) -> dict[str, int]:
    counts = {"declared": 0, "live": 0, "trainable": 0}
    for p in params:
        if id(p) in seen:
            continue
        seen.add(id(p))
        counts["declared"] += p.numel()
        counts["live"] += p.numel() if id(p) in live else 0
        counts["trainable"] += p.numel() if p.requires_grad else 0
    return counts
