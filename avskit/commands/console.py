"""Where the commands print: stdout for results, stderr for progress and notices, and the few
formatting helpers they share."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

out = Console()
err = Console(stderr=True)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")


def say(text: str) -> None:
    """One plain line on stdout (no markup, no highlighting, never wrapped mid-path)."""
    out.print(text, highlight=False, soft_wrap=True)


def millions(n: int | float | None) -> str:
    return "" if n is None else f"{n / 1e6:,.2f}M"


def fmt(value, scale: float = 1.0, suffix: str = "") -> str:
    return "" if value is None else f"{value / scale:.1f}{suffix}"


def score(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if isinstance(value, float) and value >= 10 else f"{value:.2f}" if isinstance(value, float) else str(value)


def mean_sd(row: dict, metric: str) -> str:
    """``row[metric]`` and ``row[metric_sd]`` as ``0.915 ± 0.003`` (no sd for one seed)."""
    if metric not in row:
        return ""
    sd = row.get(f"{metric}_sd")
    return f"{row[metric]:.3f}" + (f" ± {sd:.3f}" if sd is not None else "")


def short_header(column: str) -> str:
    """A report column name shortened for an 80-column terminal (the files keep the long names)."""
    import re

    source = "\n(paper)" if column.endswith("(reported)") else "\n(here)" if column.endswith("(measured)") else ""
    name = re.sub(r" \((reported|measured)\)$", "", column)
    name = re.sub(r"^latency ms, (.*)$", r"\1 ms", name)
    name = re.sub(r"^ratio to [^,]*(, (.*))?$", r"\2 ratio", name).strip()
    return name.replace("live params M", "live M").replace("RTX 3090 ms", "RTX ms") + source


def short_reason(reason: str) -> str:
    """The console's few words for a dissipation verdict (--json keeps the full sentence)."""
    if "single key" in reason:
        return "1 key"
    if "row diversity" in reason:
        return "rows alike"
    return reason


def weights_summary(w: dict) -> str:
    from avsbench_kit.weights import WeightsReport

    return WeightsReport(**w).summary()


def bar_columns() -> tuple:
    """A progress bar's columns: what it does, the bar, done of total, the time left."""
    return TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()


def print_submitted(jobs: list[dict], job_dir: str | None, waited: bool) -> None:
    if not jobs:
        return
    what = "ran" if waited else "submitted"
    say(f"{what} {len(jobs)} job{'s' if len(jobs) != 1 else ''} ({jobs[0]['launcher']}); logs and states: avskit jobs {escape(str(job_dir))}")


class TrainingEta:
    """Prints the run's plan before the first step and its estimated time after the first few."""

    AFTER = 5

    def __init__(self, bar, task, steps: int):
        self.bar, self.task, self.steps, self.first = bar, task, steps, None

    def plan(self, p: dict) -> None:
        resume = f"; resuming from {escape(p['checkpoint'])}" if p["resuming"] else ""
        self.bar.console.print(f"plan: {p['steps']} steps of {p['batch']} frames ({p['train_frames']} training frames, "
                               f"{p['size']}x{p['size']}), then {p['test_frames']} test frames; checkpoint every "
                               f"{p['checkpoint_every']} steps to {escape(p['checkpoint'])}{resume}", highlight=False, soft_wrap=True)

    def step(self, step: int, loss: float) -> None:
        self.bar.update(self.task, completed=step, description=f"training, loss {loss:.3f}")
        now = time.perf_counter()
        if self.first is None:
            self.first = (step, now)  # the first step includes the audio features: time from here on
        elif step == self.first[0] + self.AFTER and step < self.steps:
            per_step = (now - self.first[1]) / self.AFTER
            self.bar.console.print(f"{per_step:.2f} s per step: training ends in about {(self.steps - step) * per_step / 60:.1f} min "
                                   f"(then the evaluation)", highlight=False)
