"""`avskit jobs`: what the jobs of a launched grid are doing, read from JOB_DIR/grid.jsonl (what
was submitted) and JOB_DIR/status/ (what each job wrote), and stopping the ones still running."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable

from avsbench_kit.errors import UserError
from avskit.analyses.launch import MANIFEST


def grid_jobs(job_dir: Path) -> list[dict]:
    """Every job the manifest lists (the latest submission of each run), with its state, attempts,
    the last line of its log and where its logs are."""
    job_dir = Path(job_dir)
    manifest = job_dir / MANIFEST
    if not manifest.is_file():
        raise UserError(f"{job_dir}: no {MANIFEST} here; give the --job-dir a grid was submitted with")
    latest: dict[str, dict] = {entry["run_id"]: entry for entry in _json_lines(manifest)}
    rows = []
    for entry in latest.values():
        status_file = job_dir / "status" / f"{entry['run_id']}.json"
        status = _json_lines(status_file)[0] if status_file.is_file() else {}
        state = status.get("state", "pending")
        if state in ("running", "requeued") and not _alive(entry):
            state = "failed"
            status.setdefault("error", "the job ended without a result (killed, out of memory, or past its time)")
        log = _last_own_line(_tail(Path(entry["stderr"])), _tail(Path(entry["stdout"])))
        rows.append({"model": entry["model"], "seed": entry["seed"], "kind": entry.get("kind", "train"), "run_id": entry["run_id"],
                     "job_id": entry["job_id"], "launcher": entry["launcher"], "state": state,
                     "attempts": int(status.get("attempt", 0)) + 1 if status else 0, "error": status.get("error"),
                     "last_log_line": log, "stdout": entry["stdout"], "stderr": entry["stderr"]})
    return rows


def _last_own_line(*texts: str) -> str:
    """The job's own last line (its progress or its error), past submitit's bookkeeping lines: from
    the first of ``texts`` that has one, else submitit's last line."""
    lines = [[line.strip() for line in text.strip().splitlines() if line.strip()] for text in texts]
    for found in lines:
        own = [line for line in found if not line.startswith("submitit ")]
        if own:
            return own[-1]
    return next((found[-1] for found in lines if found), "")


def _json_lines(path: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not a readable job file ({getattr(exc, 'strerror', None) or exc})") from None


def _tail(path: Path, size: int = 4096) -> str:
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - size))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _alive(entry: dict) -> bool:
    """Whether a job said running could still be: a local job's controller process still exists; a
    Slurm job is asked of Slurm where sacct or squeue is here (else assumed alive)."""
    if entry["launcher"] == "local":
        try:
            os.kill(int(entry["job_id"]), 0)
            return True
        except (OSError, ValueError):
            return False
    if entry["launcher"] == "slurm" and shutil.which("sacct"):
        import submitit

        state = submitit.SlurmJob(Path(entry["stdout"]).parent, entry["job_id"]).state
        return state not in ("FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "COMPLETED")
    return entry["launcher"] != "debug"


def wait_for(job_dir: Path, poll_s: float = 2.0, on_update: Callable[[int, int], None] | None = None) -> list[dict]:
    """Wait until every job of the grid is done or failed; ``on_update(finished, total)`` as they end."""
    while True:
        rows = grid_jobs(job_dir)
        finished = sum(r["state"] in ("done", "failed") for r in rows)
        if on_update:
            on_update(finished, len(rows))
        if finished == len(rows):
            return rows
        time.sleep(poll_s)


def cancel(job_dir: Path) -> list[dict]:
    """Stop every job of the grid still pending or running: a local job's controller gets SIGINT (it
    then stops its task, SIGKILL after a second: submitit's jobs ignore SIGTERM), a Slurm job scancel.
    Returns the jobs stopped."""
    stopped = []
    for row in grid_jobs(job_dir):
        if row["state"] not in ("pending", "running", "requeued"):
            continue
        if row["launcher"] == "local":
            try:
                os.kill(int(row["job_id"]), signal.SIGINT)
            except (OSError, ValueError):
                continue  # ended meanwhile
        elif row["launcher"] == "slurm":
            if shutil.which("scancel") is None:
                raise UserError("--cancel: scancel is not on this machine's PATH; cancel the Slurm jobs from a login node")
            subprocess.run(["scancel", row["job_id"]], check=False)
        else:
            continue
        stopped.append(row)
    return stopped
