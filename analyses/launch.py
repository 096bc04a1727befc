"""Launchers: where the training runs of a grid go, and the one job that times a grid.

``inline`` (the default) trains each (variant, seed) in this process, one after another. The
others hand each run to submitit as a job that receives a small picklable description
(:class:`TrainTask`: spec, data, recipe, seed, store path, run id; never a model, a tensor or a
store handle) and runs the same :func:`run_task` as ``inline``, writing its records to the
shared store:

- ``slurm``: one Slurm job array for the grid's training runs (submitit's SlurmExecutor, chosen
  explicitly: submitit's automatic choice falls back to local without a word), plus, when a
  latency sweep is missing, one job on one exclusive node that times every candidate
  interleaved in one process, exactly as inline;
- ``local``: submitit's LocalExecutor, one process per run on this machine, each pinned to its
  own GPU where there are GPUs (the latency sweep stays in this process, before the training);
- ``debug``: submitit's DebugExecutor, the job path run in this process (for debugging a job).

A job on several GPUs runs one task per GPU; the ranks come from submitit's job environment and
the existing DDP training takes them from there. Slurm's warning signal (USR2, ``--timeout-min``
less ``signal_delay_s``) reaches every task through srun; submitit then calls
:meth:`TrainJob.checkpoint`, which requeues the job, and the run resumes from its own
``last.pt`` (``--max-requeue`` caps how often). Every record of a job names its run id and
attempt; readers keep one per run id (``results.matching``), so a requeued or re-run job never
counts twice. Each job writes its state to ``JOB_DIR/status/RUN_ID.json``; ``JOB_DIR/grid.jsonl``
lists what was submitted: ``avskit jobs`` reads both.

Another engine (Ray, say) would be one more branch of :func:`make_executor` and of
:func:`submit`; nothing outside this module knows which launcher ran a job.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from avsbench_kit.errors import UserError

LAUNCHERS = ("inline", "local", "slurm", "debug")
MANIFEST = "grid.jsonl"


@dataclass
class LaunchOptions:
    """The launcher and its parameters (the flags of DETR's run_with_submitit.py and Hydra's launcher)."""

    launcher: str = "inline"
    job_dir: str | None = None  # default: beside the record store, STORE_FOLDER/jobs
    partition: str | None = None
    gpus_per_node: int = 0
    nodes: int = 1
    cpus_per_task: int | None = None
    timeout_min: int = 24 * 60
    array_parallelism: int = 256
    max_requeue: int = 3
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    slurm_args: tuple[str, ...] = ()  # KEY=VALUE, anything else sbatch takes
    wait: bool = True
    signal_delay_s: int = 120
    local_jobs: int | None = None  # local: at most this many jobs at once (default: the cores / job_threads, at least 1)
    job_threads: int | None = None  # each job's torch threads and OMP_NUM_THREADS (default: local, the cores / local_jobs; Slurm, cpus_per_task)

    def local_plan(self) -> tuple[int, int]:
        """(jobs at once, threads per job) of a local grid on this machine's cores."""
        cores = os.cpu_count() or 1
        if self.local_jobs is None and self.job_threads is None:
            return 1, cores
        if self.local_jobs is None:
            return max(1, cores // self.job_threads), self.job_threads
        return self.local_jobs, self.job_threads or max(1, cores // self.local_jobs)

    def threads(self) -> int | None:
        """The torch threads each job of this launcher takes (None: torch's default)."""
        if self.launcher == "local":
            return self.local_plan()[1]
        return self.job_threads or (self.cpus_per_task if self.launcher == "slurm" else None)

    def check(self) -> None:
        if self.launcher not in LAUNCHERS:
            raise UserError(f"--launcher {self.launcher!r} is not accepted; choose one of: {', '.join(LAUNCHERS)}")
        for name, value, low in (("--nodes", self.nodes, 1), ("--gpus-per-node", self.gpus_per_node, 0),
                                 ("--timeout-min", self.timeout_min, 1), ("--array-parallelism", self.array_parallelism, 1),
                                 ("--max-requeue", self.max_requeue, 0), ("--local-jobs", self.local_jobs or 1, 1),
                                 ("--job-threads", self.job_threads or 1, 1)):
            if value < low:
                raise UserError(f"{name} must be at least {low}, got {value}")
        parse_slurm_args(self.slurm_args)
        if self.launcher == "slurm" and shutil.which("sbatch") is None:
            raise UserError("--launcher slurm: sbatch is not on this machine's PATH (no Slurm here); "
                            "run the grid with --launcher local, or submit from a Slurm login node")
        if self.launcher in ("local", "debug") and self.nodes > 1:
            raise UserError(f"--launcher {self.launcher} runs on this machine: --nodes must be 1, got {self.nodes}")

    def folder(self, store: Path) -> Path:
        return Path(self.job_dir) if self.job_dir else Path(store).resolve().parent / "jobs"


def parse_slurm_args(items: tuple[str, ...] | list[str]) -> dict[str, str]:
    parsed = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--slurm-arg {item!r}: write KEY=VALUE, e.g. --slurm-arg mem=64G")
        parsed[key.strip().lstrip("-").replace("-", "_")] = value
    return parsed


def slurm_parameters(opts: LaunchOptions, name: str, exclusive: bool = False) -> dict[str, Any]:
    """submitit SlurmExecutor parameters (sbatch's names) for ``opts``: one task per GPU."""
    params: dict[str, Any] = {"job_name": name, "time": opts.timeout_min, "nodes": opts.nodes,
                              "ntasks_per_node": max(1, opts.gpus_per_node), "array_parallelism": opts.array_parallelism,
                              "signal_delay_s": opts.signal_delay_s}
    if opts.gpus_per_node:
        params["gpus_per_node"] = opts.gpus_per_node
    for key in ("partition", "cpus_per_task", "account", "qos", "constraint"):
        if getattr(opts, key) is not None:
            params[key] = getattr(opts, key)
    if exclusive:
        params["exclusive"] = True
    extra = parse_slurm_args(opts.slurm_args)
    if extra:
        params["additional_parameters"] = extra
    return params


def make_executor(opts: LaunchOptions, folder: Path, name: str = "avskit", exclusive: bool = False):
    """The submitit executor of ``opts.launcher``, chosen by name (never submitit's automatic choice)."""
    import submitit

    logs = Path(folder) / "%j"
    if opts.launcher == "debug":
        return submitit.DebugExecutor(logs)
    if opts.launcher == "local":
        executor = submitit.LocalExecutor(logs, max_num_timeout=opts.max_requeue)
        executor.update_parameters(timeout_min=opts.timeout_min, signal_delay_s=opts.signal_delay_s)
        return executor
    if opts.launcher == "slurm":
        executor = submitit.SlurmExecutor(logs, max_num_timeout=opts.max_requeue)
        executor.update_parameters(**slurm_parameters(opts, name, exclusive))
        return executor
    raise ValueError(opts.launcher)


# ---- what a job is -----------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainTask:
    """One (variant, seed) run, as a job receives it: the caller's function and its plain arguments.

    ``run`` is a module-level function (pickled by reference), called as ``run(**kwargs,
    provenance=..., on_step=...)``; this module never knows what it computes. ``identity`` is the
    run's identity with its spec (``avsbench_kit.recipe.run_identity``): the run id is its hash.
    """

    run: Callable[..., dict]
    kwargs: dict[str, Any]  # plain values only: no model, tensor or store handle
    label: str
    seed: int
    identity: dict[str, Any]
    store: str
    steps: int = 0
    job_dir: str | None = None
    launcher: str = "inline"
    threads: int | None = None  # set by submit: the job's torch threads (its share of the machine)

    @property
    def run_id(self) -> str:
        """The same run gives the same id, so a command run again finds its runs."""
        return hashlib.sha256(json.dumps(self.identity, sort_keys=True).encode()).hexdigest()[:16]


def recorded(task: TrainTask) -> list[dict]:
    """The store's records of this run (any attempt)."""
    from avsbench_kit.results import load_records

    return [r for r in load_records(Path(task.store)) if r.get("kind") == "train" and r["provenance"].get("run_id") == task.run_id]


def run_task(task: TrainTask, attempt: int = 0, on_step: Callable[[int, float], None] | None = None, job_id: str | None = None) -> dict:
    """Run one task here, its records naming its run id and attempt."""
    provenance = {"run_id": task.run_id, "attempt": attempt, "launcher": task.launcher, "job_id": job_id}
    return task.run(**task.kwargs, provenance=provenance, on_step=on_step)


def _write_status(job_dir: str | None, name: str, **fields: Any) -> None:
    """``JOB_DIR/status/NAME.json``, written whole (what ``avskit jobs`` reads)."""
    if not job_dir:
        return
    path = Path(job_dir) / "status" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps({"host": socket.gethostname(), "time": time.strftime("%Y-%m-%dT%H:%M:%S"), **fields}))
    os.replace(tmp, path)


def _distributed_from_submitit() -> None:
    """One task per GPU: torch.distributed's variables from submitit's job environment (the DDP
    training reads WORLD_SIZE, RANK and LOCAL_RANK, and rendezvous at MASTER_ADDR:MASTER_PORT)."""
    import submitit

    try:
        env = submitit.JobEnvironment()
    except RuntimeError:  # not inside a submitit job (the debug executor)
        return
    if env.num_tasks > 1:
        os.environ.update(RANK=str(env.global_rank), LOCAL_RANK=str(env.local_rank), WORLD_SIZE=str(env.num_tasks),
                          MASTER_ADDR=env.hostnames[0], MASTER_PORT=str(20000 + int(hashlib.sha256(env.job_id.encode()).hexdigest(), 16) % 20000))


class TrainJob:
    """The callable a job runs: checkpointable (submitit calls :meth:`checkpoint` on the warning
    signal before a timeout or preemption and requeues what it returns)."""

    def __init__(self, task: TrainTask, attempt: int = 0):
        self.task, self.attempt = task, attempt

    def __call__(self) -> dict:
        task = self.task
        job_id = os.environ.get("SLURM_JOB_ID") or os.environ.get("SUBMITIT_LOCAL_JOB_ID")
        done = recorded(task)
        if done:  # a rerun of a run that already recorded (requeued after its last write): nothing twice
            _write_status(task.job_dir, task.run_id, state="done", attempt=self.attempt, job_id=job_id)
            return {"run_id": task.run_id, "model": task.label, "seed": task.seed, "reused": True}
        _write_status(task.job_dir, task.run_id, state="running", attempt=self.attempt, job_id=job_id)
        if task.threads:  # the job's share of the machine (OMP_NUM_THREADS came with its environment)
            import torch

            torch.set_num_threads(task.threads)
        _distributed_from_submitit()
        try:
            report = run_task(task, self.attempt, on_step=self.on_step, job_id=job_id)
        except BaseException as exc:
            if not isinstance(exc, SystemExit):  # SystemExit: submitit's requeue, its state already written
                first = (str(exc).strip().splitlines() or [""])[0]
                _write_status(task.job_dir, task.run_id, state="failed", attempt=self.attempt, job_id=job_id, error=f"{type(exc).__name__}: {first}")
            raise
        _write_status(task.job_dir, task.run_id, state="done", attempt=self.attempt, job_id=job_id, test=report.get("test"))
        return {"run_id": task.run_id, "model": task.label, "seed": task.seed, "test": report.get("test")}

    def on_step(self, step: int, loss: float) -> None:
        # stderr: the job's log either way, and a debug job's progress never mixes with a command's --json on stdout
        print(f"{self.task.label} seed {self.task.seed}: step {step}/{self.task.steps}, loss {loss:.4f}", file=sys.stderr, flush=True)

    def checkpoint(self, *args: Any, **kwargs: Any):
        """Requeue: the same run, one attempt later; it resumes from its last.pt."""
        from submitit.helpers import DelayedSubmission

        _write_status(self.task.job_dir, self.task.run_id, state="requeued", attempt=self.attempt)
        return DelayedSubmission(type(self)(self.task, self.attempt + 1))


class MeasureJob:
    """A grid's measurements (latency, params, FLOPs, dissipation) as one job: every candidate timed
    interleaved in one process on one exclusive node, exactly as inline. ``run(store, say,
    **payload)`` is the caller's module-level function; ``payload`` holds plain values only."""

    def __init__(self, run: Callable[..., dict], store: str, job_dir: str, **payload: Any):
        self.run, self.store, self.job_dir, self.payload = run, store, job_dir, payload

    @property
    def run_id(self) -> str:
        what = f"{self.run.__module__}.{self.run.__qualname__}"
        return "measure-" + hashlib.sha256(json.dumps([what, self.payload], sort_keys=True, default=str).encode()).hexdigest()[:12]

    def __call__(self) -> dict:
        _write_status(self.job_dir, self.run_id, model="measurements", seed=None, state="running", attempt=0)
        try:
            done = self.run(Path(self.store), lambda message: print(message, flush=True), **self.payload)  # the job's log
        except BaseException as exc:
            if not isinstance(exc, SystemExit):
                first = (str(exc).strip().splitlines() or [""])[0]
                _write_status(self.job_dir, self.run_id, model="measurements", seed=None, state="failed", attempt=0,
                              error=f"{type(exc).__name__}: {first}")
            raise
        _write_status(self.job_dir, self.run_id, model="measurements", seed=None, state="done", attempt=0)
        return done


# ---- submitting ----------------------------------------------------------------------------------

@dataclass
class Submitted:
    jobs: list[dict] = field(default_factory=list)  # the manifest lines written
    results: list[dict] = field(default_factory=list)  # what finished jobs returned (with wait)


def submit(tasks: list[TrainTask], opts: LaunchOptions, store: Path, name: str, measure_job: MeasureJob | None = None,
           say: Callable[[str], None] = lambda _: None, job_class: type[TrainJob] = TrainJob) -> Submitted:
    """Hand ``tasks`` (and the grid's measurement job, slurm only) to the launcher's executor as
    ``job_class`` jobs, each with its share of threads; a local grid runs at most ``local_plan()``'s
    jobs at once and queues the rest. With ``opts.wait``, wait for them and raise UserError naming
    the runs that failed; interrupted (Ctrl-C, SIGTERM), say which jobs still run and how to stop them."""
    folder = opts.folder(store)
    cap = opts.local_plan()[0] if opts.launcher == "local" else len(tasks) or 1
    if opts.launcher == "local" and not opts.wait and len(tasks) > cap:
        raise UserError(f"--no-wait: {len(tasks)} local jobs, at most {cap} at once; the rest wait for this command to start them "
                        "(drop --no-wait, or raise --local-jobs)")
    folder.mkdir(parents=True, exist_ok=True)
    threads = opts.threads()
    tasks = [dataclasses.replace(t, threads=threads) for t in tasks]
    submitted, jobs = Submitted(), []
    executor = make_executor(opts, folder, name=name) if tasks else None

    def record(job, info: dict) -> None:
        line = {**info, "job_id": str(job.job_id), "launcher": opts.launcher, "submitted": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "stdout": str(job.paths.stdout), "stderr": str(job.paths.stderr)}
        with (folder / MANIFEST).open("a") as manifest:
            manifest.write(json.dumps(line) + "\n")
        submitted.jobs.append(line)
        jobs.append((job, info))
        say(f"submitted {info['model']}" + (f" seed {info['seed']}" if info["seed"] is not None else "") + f" as job {job.job_id}")

    def start(k: int, task: TrainTask) -> None:
        if opts.launcher == "local" and _cuda_devices():  # each local job on its own GPU, in turn
            executor.update_parameters(gpus_per_node=1, visible_gpus=[k % _cuda_devices()])
        with _threads_env(threads):
            record(executor.submit(job_class(task)), {"run_id": task.run_id, "model": task.label, "seed": task.seed, "kind": "train"})

    with _interruptible(lambda: [(j, i) for j, i in jobs if not j.done()], folder):
        if measure_job is not None:
            job = make_executor(opts, folder, name=f"{name}-latency", exclusive=True).submit(measure_job)
            record(job, {"run_id": measure_job.run_id, "model": "measurements", "seed": None, "kind": "measure"})
        if tasks and opts.launcher == "slurm":  # one array for the whole grid
            with executor.batch():
                array = [executor.submit(job_class(task)) for task in tasks]
            for job, task in zip(array, tasks, strict=True):
                record(job, {"run_id": task.run_id, "model": task.label, "seed": task.seed, "kind": "train"})
        else:
            for k, task in enumerate(tasks):
                while sum(not j.done() for j, i in jobs if i["kind"] == "train") >= cap:  # the local cap: wait for a free slot
                    time.sleep(0.5)
                start(k, task)
        if not opts.wait:
            return submitted
        failed = []
        for job, info in jobs:
            try:
                submitted.results.append(job.result())  # the debug executor runs it here
            except Exception as exc:  # noqa: BLE001 (submitit's failure types carry the job's traceback)
                failed.append(f"{info['model']} seed {info['seed']} (job {job.job_id}): {_why(folder, info['run_id'], exc)}")
            say(f"finished {info['model']}" + (f" seed {info['seed']}" if info["seed"] is not None else ""))
    if failed:
        raise UserError(f"{len(failed)} of {len(jobs)} jobs failed: {'; '.join(failed)} (avskit jobs {folder} shows their logs)")
    return submitted


@contextlib.contextmanager
def _threads_env(threads: int | None):
    """OMP_NUM_THREADS for the processes started inside (a local job inherits this environment)."""
    before = os.environ.get("OMP_NUM_THREADS")
    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = before


@contextlib.contextmanager
def _interruptible(running: Callable[[], list], folder: Path):
    """Ctrl-C or SIGTERM while a grid is launched or awaited: one line naming the jobs that still
    run (they outlive this process) and the command that stops them."""
    previous = signal.getsignal(signal.SIGTERM) if threading.current_thread() is threading.main_thread() else None

    def terminate(signum, frame):
        raise KeyboardInterrupt

    if previous is not None:
        signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    except KeyboardInterrupt:
        left = running()
        names = ", ".join(f"{i['model']}" + (f" seed {i['seed']}" if i["seed"] is not None else "") + f" (job {j.job_id})"
                          for j, i in left)
        raise UserError(f"interrupted; {len(left)} job(s) still run: {names or 'none'}; stop them with: avskit jobs {folder} --cancel"
                        if left else "interrupted; no job was left running") from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _why(folder: Path, run_id: str, exc: Exception) -> str:
    """A failed job's reason in one line: what the job wrote in its status, else the traceback's last line."""
    status = Path(folder) / "status" / f"{run_id}.json"
    if status.is_file():
        error = json.loads(status.read_text()).get("error")
        if error:
            return error
    trace = str(exc).split("----------------------")
    return _last_line(trace[1] if len(trace) > 2 else str(exc))


def submit_one(task: TrainTask, launch: LaunchOptions, name: str, say: Callable[[str], None] = lambda _: None) -> Submitted:
    """`avskit train --launcher ...`: one run as one job."""
    return submit([task], launch, Path(task.store), name, say=say)


def _cuda_devices() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""
