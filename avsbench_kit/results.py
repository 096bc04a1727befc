"""The record store: every measurement with its provenance, one JSON object per line.

A record says what was measured (model spec, metric, value, unit, statistics) and how (device
and its name, dtype, batch, resolution, threads, torch version, speed path, commit, time,
command). Records are appended, a whole line per write, so a run killed halfway keeps what it
had; a torn last line is skipped on reading. Tables and figures are pure functions of records.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

from avsbench_kit.errors import UserError

DEFAULT_STORE = Path("runs") / "records.jsonl"


def default_store() -> Path:
    return Path(os.environ.get("AVSKIT_RESULTS", DEFAULT_STORE))


def make_record(kind: str, model: str, spec: dict, metric: str, value: Any, unit: str, provenance: dict, **extra: Any) -> dict:
    return {"kind": kind, "model": model, "spec": spec, "metric": metric, "value": value, "unit": unit, **extra, "provenance": provenance}


def append_records(records: Iterable[dict], path: Path | None = None) -> Path:
    path = Path(path) if path is not None else default_store()
    lines = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+b") as f:
            f.seek(0, os.SEEK_END)
            if f.tell():
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":  # a writer killed mid-line: start a fresh line
                    lines = "\n" + lines
            f.write(lines.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise UserError(f"cannot append records to {path}: {exc.strerror}") from None
    return path


def load_records(path: Path | None = None) -> list[dict]:
    path = Path(path) if path is not None else default_store()
    if not path.exists():
        return []
    if path.is_dir():
        raise UserError(f"record store {path} is a folder; give a file such as runs/records.jsonl")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the record store {path}: {getattr(exc, 'strerror', None) or exc}") from None
    records = []
    for line in text.splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line torn by a killed writer
    return records


def ensure_writable_folder(folder: Path, option: str, what: str) -> None:
    """Create ``folder`` and check it can be written, before any long work; UserError if not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise UserError(f"{option} {folder}: cannot write {what} there ({exc.strerror or exc})") from None


def matching(records: list[dict], kind: str, spec: dict, settings: dict[str, Any] | None = None,
             metric: str | None = None, min_iters: int = 0) -> list[dict]:
    """Records of ``kind`` (and ``metric``) for exactly ``spec`` whose provenance has every
    ``settings`` value, with at least ``min_iters`` timed rounds; oldest first."""
    found = []
    for r in records:
        prov = r.get("provenance", {})
        if r.get("kind") != kind or r.get("spec") != spec or (metric is not None and r.get("metric") != metric):
            continue
        if any(prov.get(k) != v for k, v in (settings or {}).items()) or prov.get("iters", 0) < min_iters:
            continue
        found.append(r)
    return found


def best_timed(found: list[dict]) -> dict | None:
    """Of several latency records of one thing: the one with the most timed rounds, the latest of those."""
    most = max((r["provenance"].get("iters", 0) for r in found), default=0)
    best = [r for r in found if r["provenance"].get("iters", 0) == most]
    return best[-1] if best else None
