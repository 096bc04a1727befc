"""Which timing run a table or figure shows: a table's rows from ONE interleaved run, a curve's points
from one session, and the note that names the run (rendering: reads records only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from avsbench_kit.results import best_timed, matching
from avsbench_kit.spec import ModelSpec

REPORT_SIZE = 224  # the tables' frame size (224x224, the releases')
BASE = "avesformer-r50"  # every table's latency anchor


def latency_record(records: list[dict], spec: ModelSpec, anchor: str, device: str, size: int = REPORT_SIZE,
                   runs: tuple[str, ...] = ()) -> dict | None:
    """The eager fp32 batch-1 latency of ``spec`` timed in a run anchored on ``anchor``: one from
    ``runs`` if there is one (a table's rows from one run), else the one with the most timed
    rounds, the latest of those."""
    found = matching(records, "latency", spec.to_dict(),
                     {"anchor": anchor, "device": device, "size": size, "batch": 1, "dtype": "fp32", "path": "eager"})
    same_run = [r for r in found if r["provenance"].get("run") in runs]
    return same_run[-1] if same_run else best_timed(found)


def latency_runs(records: list[dict], specs: list[ModelSpec], anchor: str, device: str,
                 size: int = REPORT_SIZE) -> dict[str, dict[ModelSpec, dict]]:
    """Every interleaved run that timed some of ``specs`` (anchored on ``anchor``): run id -> its records."""
    settings = {"anchor": anchor, "device": device, "size": size, "batch": 1, "dtype": "fp32", "path": "eager"}
    by_run: dict[str, dict[ModelSpec, dict]] = {}
    for s in specs:
        for r in matching(records, "latency", s.to_dict(), settings):
            if r["provenance"].get("run"):
                by_run.setdefault(r["provenance"]["run"], {})[s] = r
    return by_run


def latencies(records: list[dict], specs: list[ModelSpec], anchor: str, device: str, size: int = REPORT_SIZE,
              prefer: Callable[[str], Any] | None = None) -> dict[ModelSpec, dict | None]:
    """Each spec's latency record for one table, from ONE interleaved run where it can: the run that
    timed the most of the table's rows (then by ``prefer(run)``, else the most rounds, the latest of
    equals); a row that run did not time keeps its own best record (see :func:`table_latencies`)."""
    found = {s: latency_record(records, s, anchor, device, size) for s in specs}
    by_run = latency_runs(records, specs, anchor, device, size)
    if not by_run:
        return found

    def rank(run: str):
        r = next(iter(by_run[run].values()))
        order = (r["provenance"].get("iters", 0), records.index(r) if len(records) < 5000 else 0)
        return (len(by_run[run]), prefer(run), *order) if prefer else (len(by_run[run]), *order)

    chosen = max(by_run, key=rank)
    return {s: by_run[chosen].get(s, found[s]) for s in specs}


def one_session(records: list[dict], specs: list[ModelSpec], device: str, sizes: list[int]) -> dict[int, dict]:
    """Each size's latencies from one run, the runs of one session: where a size was timed in more than
    one run (224 is Table 3's size too, re-timed on another day), the run closest in time to the runs
    of the sizes timed once, so a curve never joins two days' machine speeds."""
    runs = {s: latency_runs(records, specs, BASE, device, s) for s in sizes}

    def when(run_records: dict) -> float:
        return datetime.fromisoformat(next(iter(run_records.values()))["provenance"]["time"]).timestamp()

    single = [when(next(iter(found.values()))) for found in runs.values() if len(found) == 1]
    if not single:
        return {s: latencies(records, specs, BASE, device, s) for s in sizes}
    centre = sorted(single)[len(single) // 2]
    return {s: latencies(records, specs, BASE, device, s, prefer=lambda run, s=s: -abs(when(runs[s][run]) - centre)) for s in sizes}


def table_latencies(records: list[dict], specs: list[ModelSpec], anchor: str, device: str,
                    size: int = REPORT_SIZE) -> dict[ModelSpec, dict | None]:
    """:func:`latencies` as a table shows them: a row from another run than the table's keeps its
    ratio, its milliseconds blanked (a copy: ``value`` None, ``other_run`` True)."""
    found = latencies(records, specs, anchor, device, size)
    runs = [r["provenance"].get("run") for r in found.values() if r]
    ours = max(set(runs), key=runs.count) if runs else None
    return {s: r if r is None or r["provenance"].get("run") == ours else {**r, "value": None, "other_run": True} for s, r in found.items()}


def timing_note(lats: dict[str, dict[ModelSpec, dict | None]]) -> str:
    """The table's timing run, named: date, device, threads, rounds, run id; and its rows timed elsewhere."""
    notes = []
    for dev, found in lats.items():
        ours = [r for r in found.values() if r and not r.get("other_run")]
        if not ours:
            continue
        p = ours[0]["provenance"]
        text = (f"{dev} latency: one interleaved run, {str(p.get('time', ''))[:10]}, {p.get('device_name', dev)}, {p.get('threads')} "
                f"threads, {p.get('iters')} timed rounds (run {p.get('run')})")
        others = [s.label for s, r in found.items() if r and r.get("other_run")]
        if others:
            text += f"; timed in another run, so ratio only: {', '.join(others)}"
        notes.append(text)
    return (" " + "; ".join(notes) + ". Milliseconds are compared within a table only.") if notes else ""
