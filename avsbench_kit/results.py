"""The record store: every measurement with its provenance, one JSON object per line.

A record says what was measured (model spec, metric, value, unit, statistics) and how (device
and its name, dtype, batch, resolution, threads, torch version, speed path, commit, time,
command). Tables and figures are pure functions of records.

A store named ``P`` (default ``runs/records.jsonl``) is the file ``P`` together with the shard
folder ``P.d/``, in the manner of ``sources.list`` and ``sources.list.d``. Every process appends
only to its own shard, ``P.d/HOST-PID.jsonl``, so writers never share a file: nothing they write
can interleave, on one machine or on many over a network filesystem (where ``O_APPEND`` is not
atomic and advisory locks are not dependable). The file ``P`` itself is only ever written whole
(a report's ``records.jsonl``, an exported store). Readers merge ``P`` and every shard, in time
order. A writer killed mid-line leaves a torn last line in its own shard: readers skip it and say
how many they skipped, and the next writer of that shard starts a fresh line.
"""

from __future__ import annotations

import json
import os
import socket
import warnings
from pathlib import Path
from typing import Any, Iterable

from avsbench_kit.errors import UserError

DEFAULT_STORE = Path("runs") / "records.jsonl"
SHARD_SUFFIX = ".d"


class TornRecordsWarning(UserWarning):
    """Lines of a record store that are not whole JSON records (a writer was killed mid-line)."""


def default_store() -> Path:
    return Path(os.environ.get("AVSKIT_RESULTS", DEFAULT_STORE))


def shard_folder(path: Path) -> Path:
    """The folder of the store's per-writer shards: ``runs/records.jsonl`` -> ``runs/records.jsonl.d``."""
    return path.with_name(path.name + SHARD_SUFFIX)


def own_shard(path: Path) -> Path:
    """This process's shard of the store ``path``: one writer per file, on any machine."""
    host = "".join(c if c.isalnum() or c in "-_" else "_" for c in socket.gethostname()) or "host"
    return shard_folder(path) / f"{host}-{os.getpid()}.jsonl"


def make_record(kind: str, model: str, spec: dict, metric: str, value: Any, unit: str, provenance: dict, **extra: Any) -> dict:
    """One measurement. A spec with a whole-model ``weights`` file gets the file's SHA-256 in the
    provenance: the path alone does not say which weights were measured."""
    weights = (spec or {}).get("weights")
    if weights and "weights_sha256" not in provenance and Path(weights).is_file():
        from avsbench_kit.files import file_sha256

        provenance = {**provenance, "weights_sha256": file_sha256(weights)}
    return {"kind": kind, "model": model, "spec": spec, "metric": metric, "value": value, "unit": unit, **extra, "provenance": provenance}


def append_records(records: Iterable[dict], path: Path | None = None) -> Path:
    """Append ``records`` to the store ``path`` (through this process's shard); returns the store's path."""
    path = Path(path) if path is not None else default_store()
    if path.is_dir():
        raise UserError(f"record store {path} is a folder; give a file name such as runs/records.jsonl")
    lines = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records).encode("utf-8")
    shard = own_shard(path)
    try:
        shard.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(shard, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                lines = b"\n" + lines  # an earlier process with this pid was killed mid-line: start afresh
            view = memoryview(lines)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise UserError(f"cannot append records to {path}: {exc.strerror}") from None
    return path


def _read_lines(file: Path) -> tuple[list[dict], int]:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the record store {file}: {getattr(exc, 'strerror', None) or exc}") from None
    records, torn = [], 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            torn += 1
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            torn += 1
    return records, torn


def load_records(path: Path | None = None) -> list[dict]:
    """Every record of the store ``path`` (the file and its shards), oldest first.

    Torn lines (a writer killed mid-line) are skipped, with one TornRecordsWarning saying how many.
    """
    path = Path(path) if path is not None else default_store()
    if path.is_dir():
        raise UserError(f"record store {path} is a folder; give a file such as runs/records.jsonl")
    files = [path] if path.exists() else []
    shards = shard_folder(path)
    if shards.is_dir():
        files += sorted(shards.glob("*.jsonl"))
    records: list[dict] = []
    torn = 0
    for file in files:
        found, skipped = _read_lines(file)
        records += found
        torn += skipped
    if torn:
        warnings.warn(f"record store {path}: skipped {torn} torn line{'s' if torn != 1 else ''} "
                      "(a writer was killed mid-line); every whole record was read", TornRecordsWarning, stacklevel=2)
    # each file is in its writer's order; across writers, the time each record was made decides
    # (a stable sort: records of the same second keep their file order)
    return sorted(records, key=lambda r: str(r.get("provenance", {}).get("time", "")) if isinstance(r.get("provenance"), dict) else "")


def consolidate(path: Path) -> Path:
    """Merge the store's shards into the file ``path`` (atomically) and remove them: one file to
    hand on. Only for a store no other process is writing (a finished run's own output folder)."""
    path = Path(path)
    records = load_records(path)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records), encoding="utf-8")
        os.replace(tmp, path)
        shards = shard_folder(path)
        for shard in sorted(shards.glob("*.jsonl")) if shards.is_dir() else []:
            shard.unlink()
        if shards.is_dir() and not any(shards.iterdir()):
            shards.rmdir()
    except OSError as exc:
        raise UserError(f"cannot write the record store {path}: {exc.strerror}") from None
    return path


def ensure_writable_folder(folder: Path, option: str, what: str) -> None:
    """Check, before any long work, that ``folder`` can be written (or created, where its nearest
    existing ancestor can be written); UserError if not. It creates nothing: a command that then
    fails on its input leaves no empty output folder behind."""
    existing = Path(folder)
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(20, "not a directory")
        probe = existing / f".avskit-write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise UserError(f"{option} {folder}: cannot write {what} there ({exc.strerror or exc})") from None


def same_spec(a: dict | None, b: dict | None) -> bool:
    """Two spec dicts describe the same model; a field one of them lacks (a record written before the
    field existed) counts as its default, None."""
    if a is None or b is None:
        return a is b
    return all(a.get(k) == b.get(k) for k in set(a) | set(b))


def matching(records: list[dict], kind: str, spec: dict, settings: dict[str, Any] | None = None,
             metric: str | None = None, min_iters: int = 0) -> list[dict]:
    """Records of ``kind`` (and ``metric``) for exactly ``spec`` whose provenance has every
    ``settings`` value, with at least ``min_iters`` timed rounds; oldest first. Of the records of one
    launched run (the same ``run_id``: a requeued or re-run job), only the last of each metric counts."""
    found = []
    for r in records:
        prov = r.get("provenance", {})
        if r.get("kind") != kind or not same_spec(r.get("spec"), spec) or (metric is not None and r.get("metric") != metric):
            continue
        if any(prov.get(k) != v for k, v in (settings or {}).items()) or prov.get("iters", 0) < min_iters:
            continue
        found.append(r)
    last = {(r["provenance"]["run_id"], r.get("metric")): i for i, r in enumerate(found) if r["provenance"].get("run_id")}
    return [r for i, r in enumerate(found) if not r["provenance"].get("run_id") or last[(r["provenance"]["run_id"], r.get("metric"))] == i]


def best_timed(found: list[dict]) -> dict | None:
    """Of several latency records of one thing: the one with the most timed rounds, the latest of those."""
    most = max((r["provenance"].get("iters", 0) for r in found), default=0)
    best = [r for r in found if r["provenance"].get("iters", 0) == most]
    return best[-1] if best else None
