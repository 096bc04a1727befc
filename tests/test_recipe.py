"""One recipe and one run identity: train, compare --train and report --train train alike, and
resume, the store's matching, the launcher and the tables all name a run the same way."""

import dataclasses
import functools
import json
from pathlib import Path

import pytest

from avsbench_kit import make_spec, recipe
from avsbench_kit.checkpoints import run_differences
from avsbench_kit.engine import run_identity as checkpoint_identity
from avsbench_kit.recipe import DEFAULT, Recipe, identity_of, run_identity, runs_of
from avsbench_kit.results import load_records
from avskit.analyses import report as report_module
from avskit.analyses import tables
from avskit.analyses.compare import MeasureOptions, Sweep, train_tasks
from avskit.analyses.training import config_for, training_task

from helpers import run

TINY = Recipe(size=64, videos=7, steps=1, batch=2, lr=3e-4, warmup=1, val_every=0, checkpoint_every=1)
COMMITTED = Path(__file__).resolve().parents[1] / "reports" / "records.jsonl"


def test_train_compare_and_report_train_on_one_recipe(tmp_path, monkeypatch, capsys):
    """With no training flag, the three commands train with the default preset, whatever it is: the
    records they write carry one identity (checked on a tiny stand-in for the default)."""
    monkeypatch.setitem(recipe.PRESETS, "default", TINY)
    monkeypatch.setattr(report_module, "SWEEPS", (("table4", "avesformer-r18", "qg", ["pqg"]),))
    monkeypatch.setattr(report_module, "QUICK", report_module.Plan(warmup=1, iters=2, breakdown_iters=0, scaling_sizes=(), scaling_iters=2))
    monkeypatch.setattr(report_module, "MeasureOptions", functools.partial(MeasureOptions, measurements=("params",)))
    monkeypatch.setattr(report_module, "_maps", lambda store, say: None)
    monkeypatch.setattr(report_module, "render", lambda records, out, maps: [])
    stores = {name: tmp_path / f"{name}.jsonl" for name in ("train", "compare", "report")}
    code, _, err = run(capsys, "train", "avesformer-r18", "--out", str(tmp_path / "run"), "--results", str(stores["train"]), "--json")
    assert code == 0, err
    code, _, err = run(capsys, "compare", "--qg", "pqg", "--base", "avesformer-r18", "--train", "synthetic:s4", "--measure", "none",
                       "--probe-frames", "0", "--results", str(stores["compare"]), "--json")
    assert code == 0, err
    code, _, err = run(capsys, "report", "--quick", "--train", "synthetic:s4", "--train-tables", "4", "--results", str(stores["report"]),
                       "--out", str(tmp_path / "rep"), "--json")
    assert code == 0, err
    trained = {name: [r for r in load_records(store) if r["kind"] == "train" and r["model"] == "avesformer-r18"
                      and not r["provenance"]["audio_blind"]] for name, store in stores.items()}
    identities = {name: {json.dumps(identity_of(r["provenance"]), sort_keys=True) for r in found} for name, found in trained.items()}
    expected = json.dumps(identity_of(run_identity("synthetic:s4", TINY, 0)), sort_keys=True)
    assert identities == {"train": {expected}, "compare": {expected}, "report": {expected}}
    assert json.loads(expected)["lr"] == 3e-4 and json.loads(expected)["warmup"] == 1  # the stand-in's values, not the real default's
    blind = [r for r in load_records(stores["report"]) if r["kind"] == "train" and r["provenance"]["audio_blind"]]  # the control
    assert {json.dumps(identity_of(r["provenance"]), sort_keys=True) for r in blind} == {
        json.dumps(identity_of(run_identity("synthetic:s4", TINY, 0, audio_blind=True)), sort_keys=True)}


def test_one_identity_for_resume_matching_launcher_and_tables(tmp_path):
    spec = make_spec("avesformer-r18")
    ident = run_identity("synthetic:s4", DEFAULT, seed=1)
    env = {"device": "cpu", "commit": "abc", "subset": "s4"}
    record = {"kind": "train", "model": spec.label, "spec": spec.to_dict(), "metric": "jaccard", "value": 0.9, "unit": "",
              "provenance": {**env, **ident}}
    # written before warmup was recorded (no such key): the run of a recipe without warmup
    old = {**record, "value": 0.5, "provenance": {k: v for k, v in record["provenance"].items() if k != "warmup"}}
    no_warmup = dataclasses.replace(DEFAULT, warmup=0)
    assert runs_of([record, old], spec.to_dict(), ident) == [record]
    assert runs_of([record, old], spec.to_dict(), run_identity("synthetic:s4", no_warmup, seed=1)) == [old]
    assert runs_of([record], spec.to_dict(), run_identity("synthetic:s4", DEFAULT, seed=2)) == []

    # resume: a checkpoint's identity is the run's plus what only the engine knows
    saved = checkpoint_identity(config_for(DEFAULT, seed=1), 1, spec=spec.to_dict(), **ident)
    assert run_differences(saved, checkpoint_identity(config_for(DEFAULT, seed=1), 1, spec=spec.to_dict(), **ident)) == []
    lower = dataclasses.replace(DEFAULT, lr=1e-4)
    other = checkpoint_identity(config_for(lower, seed=1), 1, spec=spec.to_dict(), **run_identity("synthetic:s4", lower, seed=1))
    assert run_differences(saved, other) == ["lr: 0.0002 there, 0.0001 here"]

    # the launcher: the same run, the same id; another seed, another id
    task = training_task(spec, "synthetic:s4", DEFAULT, 1, False, tmp_path / "r.jsonl", tmp_path / "ckpt")
    assert task.identity == {"spec": spec.to_dict(), **ident}
    assert task.run_id == training_task(spec, "synthetic:s4", DEFAULT, 1, False, tmp_path / "s.jsonl", tmp_path / "other").run_id
    assert task.run_id != training_task(spec, "synthetic:s4", DEFAULT, 2, False, tmp_path / "r.jsonl", tmp_path / "ckpt").run_id

    # the tables: a recipe's seeds are one group; the old record is another recipe
    seed0 = {**record, "provenance": {**record["provenance"], "seed": 0}, "value": 0.8}
    found = tables.seed_runs([old, seed0, record], spec)
    assert found["recipe"] == identity_of(ident, recipe.RECIPE_KEYS) and sorted(found["runs"]) == [0, 1]


@pytest.mark.skipif(not COMMITTED.is_file(), reason="the committed report's records")
def test_the_committed_ablation_sweep_retrains_nothing():
    """The default recipe is the ablation recipe the committed Tables 4, 5 and 7 were trained with:
    their sweep, run again with no training flag, finds every (variant, seed) and control done."""
    records = load_records(COMMITTED)
    base = make_spec("avesformer-r18")
    variants = [base] + [make_spec("avesformer-r18", {axis: value}) for axis, value in
                         (("qg", "none"), ("qg", "qg"), ("qg", "bqg"), ("fusion", "dissipation"), ("fusion", "tpavi"), ("fusion", "cha"),
                          ("fusion", "sigmoid"))]
    opts = MeasureOptions(train="synthetic:s4", seeds=(0, 1, 2), audio_blind_control=True, measurements=())
    sweep = Sweep()
    assert train_tasks(variants, opts, COMMITTED, records, sweep, None) == []
    assert len(sweep.skipped) == len(variants) * 3 + 3
