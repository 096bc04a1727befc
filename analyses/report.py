"""``avskit report``: measure what the records lack, then render every table and figure from them.

Two halves. ``measure_missing`` runs the sweeps the paper's tables need (``analyses.compare``), each
skipping what the store already has. ``render`` is a pure function of records: it picks the
records the report uses, writes them to ``OUT/records.jsonl`` and draws tables, figures and the
README from those alone, so rendering the same records twice gives the same bytes, and rendering
``OUT/records.jsonl`` again reproduces the report.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from avsbench_kit import UserError
from avsbench_kit.results import ensure_writable_folder, load_records, same_spec
from avsbench_kit.spec import make_spec
from avskit.analyses import figures, latency_runs, tables
from avskit.analyses.compare import MeasureOptions, Sweep, measure, train_tasks
from avskit.analyses.instruments import REPORT_TABLES, pathway_records
from avskit.analyses.launch import LaunchOptions, MeasureJob, submit
from avskit.analyses.variants import variants

# the synthetic benchmark's seed of the maps' frame: the trained maps' frame is a test-split video of
# the benchmark the checkpoints were trained on, whose seed (SyntheticFrames' default) is also 0
MAPS_SEED = 0


@dataclass(frozen=True)
class Plan:
    """How much measuring a report does: the quick plan fits 10 minutes on a 2-core CPU."""
    warmup: int
    iters: int
    breakdown_iters: int
    scaling_sizes: tuple[int, ...]
    scaling_iters: int


FULL = Plan(warmup=3, iters=20, breakdown_iters=5, scaling_sizes=figures.SCALING_SIZES, scaling_iters=10)
QUICK = Plan(warmup=1, iters=5, breakdown_iters=2, scaling_sizes=(224, 320, 416, 512), scaling_iters=3)

# (table, base model, axis, values): the base comes first and anchors each latency run
SWEEPS = (
    ("table3", tables.BASE, None, list(tables.TABLE3_ORDER)),
    ("table4", tables.BASE, "qg", ["pqg", "none", "qg", "bqg"]),
    ("table5", tables.BASE, "fusion", ["cross_attention", "dissipation", "tpavi", "cha", "sigmoid"]),
    ("table6", "avsegformer-r50", "qg", ["qg", "pqg"]),
    ("table7", tables.BASE, "stages", ["CTT", "TTT", "TCT", "TTC"]),
    ("table8", tables.BASE, "queries", ["16", "8", "32", "64", "128", "256"]),
    ("table9", tables.BASE, "backbone", ["resnet50", "resnet18", "pvt_v2_b5"]),
)


TRAINABLE_TABLES = ("table3", "table4", "table5", "table7")
TRAINED_AXES = ("qg", "fusion", "stages")  # the axes of tables 4, 5 and 7, whose rows have trained columns


def trained_tables(text: str) -> tuple[str, ...]:
    """``--train-tables 3,4,5,7`` -> ``("table3", "table4", ...)``."""
    chosen = tuple(dict.fromkeys(f"table{t.strip().removeprefix('table')}" for t in text.split(",") if t.strip()))
    if not chosen or set(chosen) - set(TRAINABLE_TABLES):
        raise UserError(f"--train-tables {text!r}: choose from 3, 4, 5, 7 (comma-separated)")
    return chosen


def train_tables(train: dict[str, Any]) -> tuple[str, ...]:
    """The tables whose models ``--train`` trains: Table 3's zoo (Figure 1's third panel) unless told."""
    return tuple(train.get("tables") or ("table3",))


def sweep_specs(base: str, axis: str | None, values: list[str]):
    if axis is None:  # the zoo itself, anchored on the base
        return [make_spec(base)] + [make_spec(v) for v in values if v != base]
    return variants(make_spec(base), axis, values)


def measure_missing(plan: Plan, store: Path, device: str = "cpu", threads: int | None = None,
                    train: dict[str, Any] | None = None, progress: Callable[[str], None] | None = None,
                    launch: LaunchOptions | None = None) -> list:
    """Every sweep and scaling run the report needs, skipping what ``store`` already holds. With
    ``launch``, the training runs go to its launcher; on Slurm the measurements too, as one job."""
    say = progress or (lambda message: None)
    launch = launch or LaunchOptions()
    if launch.launcher == "slurm":
        return [_submit_to_slurm(plan, store, device, threads, train, launch, say)]
    done = []
    base_opts = dict(device=device, size=tables.REPORT_SIZE, warmup=plan.warmup, iters=plan.iters,
                     breakdown_iters=plan.breakdown_iters, threads=threads)
    for name, base, axis, values in SWEEPS:
        specs = sweep_specs(base, axis, values)
        done.append(measure(specs, MeasureOptions(**base_opts), store, tag=f"report:{name}", progress=lambda m, n=name: say(f"{n}: {m}")))
        if not train or name not in train_tables(train):
            continue
        recipe = {k: v for k, v in train.items() if k != "tables"}
        if name == "table3":  # training (fig1's synthetic panel) is for the four zoo models only
            zoo = sweep_specs(tables.BASE, None, list(tables.ZOO_ORDER))
            done.append(measure(zoo, MeasureOptions(**base_opts, **recipe, measurements=()), store, tag="report:train",
                                progress=lambda m: say(f"table3: {m}"), launch=launch))
        else:  # an ablation table's trained columns: the trained base's variants, with seeds and the audio-blind control
            trained = [make_spec(tables.TRAINED_BASE, {axis: v}) for v in values]
            done.append(measure(trained, MeasureOptions(**base_opts, **recipe, measurements=(), audio_blind_control=True), store,
                                tag=f"report:train-{name}", progress=lambda m, n=name: say(f"{n}: {m}"), launch=launch))
    zoo = sweep_specs(tables.BASE, None, list(tables.ZOO_ORDER))
    for size in plan.scaling_sizes:
        opts = MeasureOptions(**{**base_opts, "size": size, "iters": plan.scaling_iters, "warmup": 1, "breakdown_iters": 0},
                              measurements=("latency",))
        done.append(measure(zoo, opts, store, tag="report:scaling", progress=lambda m, s=size: say(f"scaling {s}: {m}")))
    _maps(store, say)
    return done


def _maps(store: Path, say: Callable[[str], None]) -> None:
    """The attention maps of figures 4, 7, 8 and 9 as records (drawn later from the records): once
    from random weights, and again from the trained checkpoints whenever the store's set of them changes."""
    import torch

    from avsbench_kit.profiling.env import command_line, environment
    from avsbench_kit.results import append_records, make_record
    from avskit.analyses.dissipation import collect_maps, synthetic_sample

    records = load_records(store)
    spec = make_spec(tables.TRAINED_BASE)
    prov = {**environment(torch.device("cpu")), "command": command_line()}
    if not _maps_record(records):
        data = collect_maps(spec, synthetic_sample(tables.REPORT_SIZE, MAPS_SEED), progress=lambda m: say(f"maps: {m}"))
        append_records([make_record("attention_maps", spec.label, spec.to_dict(), "maps", len(data["fig9"]), "maps",
                                    {**prov, "size": tables.REPORT_SIZE, "input_seed": MAPS_SEED}, data=data)], store)
    found = trained_checkpoints(records)
    if not found or _maps_record(records, trained=found):
        return
    size, video = found[tables.TRAINED_BASE if tables.TRAINED_BASE in found else next(iter(found))]["frame"]
    sample = synthetic_sample(size, MAPS_SEED, video, 0)
    checkpoints = {label: {k: v for k, v in info.items() if k != "frame"} for label, info in found.items()}
    data = collect_maps(spec, sample, progress=lambda m: say(f"trained maps: {m}"), checkpoints=checkpoints)
    append_records([make_record("attention_maps", spec.label, spec.to_dict(), "maps", len(data["fig9"]), "maps",
                                {**prov, "size": size, "input_seed": MAPS_SEED, "input_video": video, "trained": _maps_key(found)},
                                data=data)], store)


def chosen_maps(records: list[dict], maps: str = "trained") -> dict | None:
    """The maps record the report draws: the trained checkpoints' (``maps="trained"``, when there is
    one), else the random-weight one."""
    return (maps == "trained" and _maps_record(records, trained=True)) or _maps_record(records)


def trained_checkpoints(records: list[dict]) -> dict[str, dict[str, Any]]:
    """The seed-0 checkpoints of the trained ablation variants (and the base) that the store's probes
    name and that are still on disk with their recorded SHA-256: label -> path, sha256, seed, steps,
    jaccard, and frame = (the training frame size, the first video of the synthetic test split)."""
    from avsbench_kit.data.synthetic import split_of
    from avsbench_kit.files import file_sha256

    found: dict[str, dict[str, Any]] = {}
    for _, _, axis, values in SWEEPS:
        if axis not in TRAINED_AXES:
            continue
        for value in values:
            spec = make_spec(tables.TRAINED_BASE, {axis: value})
            runs = tables.seed_runs(records, spec)
            run = (runs.get("runs") or {}).get(0, {})
            checkpoint = run.get("checkpoint")
            if spec.label in found or not checkpoint or not Path(checkpoint["path"]).is_file():
                continue
            if file_sha256(checkpoint["path"]) != checkpoint["sha256"]:
                continue  # overwritten since it was probed
            recipe = runs["recipe"]
            videos = recipe.get("videos") or 3000
            test = next(v for v in range(videos) if split_of(v, videos) == "test")
            found[spec.label] = {"path": checkpoint["path"], "sha256": checkpoint["sha256"], "seed": 0, "steps": recipe.get("steps"),
                                 "jaccard": run.get("jaccard"), "frame": (recipe.get("size") or 64, test)}
    return found


def _maps_key(found: dict[str, dict[str, Any]]) -> list[list[str]]:
    return sorted([label, info["sha256"]] for label, info in found.items())


def _maps_record(records: list[dict], trained: dict[str, dict[str, Any]] | bool | None = None) -> dict | None:
    """The latest maps record: from random weights (``trained`` None), from any trained checkpoints
    (True), or from exactly these checkpoints (a ``trained_checkpoints`` result)."""
    found = [r for r in records if r.get("kind") == "attention_maps" and r["provenance"].get("input_seed") == MAPS_SEED]
    if trained is None:
        found = [r for r in found if "trained" not in r["provenance"] and r["provenance"].get("size") == tables.REPORT_SIZE]
    elif trained is True:
        found = [r for r in found if r["provenance"].get("trained")]
    else:
        found = [r for r in found if r["provenance"].get("trained") == _maps_key(trained)]
    return found[-1] if found else None


# ---- rendering: a pure function of records -------------------------------------------------------

def select(records: list[dict]) -> list[dict]:
    """The records the report shows, in store order: the latest of each measurement it looks up."""
    wanted: dict[int, dict] = {}

    def keep(record: dict | None) -> None:
        if record is not None:
            wanted[id(record)] = record

    devs = tables.devices(records)
    for _, base, axis, values in SWEEPS:
        specs = sweep_specs(base, axis, values)
        for spec in specs:
            keep(tables.params_record(records, spec))
            keep(tables.flops_record(records, spec))
            keep(tables.dissipation_record(records, spec))
            for metric in ("jaccard", "f_score"):
                keep(tables.train_record(records, spec, metric))
                if axis is None:
                    for subset, _ in tables.RELEASED_SUBSETS:
                        keep(tables.released_eval_record(records, spec.name, subset, metric))
        for dev in devs:
            sizes = figures.scaling_sizes(records, dev) if axis is None else [tables.REPORT_SIZE]
            for size in sizes:
                for record in latency_runs.latencies(records, specs, base, dev, size).values():
                    keep(record)
            if axis is None:  # the scaling figure's curves: each size's run from one session
                zoo = [make_spec(name) for name in tables.ZOO_ORDER]
                for found in latency_runs.one_session(records, zoo, dev, sizes).values():
                    for record in found.values():
                        keep(record)
        if axis in TRAINED_AXES:  # the trained columns: every seed's run, its probe, the audio-blind control
            trained = [make_spec(tables.TRAINED_BASE, {axis: v}).to_dict() for v in values]
            for r in records:
                if r.get("kind") in ("train", "attention_frames") and any(same_spec(r.get("spec"), t) for t in trained) \
                        and str(r["provenance"].get("data", "")).startswith("synthetic:"):
                    keep(r)
    keep(_maps_record(records))
    keep(_maps_record(records, trained=True))
    for record in pathway_records(records):  # the pathways table and figure: the latest per checkpoint and data
        keep(record)
    return [r for r in records if id(r) in wanted]


def provenance(records: list[dict]) -> dict[str, Any]:
    """What the figures' footers say: commits, torch versions and devices of the records shown."""
    def values(key: str) -> str:
        return ", ".join(sorted({str(r["provenance"].get(key)) for r in records if r["provenance"].get(key)}))
    return {"commit": values("commit"), "torch": values("torch"), "device": values("device_name")}


def latency_panels(records: list[dict]) -> list[tuple[str, list[dict]]]:
    """One panel per table and device: the latency records that table shows, in its row order."""
    panels = []
    for name, base, axis, values in SWEEPS:
        specs = sweep_specs(base, axis, values)
        for dev in tables.devices(records):
            found = [r for r in latency_runs.latencies(records, specs, base, dev, tables.REPORT_SIZE).values() if r]
            if found:
                rounds = sorted({r["provenance"].get("iters") for r in found})
                title = (f"{name.replace('table', 'Table ')}: {'the zoo' if axis is None else axis + ' sweep'}, anchor {base}, "
                         f"{dev}, {'/'.join(map(str, rounds))} rounds")
                panels.append((title, figures.latency_candidates(found)))
    return panels


MAPS = ("trained", "untrained")


def render(records: list[dict], out: Path, maps: str = "trained") -> list[str]:
    """Tables, figures, README and records.jsonl into ``out`` from ``records`` only; returns the files
    written. ``maps``: draw figures 4a, 7, 8 and 9 from the trained checkpoints' maps when the records
    hold them (else from random weights, said in their titles), or from random weights."""
    import numpy as np

    from avsbench_kit.data.synthetic import synthetic_frame
    from avskit.analyses.attention_figures import render_maps
    from avskit.analyses.figure_io import save_figure

    used = select(records)
    written = []
    for make in REPORT_TABLES:
        table = make(used)
        for ext, text in (("md", tables.to_markdown(table)), ("tex", tables.to_latex(table)), ("csv", tables.to_csv(table))):
            written.append(_write(out / "tables" / f"{table.name}.{ext}", text))
    written += figures.draw(used, out / "figures", provenance)
    written += save_figure(figures.latency_distributions(latency_panels(used), "Latency distributions of each table's run "
                                                         "(every timed round; 224x224, batch 1)"),
                           out / "figures" / "latency_distributions", provenance([r for r in used if r.get("kind") == "latency"]))
    chosen = chosen_maps(used, maps)
    if chosen:
        p = chosen["provenance"]
        frame = synthetic_frame("s4", p["input_seed"], p.get("input_video", 0), 0, p["size"])
        data = chosen["data"]
        if "checkpoints" in data:  # each checkpoint's training verdict (learned, still rising, ...) from the train records
            data = {**data, "checkpoints": {fig: [{**c, "verdict": tables.checkpoint_verdict(used, c.get("sha256", ""))} for c in used_ckpts]
                                            for fig, used_ckpts in data["checkpoints"].items()}}
        written += render_maps(data, np.asarray(frame.image), out / "figures", {**provenance([chosen]), "time": p.get("time")},
                               mask=frame.mask)
    written.append(_write(out / "records.jsonl", "".join(json.dumps(r, sort_keys=True) + "\n" for r in used)))
    from avskit.analyses.report_readme import readme

    written.append(_write(out / "README.md", readme(used, written, out, maps_trained=bool(chosen and chosen["provenance"].get("trained")))))
    return written


def _write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return str(path)


def _submit_to_slurm(plan: Plan, store: Path, device: str, threads: int | None, train: dict[str, Any] | None,
                     launch: LaunchOptions, say: Callable[[str], None]) -> Sweep:
    """The report's measurements as one exclusive job and its training runs as one array, together."""
    launch.check()
    sweep = Sweep()
    tasks = []
    if train:
        recipe = {k: v for k, v in train.items() if k != "tables"}
        records = load_records(store)
        for name, _, axis, values in SWEEPS:
            if name not in train_tables(train):
                continue
            specs = sweep_specs(tables.BASE, None, list(tables.ZOO_ORDER)) if name == "table3" else \
                [make_spec(tables.TRAINED_BASE, {axis: v}) for v in values]
            opts = MeasureOptions(device=device, **recipe, audio_blind_control=name != "table3")
            opts.check(here=False)
            tasks += [t for t in train_tasks(specs, opts, store, records, sweep, launch) if t.run_id not in {u.run_id for u in tasks}]
    job = MeasureJob(measure_job, str(Path(store).resolve()), str(launch.folder(store).resolve()), quick=plan is QUICK, device=device,
                     threads=threads)
    done = submit(tasks, launch, store, "avskit-report", job, say=say)
    sweep.submitted, sweep.job_dir = done.jobs, str(launch.folder(store))
    return sweep


def measure_job(store: Path, say: Callable[[str], None], quick: bool, device: str, threads: int | None) -> dict:
    """The report's measurements as one launched job (``launch.MeasureJob``; its training runs are jobs of their own)."""
    runs = measure_missing(QUICK if quick else FULL, store, device, threads, None, say)
    return {"measured": sum(len(r.measured) for r in runs)}


def report(out: Path, store: Path, quick: bool = False, measure_first: bool = True, device: str = "cpu", threads: int | None = None,
           train: dict[str, Any] | None = None, progress: Callable[[str], None] | None = None,
           released: tuple[Path, Path] | None = None, launch: LaunchOptions | None = None, maps: str = "trained") -> dict[str, Any]:
    """Measure what is missing (unless told not to), then render ``out`` from the store's records.
    ``released`` = (AVSBench root, folder of released checkpoints): evaluate those first (Table 3, Figure 1)."""
    ensure_writable_folder(out, "--out", "the report")
    if Path(store).resolve() == (out / "records.jsonl").resolve():
        raise UserError(f"--results {store} is the report's own copy of its records; give another store (e.g. runs/records.jsonl)")
    evaluated = []
    if released is not None:
        from avskit.analyses.released_eval import evaluate_released, plan

        plan(*released)  # bad folders or no checkpoint: one line now, before any measuring
        evaluated = evaluate_released(*released, store, tables.REPORT_SIZE, progress)
    runs = measure_missing(QUICK if quick else FULL, store, device, threads, train, progress, launch) if measure_first else []
    submitted = [job for run in runs for job in run.submitted]
    if submitted and launch is not None and not launch.wait:  # nothing new to draw until the jobs are done
        return {"out": str(out), "files": [], "submitted": submitted, "job_dir": str(launch.folder(store)), "measured": 0,
                "reused": sum(len(r.skipped) for r in runs), "records": 0, "table3": [], "released_evaluated": evaluated}
    records = load_records(store)
    if not records:
        raise UserError(f"no records in {store}: run without --no-measure first")
    # render into a scratch folder beside out, then move: a failed render leaves the old report whole
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".report-", dir=out))
    try:
        files = render(records, scratch, maps)
        for path in files:
            target = out / Path(path).relative_to(scratch)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    written = [str(out / Path(p).relative_to(scratch)) for p in files]
    measured = sum(len(r.measured) for r in runs)
    skipped = sum(len(r.skipped) for r in runs)
    table3 = tables.table3(select(records)).frame
    headline = table3.astype(object).where(table3.notna(), None).to_dict(orient="records")
    return {"out": str(out), "files": written, "measured": measured, "reused": skipped,
            "records": len(load_records(out / "records.jsonl")), "table3": headline, "released_evaluated": evaluated}
