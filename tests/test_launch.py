"""Launchers (issue #17): training grids through submitit's debug and local executors, requeue through
the timeout path, nothing counted twice, the Slurm parameters, `avskit jobs`. No Slurm here: the Slurm
path is checked as the sbatch script submitit would submit."""

import dataclasses
import json
import os
from pathlib import Path

import pytest
from launch_jobs import TimingOutJob

from avsbench_kit import UserError, make_spec
from avsbench_kit.recipe import Recipe
from avsbench_kit.results import load_records, matching, shard_folder
from avskit.analyses.compare import MeasureOptions, Sweep, measure, train_tasks
from avskit.analyses.jobs import grid_jobs
from avskit.analyses.launch import LaunchOptions, slurm_parameters, submit

from helpers import run

TESTS = Path(__file__).resolve().parent
SPECS = [make_spec("avesformer-r18"), make_spec("avesformer-r18", {"fusion": "tpavi"})]
TINY_RECIPE = Recipe(steps=2, batch=2, videos=7, size=64, checkpoint_every=1, warmup=0, val_every=0)
TINY = dict(train="synthetic:s4", recipe=TINY_RECIPE, measurements=(), probe_frames=0)


def test_debug_executor_runs_a_grid_in_process(tmp_path):
    store = tmp_path / "records.jsonl"
    launch = LaunchOptions("debug", job_dir=str(tmp_path / "jobs"))
    sweep = measure(SPECS, MeasureOptions(**TINY), store, launch=launch)
    assert [j["model"] for j in sweep.submitted] == [s.label for s in SPECS]
    records = load_records(store)
    assert {(r["model"], r["metric"]) for r in records} == {(s.label, m) for s in SPECS for m in ("jaccard", "f_score")}
    assert all(r["provenance"]["launcher"] == "debug" and r["provenance"]["attempt"] == 0 and len(r["provenance"]["run_id"]) == 16
               for r in records)
    assert [(j["state"], j["attempts"]) for j in grid_jobs(tmp_path / "jobs")] == [("done", 1), ("done", 1)]
    again = measure(SPECS, MeasureOptions(**TINY), store, launch=launch)  # the same grid again: nothing to run
    assert not again.submitted and len(again.skipped) == 2 and len(load_records(store)) == len(records)


def test_local_grid_two_processes_and_a_requeue_through_the_timeout_path(tmp_path, monkeypatch, capsys):
    """Two variants as two local processes; the first one's first attempt gets the time limit's signal
    after step 1 (tests/launch_jobs.py), is requeued, resumes at step 1 and records once."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    store, jobs = tmp_path / "records.jsonl", tmp_path / "jobs"
    launch = LaunchOptions("local", job_dir=str(jobs), timeout_min=5, signal_delay_s=10, max_requeue=1, local_jobs=2)
    opts = MeasureOptions(**TINY)
    tasks = train_tasks(SPECS, opts, store, [], Sweep(), launch)  # exactly the runs `compare --launcher local` makes
    submitted = submit(tasks, launch, store, "test-grid", job_class=TimingOutJob)

    records = load_records(store)
    shards = sorted(shard_folder(store).glob("*.jsonl"))
    assert len(shards) == 2 and len({s.stem.rsplit("-", 1)[1] for s in shards} - {str(os.getpid())}) == 2  # two job processes
    paused = [r for r in records if r["model"] == SPECS[0].label]
    assert sorted(r["metric"] for r in paused) == ["f_score", "jaccard"]  # one record per metric: nothing twice
    assert all(r["provenance"]["attempt"] == 1 and r["provenance"]["resumed_from"] == 1 for r in paused)
    assert all(r["provenance"]["attempt"] == 0 for r in records if r["model"] == SPECS[1].label)
    for job in submitted.jobs:
        assert Path(job["stdout"]).is_file() and Path(job["stderr"]).is_file()
    log = Path(submitted.jobs[0]["stdout"]).read_text()
    assert "this job is timed-out" in log and "Requeued job" in log  # submitit's timeout path, not a preemption

    code, out, err = run(capsys, "jobs", str(jobs), "--json")
    assert code == 0, err
    rows = {r["model"]: r for r in json.loads(out)["jobs"]}
    assert {m: (r["state"], r["attempts"]) for m, r in rows.items()} == {SPECS[0].label: ("done", 2), SPECS[1].label: ("done", 1)}
    assert "step 2/2" in rows[SPECS[1].label]["last_log_line"]

    again = measure(SPECS, opts, store, launch=launch)  # the command run again after the grid: measures nothing
    assert not again.submitted and len(again.skipped) == 2
    run_id = paused[0]["provenance"]["run_id"]  # reading keeps one per run id even if a rerun records again
    duplicate = [{**r, "provenance": {**r["provenance"], "attempt": 2}} for r in paused]
    assert len(matching(records + duplicate, "train", SPECS[0].to_dict(), {"run_id": run_id}, "jaccard")) == 1


def test_flags_become_submitit_slurm_parameters(tmp_path):
    opts = LaunchOptions("local", partition="gpu", gpus_per_node=2, nodes=2, cpus_per_task=8, timeout_min=90, array_parallelism=4,
                         max_requeue=5, account="acc", qos="high", constraint="a100", slurm_args=("mem=64G", "--exclude=n1"))
    params = slurm_parameters(opts, "avskit-grid", exclusive=True)
    assert params == {"job_name": "avskit-grid", "time": 90, "nodes": 2, "ntasks_per_node": 2, "gpus_per_node": 2,
                      "array_parallelism": 4, "signal_delay_s": 120, "partition": "gpu", "cpus_per_task": 8, "account": "acc",
                      "qos": "high", "constraint": "a100", "exclusive": True, "additional_parameters": {"mem": "64G", "exclude": "n1"}}


def test_a_slurm_grid_is_one_array_and_one_exclusive_measuring_job(tmp_path, monkeypatch, capsys):
    """Submitted through a stand-in sbatch (it keeps each script and answers with a job id): the
    training runs form one array, the measurements one exclusive job, and `avskit jobs` lists them."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "sbatch").write_text(f'#!/bin/sh\nn=$(ls {tmp_path}/sbatch-*.sh 2>/dev/null | wc -l)\n'
                                    f'cp "$1" {tmp_path}/sbatch-$n.sh\necho "Submitted batch job $((4242 + n))"\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    code, out, err = run(capsys, "compare", "--fusion", "tpavi,cross_attention", "--base", "avesformer-r18", "--train", "synthetic:s4",
                         "--steps", "2", "--seeds", "0,1", "--launcher", "slurm", "--partition", "gpu", "--gpus-per-node", "1",
                         "--max-requeue", "5", "--slurm-arg", "mem=64G", "--no-wait", "--job-dir", str(tmp_path / "jobs"),
                         "--results", str(tmp_path / "records.jsonl"), "--json")
    assert code == 0, err
    report = json.loads(out)
    measuring, array = (tmp_path / "sbatch-0.sh").read_text(), (tmp_path / "sbatch-1.sh").read_text()
    assert "#SBATCH --exclusive" in measuring and "--array" not in measuring
    assert "#SBATCH --array=0-3%4" in array and "--exclusive" not in array  # 2 variants x 2 seeds, one array
    for script in (measuring, array):
        for line in ("--partition=gpu", "--gpus-per-node=1", "--ntasks-per-node=1", "--mem=64G", "--signal=USR2@120"):
            assert f"#SBATCH {line}" in script, line
    assert [j["job_id"] for j in report["jobs"]] == ["4242", "4243_0", "4243_1", "4243_2", "4243_3"]
    code, out, err = run(capsys, "jobs", str(tmp_path / "jobs"), "--json")
    rows = json.loads(out)["jobs"]
    assert code == 0 and [(r["kind"], r["state"], r["attempts"]) for r in rows] == [("measure", "pending", 0)] + [("train", "pending", 0)] * 4
    assert {(r["model"], r["seed"]) for r in rows[1:]} == {(s.label, seed) for s in SPECS for seed in (0, 1)}


@pytest.mark.parametrize("args,message", [
    (["--launcher", "slurm", "--no-wait"], "sbatch is not on this machine's PATH"),
    (["--launcher", "ray"], "--launcher 'ray' is not accepted"),
    (["--launcher", "local", "--slurm-arg", "mem"], "write KEY=VALUE"),
    (["--launcher", "local", "--nodes", "2"], "--nodes must be 1"),
    (["--seeds", "0,x"], "--seeds '0,x'"),
    (["--videos", "3"], "--videos must be at least 7"),
])
def test_launcher_mistakes_are_one_line(capsys, tmp_path, args, message):
    code, out, err = run(capsys, "compare", "--fusion", "all", "--train", "synthetic:s4", "--results", str(tmp_path / "r.jsonl"), *args)
    assert code == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r.jsonl").exists() and not (tmp_path / "jobs").exists()


def test_a_failed_job_says_why_in_one_line(tmp_path, capsys):
    store, jobs = tmp_path / "records.jsonl", tmp_path / "jobs"
    launch = LaunchOptions("debug", job_dir=str(jobs))
    too_few = MeasureOptions(**{**TINY, "recipe": dataclasses.replace(TINY_RECIPE, videos=3)})  # too few videos
    tasks = train_tasks(SPECS[:1], too_few, store, [], Sweep(), launch)
    with pytest.raises(UserError, match=r"1 of 1 jobs failed: avesformer-r18 seed 0 \(job \w+\): UserError: --videos must be at least 7"):
        submit(tasks, launch, store, "bad")
    code, out, err = run(capsys, "jobs", str(jobs))
    assert code == 0 and "failed" in out and "--videos must be at least 7" in " ".join(out.split())


def test_train_as_one_job_keeps_stdout_for_json(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "train", "avesformer-r18", "--data", "synthetic:s4", "--videos", "7", "--size", "64", "--steps", "2",
                         "--batch", "2", "--val-every", "0", "--launcher", "debug", "--results", "r.jsonl", "--json")
    assert code == 0, err
    report = json.loads(out)  # the job's progress went to stderr
    assert report["job_dir"] == str(tmp_path / "jobs") and 0 <= report["results"][0]["test"]["jaccard"] <= 1
    assert "step 2/2" in err
    [row] = grid_jobs(tmp_path / "jobs")
    assert (row["state"], row["attempts"]) == ("done", 1)  # (a debug job logs only submitit's lines to its files)


def test_jobs_on_a_wrong_folder_is_one_line(capsys, tmp_path):
    code, _, err = run(capsys, "jobs", str(tmp_path))
    assert code == 2 and "no grid.jsonl here" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "grid.jsonl").write_text("{not json\n")
    code, _, err = run(capsys, "jobs", str(tmp_path))
    assert code == 2 and "not a readable job file" in err and len(err.strip().splitlines()) == 1


def test_a_local_grid_keeps_to_its_cap_and_each_job_to_its_threads(tmp_path, monkeypatch):
    """Three jobs, two at a time, one thread each (local_plan on any machine): never more than two ran
    at once, and each ran with torch's threads and OMP_NUM_THREADS at its share."""
    from launch_jobs import note_and_sleep

    from avskit.analyses.launch import TrainTask

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    out, store = tmp_path / "ran.jsonl", tmp_path / "records.jsonl"
    launch = LaunchOptions("local", job_dir=str(tmp_path / "jobs"), local_jobs=2, job_threads=1)
    assert launch.local_plan() == (2, 1)
    tasks = [TrainTask(run=note_and_sleep, kwargs={"out": str(out), "seconds": 1.0}, label=f"job{k}", seed=k, identity={"k": k},
                       store=str(store), job_dir=str(tmp_path / "jobs"), launcher="local") for k in range(3)]
    submitted = submit(tasks, launch, store, "cap")
    ran = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(submitted.results) == 3 and len(ran) == 3
    assert all(r["threads"] == 1 and r["omp"] == "1" for r in ran)
    moments = sorted({t for r in ran for t in (r["start"], r["end"])})
    assert max(sum(r["start"] <= t < r["end"] for r in ran) for t in moments) <= 2
    with pytest.raises(UserError, match="--no-wait: 3 local jobs, at most 2 at once"):
        submit(tasks, LaunchOptions("local", job_dir=str(tmp_path / "jobs"), local_jobs=2, wait=False), store, "cap")


def test_an_interrupted_launch_names_the_jobs_left_and_how_to_stop_them(tmp_path):
    from avskit.analyses.launch import _interruptible

    class Job:
        job_id = "4242"

    with pytest.raises(UserError, match=r"1 job\(s\) still run: tpavi seed 1 \(job 4242\); stop them with: avskit jobs .* --cancel"):
        with _interruptible(lambda: [(Job(), {"model": "tpavi", "seed": 1})], tmp_path):
            raise KeyboardInterrupt
    assert LaunchOptions("local").local_plan()[0] == 1  # by default one job at a time, with every core
