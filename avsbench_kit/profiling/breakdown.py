"""Per-module runtime: where one forward pass spends its time.

Forward pre/post hooks time every selected module: ``perf_counter`` on CPU, a CUDA event pair on
GPU (resolved after the forward, with no synchronize between layers). A module called several
times in one forward (a mixer shared by three levels) is summed. The tree starts at the model's
natural parts (``model.parts``) and goes ``depth`` levels down; ModuleList/ModuleDict containers
are transparent (``decoder.stages.0`` is a child of ``decoder``). ``model.breakdown_groups`` adds
rows that gather modules across the tree by pattern (e.g. every fusion sub-layer).
"""

from __future__ import annotations

import fnmatch
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from avsbench_kit.foreign import public_path
from avsbench_kit.profiling.timing import time_once


@dataclass
class ModuleTiming:
    name: str
    depth: int  # 1 = a top-level part; 0 = a group row
    latency_ms: float  # median over iterations of the module's time in one forward
    params: int


@dataclass
class Breakdown:
    rows: list[ModuleTiming]
    forward_ms: float  # median of the same forward passes, timed whole
    coverage: float  # median over those passes of (sum of the top-level parts) / (whole forward)


def module_tree(model: nn.Module, depth: int) -> list[tuple[str, nn.Module, int]]:
    """(path, module, depth) for the parts and their descendants down to ``depth``, in order."""
    rows: list[tuple[str, nn.Module, int]] = []

    def visit(path: str, module: nn.Module, level: int) -> None:
        rows.append((path, module, level))
        if level < depth:
            for child_path, child in _children(path, module):
                visit(child_path, child, level + 1)

    parts = getattr(model, "parts", ()) or tuple(name for name, _ in model.named_children())
    for name in parts:
        visit(name, getattr(model, name), 1)
    return rows


def _children(path: str, module: nn.Module):
    for name, child in module.named_children():
        child_path = f"{path}.{name}"
        if isinstance(child, (nn.ModuleList, nn.ModuleDict)):
            yield from _children(child_path, child)
        else:
            yield child_path, child


def group_members(model: nn.Module) -> dict[str, list[str]]:
    """Group name -> module paths matching the model's ``breakdown_groups`` patterns."""
    groups = getattr(model, "breakdown_groups", {})
    paths = [public_path(model, name) for name, _ in model.named_modules() if public_path(model, name)]
    members = {}
    for group, patterns in groups.items():
        matched = [p for p in paths if any(fnmatch.fnmatchcase(p, pat) for pat in patterns)]
        # keep the outermost matches: a member's submodules are already inside its time
        members[group] = [p for p in matched if not any(p.startswith(q + ".") for q in matched)]
    return members


class _Timers:
    """Accumulates each hooked module's time within one forward pass."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.open: dict[str, list] = {}
        self.spans: dict[str, list] = {}

    def pre(self, name: str) -> Callable:
        def hook(module, args):
            if self.cuda:
                event = torch.cuda.Event(enable_timing=True)
                event.record()
                self.open.setdefault(name, []).append(event)
            else:
                self.open.setdefault(name, []).append(time.perf_counter())

        return hook

    def post(self, name: str) -> Callable:
        def hook(module, args, output):
            start = self.open[name].pop()
            if self.cuda:
                end = torch.cuda.Event(enable_timing=True)
                end.record()
                self.spans.setdefault(name, []).append((start, end))
            else:
                self.spans.setdefault(name, []).append((time.perf_counter() - start) * 1000.0)

        return hook

    def collect(self) -> dict[str, float]:
        """Milliseconds per module for the forward just run; clears the spans."""
        if self.cuda:
            torch.cuda.synchronize()
            totals = {name: sum(s.elapsed_time(e) for s, e in spans) for name, spans in self.spans.items()}
        else:
            totals = {name: sum(spans) for name, spans in self.spans.items()}
        self.spans = {}
        return totals


def module_breakdown(
    model: nn.Module, run: Callable[[], object], device: torch.device, depth: int = 2, iters: int = 10, warmup: int = 2,
) -> Breakdown:
    """Median time of each part (and descendant down to ``depth``, and each group) in one forward.

    The whole forward is timed in the same passes, so coverage compares like with like.
    """
    tree = module_tree(model, depth)
    groups = group_members(model)
    modules = {public_path(model, name): m for name, m in model.named_modules()}
    # a container (ModuleList) is never called itself: its time is the sum of its members'
    members_of = {path: [p for p, _ in _children(path, m)] if _is_container(m) else [path] for path, m, _ in tree}
    hooked = {p for paths in members_of.values() for p in paths} | {p for ms in groups.values() for p in ms}
    timers = _Timers(device)
    handles = []
    for path in hooked:
        handles.append(modules[path].register_forward_pre_hook(timers.pre(path)))
        handles.append(modules[path].register_forward_hook(timers.post(path)))
    samples: dict[str, list[float]] = {path: [] for path in hooked}
    whole: list[float] = []
    try:
        for i in range(warmup + iters):
            elapsed = time_once(run, device)
            totals = timers.collect()
            if i >= warmup:
                whole.append(elapsed)
                for path in hooked:
                    samples[path].append(totals.get(path, 0.0))
    finally:
        for handle in handles:
            handle.remove()

    def per_iter(paths: list[str]) -> list[float]:
        return [sum(samples[p][i] for p in paths) for i in range(iters)]

    rows = []
    for path, module, level in tree:
        times = per_iter(members_of[path])
        if level == 1 or any(times):
            rows.append(ModuleTiming(path, level, statistics.median(times), _params(module)))
    for group, paths in groups.items():
        if paths:
            rows.append(ModuleTiming(group, 0, statistics.median(per_iter(paths)), sum(_params(modules[m]) for m in paths)))
    tops = [per_iter(members_of[path]) for path, _, level in tree if level == 1]
    coverage = statistics.median(sum(t[i] for t in tops) / whole[i] for i in range(iters))
    return Breakdown(rows, statistics.median(whole), coverage)


def _is_container(module: nn.Module) -> bool:
    return isinstance(module, (nn.ModuleList, nn.ModuleDict))


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
