"""Compare: the paper's ablations as sweeps over one axis of a model spec; every result a record.

``measure(specs, ...)`` is the engine behind ``avskit compare`` and ``avskit report``. For each spec
it makes the records that are missing from the store and leaves the rest alone, so a sweep killed
halfway and run again does not redo finished variants:

- ``params``: declared, live (used by a forward and backward pass) and trainable parameters;
- ``flops``: fvcore's count at the sweep's input size, with the operators it did not count;
- ``dissipation``: every attention site of one forward on the synthetic S4 frame, and which are
  dissipated;
- ``latency``: the specs still missing one are timed together, interleaved, with the sweep's
  anchor (its first spec) in the same rounds, so each record carries its ratio to the anchor
  measured side by side, and the anchor gets a record of that run too (tables show a sweep's
  rows from one run); a per-part breakdown follows (shares of one forward);
- ``train`` (optional): J and F on the chosen data after a fixed number of steps, once per seed;
  run here one after another, or handed to a launcher (``analyses.launch``: local processes, a
  Slurm job array) as one job per (variant, seed).

The summary of a sweep is read back from the records, a pure function of them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from avsbench_kit import ModelSpec, UserError, build_from_spec
from avsbench_kit.inputs import as_input_device, model_inputs
from avsbench_kit.profiling.breakdown import module_breakdown
from avsbench_kit.profiling.env import command_line, environment
from avsbench_kit.profiling.flops import CONVENTION, count_flops
from avsbench_kit.profiling.params import count_parameters
from avsbench_kit.profiling.timing import interleaved_latency
from avsbench_kit.recipe import DEFAULT, SYNTHETIC_PREFIX, Recipe, check_size, run_identity, runs_of, same_run
from avsbench_kit.results import append_records, best_timed, default_store, ensure_writable_folder, load_records, make_record
from avsbench_kit.results import matching as matching_records
from avsbench_kit.spec import front_end_of, spec_from_dict
from avsbench_kit.stats import mean_sd
from avskit.analyses.launch import LaunchOptions, MeasureJob, TrainTask, run_task, submit
from avskit.analyses.summaries import trained_attention
from avskit.analyses.training import data_for, training_task

MEASUREMENTS = ("params", "flops", "dissipation", "latency")
PARAMS_SIZE = 64  # live parameters do not depend on the input size: the smallest input is enough
DISSIPATION_SIZE = 224
DISSIPATION_SEED = 0


@dataclass
class MeasureOptions:
    device: str = "cpu"
    size: int = 224  # latency and FLOPs input size
    warmup: int = 3  # untimed rounds
    iters: int = 20
    breakdown_iters: int = 5
    threads: int | None = None
    measurements: tuple[str, ...] = MEASUREMENTS
    train: str | None = None  # synthetic:s4 ... or a dataset root; None: no training
    subset: str | None = None
    recipe: Recipe = DEFAULT  # how each variant is trained (avsbench_kit.recipe)
    seeds: tuple[int, ...] = (0,)
    audio_blind_control: bool = False  # the base also trained audio-blind, once per seed
    probe_frames: int = 32  # test frames a trained checkpoint's attention is probed on (localisation; 0: none)

    def __post_init__(self) -> None:
        if isinstance(self.recipe, dict):  # from a job's plain values
            self.recipe = Recipe(**self.recipe)

    def check(self, here: bool = True) -> None:
        """``here``: the work runs on this machine (not on a cluster's nodes), so its device must be here."""
        if self.device not in ("cpu", "cuda"):
            raise UserError(f"--device {self.device!r} is not accepted; choose cpu or cuda")
        if not self.seeds or any(s < 0 for s in self.seeds):
            raise UserError(f"--seeds needs one or more seeds of 0 or more, got {','.join(map(str, self.seeds)) or 'none'}")
        if here and self.device == "cuda" and not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA device is available on this machine")
        for name, value, low in (("--iters", self.iters, 2), ("--warmup", self.warmup, 0),
                                 ("--threads", 1 if self.threads is None else self.threads, 1)):
            if value < low:
                raise UserError(f"{name} must be at least {low}, got {value}")
        check_size(self.size)
        unknown = set(self.measurements) - set(MEASUREMENTS)
        if unknown:
            raise UserError(f"--measure: unknown measurement {sorted(unknown)[0]!r}; choose from {', '.join(MEASUREMENTS)}, all or none")
        if not self.measurements and not self.train:
            raise UserError("--measure none leaves nothing to do without --train")
        if self.train:  # a bad --train is an error now, not after minutes of measuring
            try:
                data_for(self.train, self.recipe, self.subset).resolve_subset()
            except UserError as exc:  # the same checks as `avskit train --data`, named after this option
                raise UserError(str(exc).replace("--data", "--train")) from None
            check_size(self.recipe.size, "--train-size")
            if self.train.startswith(SYNTHETIC_PREFIX) and self.recipe.videos < 7:
                raise UserError(f"--videos must be at least 7 (so every split has a video), got {self.recipe.videos}")


def measurements(text: str) -> tuple[str, ...]:
    """``--measure``: ``all``, ``none`` or kinds, comma-separated (checked by ``MeasureOptions.check``)."""
    text = text.strip().lower()
    named = {"all": MEASUREMENTS, "none": ()}
    return named[text] if text in named else tuple(dict.fromkeys(k.strip() for k in text.split(",") if k.strip()))


# ---- matching records --------------------------------------------------------------------------

def _settings(kind: str, opts: MeasureOptions, env: dict, anchor: ModelSpec | None = None) -> dict[str, Any]:
    """What a record of ``kind`` must have been measured under to count as this sweep's (latency:
    in a run anchored on the same model, so its ratio to the anchor belongs to this sweep)."""
    if kind == "params":
        return {}
    if kind == "flops":
        return {"size": opts.size}
    if kind == "dissipation":
        return {"size": DISSIPATION_SIZE, "input_seed": DISSIPATION_SEED}
    if kind == "latency":
        return {"device": env["device"], "device_name": env["device_name"], "threads": env["threads"], "size": opts.size,
                "batch": 1, "dtype": "fp32", "path": "eager", "anchor": anchor.label if anchor else None}
    raise ValueError(kind)


def matching(records: list[dict], kind: str, spec: ModelSpec, settings: dict[str, Any], min_iters: int = 0) -> list[dict]:
    """Records of ``kind`` for exactly ``spec`` measured under ``settings``, oldest first."""
    return matching_records(records, kind, spec.to_dict(), settings, min_iters=min_iters)


# ---- measuring ---------------------------------------------------------------------------------

@dataclass
class Sweep:
    """What one call of ``measure`` did: which (spec, kind) it measured and which it found done."""
    measured: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    submitted: list[dict] = field(default_factory=list)  # jobs handed to a launcher (analyses.launch)
    job_dir: str | None = None


def measure(specs: list[ModelSpec], opts: MeasureOptions, store: Path | None = None, tag: str | None = None,
            progress: Callable[[str], None] | None = None, launch: LaunchOptions | None = None) -> Sweep:
    """Make the records ``specs`` are missing under ``opts`` (the first spec is the latency anchor);
    ``launch`` says where the training runs go (default: here, one after another)."""
    launch = launch or LaunchOptions()
    launch.check()
    opts.check(here=launch.launcher != "slurm")
    store = Path(store) if store is not None else default_store()
    records = load_records(store)  # a folder or an unreadable store is an error before any work
    ensure_writable_folder(store.parent, "--results", "records")
    say = progress or (lambda message: None)
    sweep = Sweep()
    if launch.launcher == "slurm":  # the measurements as one exclusive job, the training as one array
        job = MeasureJob(measure_job, str(store.resolve()), str(launch.folder(store).resolve()),
                                 specs=[s.to_dict() for s in specs], opts=dataclasses.asdict(opts), tag=tag or "compare") \
            if opts.measurements else None
        tasks = train_tasks(specs, opts, store, records, sweep, launch) if opts.train else []
        _launch(tasks, job, opts, launch, store, tag, sweep, say)
        return sweep
    _measure_here(specs, opts, store, tag, records, sweep, say)
    if opts.train:
        tasks = train_tasks(specs, opts, store, records, sweep, launch)
        if launch.launcher == "inline":
            _train_here(tasks, opts, store, records, sweep, say)
        else:
            _launch(tasks, None, opts, launch, store, tag, sweep, say)
            records[:] = load_records(store)
        if opts.probe_frames and (launch.launcher == "inline" or launch.wait):
            _probe_trained(specs, opts, store, records, sweep, say)
    return sweep


def identity(opts: MeasureOptions, seed: int, audio_blind: bool = False) -> dict[str, Any]:
    """The identity of one of the sweep's training runs (``avsbench_kit.recipe.run_identity``)."""
    return run_identity(opts.train, opts.recipe, seed, audio_blind)


def probe_of(records: list[dict], spec: ModelSpec, opts: MeasureOptions, seed: int) -> dict | None:
    """The attention record of the trained (variant, seed) checkpoint over the sweep's probe frames."""
    found = [r for r in matching(records, "attention_frames", spec, {"frames": opts.probe_frames})
             if same_run(r["provenance"].get("trained") or {}, identity(opts, seed))]
    return found[-1] if found else None


def _probe_trained(specs: list[ModelSpec], opts: MeasureOptions, store: Path, records: list[dict], sweep: Sweep,
                   say: Callable[[str], None]) -> None:
    """Each trained (variant, seed) checkpoint's attention over ``probe_frames`` test frames: the
    dissipated share and the localisation of its audio-to-visual maps (analyses.attention_frames)."""
    from avsbench_kit.files import file_sha256
    from avskit.analyses.attention_frames import probe_frames

    env = {**environment(torch.device("cpu")), "command": command_line()}
    for spec in specs:
        for seed in opts.seeds:
            checkpoint = checkpoint_folder(store, spec, opts, seed) / "last.pt"
            settings = {"trained": identity(opts, seed), "frames": opts.probe_frames}
            if not checkpoint.is_file() or not runs_of(records, spec.to_dict(), identity(opts, seed)):
                continue  # not trained (yet): nothing to probe
            probed = probe_of(records, spec, opts, seed)
            if probed and probed["provenance"].get("weights_sha256") in (None, file_sha256(checkpoint)):
                sweep.skipped.append((spec.label, f"trained attention seed {seed}"))
                continue  # (a checkpoint trained again, say a run's uninterrupted rerun, is probed again)
            say(f"attention: {spec.label} seed {seed}, trained, over {opts.probe_frames} test frames")
            data = data_for(opts.train, opts.recipe, opts.subset)
            subset = data.resolve_subset()
            front_end = front_end_of(spec)
            report = probe_frames(dataclasses.replace(spec, weights=str(checkpoint)), data.dataset("test", front_end), subset, opts.probe_frames,
                                  select_on=data.dataset("val", front_end))  # a site's query chosen on val frames, scored on test frames
            prov = {**env, **settings, "data": opts.train, "subset": subset, "size": opts.recipe.size, "checkpoint": str(checkpoint),
                    "weights_sha256": file_sha256(checkpoint)}
            new = make_record("attention_frames", spec.label, spec.to_dict(), "frames", report["frames"], "frames", prov,
                              sites=report["sites"], frame_indices=report["frame_indices"])
            append_records([new], store)
            records.append(new)
            sweep.measured.append((spec.label, f"trained attention seed {seed}"))


def _measure_here(specs: list[ModelSpec], opts: MeasureOptions, store: Path, tag: str | None, records: list[dict],
                  sweep: Sweep, say: Callable[[str], None]) -> None:
    if opts.threads:
        torch.set_num_threads(opts.threads)
    device = torch.device(opts.device)
    env = {**environment(device), "command": command_line(), "tag": tag}
    for spec in specs:
        for kind in ("params", "flops", "dissipation"):
            if kind not in opts.measurements:
                continue
            if matching(records, kind, spec, _settings(kind, opts, env)):
                sweep.skipped.append((spec.label, kind))
                continue
            say(f"{kind}: {spec.label}")
            new = _MEASURE[kind](spec, opts, env)
            append_records([new], store)
            records.append(new)
            sweep.measured.append((spec.label, kind))
    if "latency" in opts.measurements:
        _latency(specs, opts, env, device, store, records, sweep, say)


def _params(spec: ModelSpec, opts: MeasureOptions, env: dict) -> dict:
    model = build_from_spec(spec)
    size = getattr(model, "frame_size", None) or PARAMS_SIZE  # ECMVAE runs at 224x224 only
    counts = count_parameters(model, size)
    return make_record("params", spec.label, spec.to_dict(), "params_live", counts.live, "parameters", {**env, "size": size},
                       declared=counts.declared, trainable=counts.trainable, parts=counts.parts)


def _flops(spec: ModelSpec, opts: MeasureOptions, env: dict) -> dict:
    model = build_from_spec(spec)
    flops = count_flops(model, model_inputs(model, 1, opts.size))
    return make_record("flops", spec.label, spec.to_dict(), "flops", flops.total, "FLOP", {**env, "size": opts.size},
                       uncounted_ops=flops.uncounted, convention=CONVENTION)


def _dissipation(spec: ModelSpec, opts: MeasureOptions, env: dict) -> dict:
    from avskit.analyses.dissipation import site_table, synthetic_sample

    sites = site_table(spec, synthetic_sample(DISSIPATION_SIZE, DISSIPATION_SEED))
    flagged = [s for s in sites if s["dissipated"]]
    diversities = [s["row_diversity"] for s in sites if s["row_diversity"] is not None]
    return make_record("dissipation", spec.label, spec.to_dict(), "dissipated_sites", len(flagged), "attention calls",
                       {**env, "size": DISSIPATION_SIZE, "input_seed": DISSIPATION_SEED},
                       sites=len(sites), flagged=sorted({s["site"] for s in flagged}),
                       min_row_diversity=min(diversities) if diversities else None)


_MEASURE = {"params": _params, "flops": _flops, "dissipation": _dissipation}


def _latency(specs, opts: MeasureOptions, env: dict, device, store: Path, records: list[dict], sweep: Sweep, say) -> None:
    anchor = specs[0]
    settings = _settings("latency", opts, env, anchor)
    pending = [s for s in specs if not matching(records, "latency", s, settings, opts.iters)]
    if not pending:
        sweep.skipped += [(s.label, "latency") for s in specs]
        return
    # a table's latency cells come from one interleaved run: one new variant times the whole sweep again
    timed = list(dict.fromkeys(specs))
    models, inputs = [], []
    with torch.inference_mode():
        for spec in timed:
            say(f"latency: building {spec.label}")
            models.append(build_from_spec(spec).to(device))
            inputs.append(as_input_device(model_inputs(models[-1], 1, opts.size), device))
        say(f"latency: {len(timed)} models interleaved, {opts.warmup} warm-up + {opts.iters} rounds at {opts.size}x{opts.size}")
        stats = interleaved_latency([lambda m=m, a=a: m(*a) for m, a in zip(models, inputs, strict=True)], device, opts.warmup, opts.iters,
                                    on_iteration=lambda i: say(f"latency: round {i}/{opts.iters}"))
        run = uuid.uuid4().hex[:12]
        new = []
        for spec, model, args, stat in zip(timed, models, inputs, stats, strict=True):  # the anchor is recorded again: its row of this run
            modules, coverage = [], None
            if opts.breakdown_iters > 0:  # scaling runs skip it: they only need the end-to-end time
                say(f"latency: per-part breakdown of {spec.label}")
                parts = module_breakdown(model, lambda m=model, a=args: m(*a), device, depth=1, iters=opts.breakdown_iters, warmup=1)
                modules = [{"name": row.name, "depth": row.depth, "latency_ms": round(row.latency_ms, 4),
                            "share": round(row.latency_ms / parts.forward_ms, 4)} for row in parts.rows]
                coverage = round(parts.coverage, 4)
            prov = {**env, **settings, "warmup": opts.warmup, "iters": opts.iters, "run": run}
            new.append(make_record("latency", spec.label, spec.to_dict(), "latency_ms", stat.median, "ms", prov,
                                   stats=stat.to_dict(), samples_ms=stat.samples_ms(),
                                   ratio_to_anchor=round(stat.median / stats[0].median, 4), modules=modules, coverage=coverage,
                                   params=sum(p.numel() for p in model.parameters())))
    append_records(new, store)
    records.extend(new)
    sweep.measured += [(s.label, "latency") for s in timed]


def _training_runs(specs: list[ModelSpec], opts: MeasureOptions) -> list[tuple[ModelSpec, int, bool]]:
    """(variant, seed, audio-blind) of every training run the sweep needs: each variant once per seed,
    and with ``audio_blind_control`` the base (the first spec) audio-blind once per seed."""
    runs = [(spec, seed, False) for spec in specs for seed in opts.seeds]
    if opts.audio_blind_control and specs:
        runs += [(specs[0], seed, True) for seed in opts.seeds]
    return runs


def _run_name(spec: ModelSpec, opts: MeasureOptions, seed: int, audio_blind: bool) -> str:
    """The checkpoint folder's name: readable, and one per run identity (a hash of the rest of the
    recipe is added where it is not the default's)."""
    recipe, named = opts.recipe, ("data", "steps", "warmup", "seed", "audio_blind")
    name = f"{spec.label}-{opts.train.replace(':', '-').replace('/', '_')}-{recipe.steps}" + (f"-seed{seed}" if seed else "")
    if recipe.warmup:
        name += f"-warmup{recipe.warmup}"
    rest = {k: v for k, v in run_identity(opts.train, recipe, seed).items() if k not in named}
    if rest != {k: v for k, v in run_identity(opts.train, DEFAULT, seed).items() if k not in named}:
        name += "-" + hashlib.sha256(json.dumps(rest, sort_keys=True).encode()).hexdigest()[:8]
    return name + ("-audio-blind" if audio_blind else "")


def train_tasks(specs: list[ModelSpec], opts: MeasureOptions, store: Path, records: list[dict], sweep: Sweep,
                 launch: LaunchOptions) -> list[TrainTask]:
    """One task per (variant, seed) that has no record yet; the rest are read back."""
    tasks = []
    for spec, seed, blind in _training_runs(specs, opts):
        what = ("train" if seed == 0 else f"train seed {seed}") + (" audio-blind" if blind else "")
        if runs_of(records, spec.to_dict(), identity(opts, seed, blind)):
            sweep.skipped.append((spec.label, what))
            continue
        # checkpoints beside the record store (runs/train/ for the default runs/records.jsonl): on a
        # cluster both lie on the shared filesystem
        tasks.append(training_task(spec, opts.train, opts.recipe, seed, blind, store, checkpoint_folder(store, spec, opts, seed, blind),
                                   launch, opts.subset, opts.device))
    return tasks


def checkpoint_folder(store: Path, spec: ModelSpec, opts: MeasureOptions, seed: int, audio_blind: bool = False) -> Path:
    return Path(store).resolve().parent / "train" / _run_name(spec, opts, seed, audio_blind)


def _train_here(tasks: list[TrainTask], opts: MeasureOptions, store: Path, records: list[dict], sweep: Sweep,
                say: Callable[[str], None]) -> None:
    for task in tasks:
        def on_step(step: int, loss: float, label: str = task.label) -> None:  # bound now, not at the loop's end
            say(f"train: {label} step {step}/{opts.recipe.steps}, loss {loss:.3f}")

        blind = task.kwargs["audio_blind"]
        say(f"train: {task.label} seed {task.seed}{' audio-blind' if blind else ''} on {opts.train}, {opts.recipe.steps} steps")
        run_task(task, on_step=on_step)
        records[:] = load_records(store)
        sweep.measured.append((task.label, ("train" if task.seed == 0 else f"train seed {task.seed}") + (" audio-blind" if blind else "")))


def _launch(tasks: list[TrainTask], measure_job: MeasureJob | None, opts: MeasureOptions, launch: LaunchOptions, store: Path,
            tag: str | None, sweep: Sweep, say: Callable[[str], None]) -> None:
    if not tasks and measure_job is None:
        return
    name = f"avskit-{(tag or 'grid').replace(':', '-')}"
    done = submit(tasks, launch, store, name, measure_job, say=say)
    sweep.job_dir = str(launch.folder(store))
    sweep.submitted = done.jobs
    if launch.wait:
        sweep.measured += [(t.label, "train" if t.seed == 0 else f"train seed {t.seed}") for t in tasks]


# ---- reading a sweep back --------------------------------------------------------------------------

def latest(records: list[dict], kind: str, spec: ModelSpec, settings: dict[str, Any], metric: str | None = None) -> dict | None:
    found = matching_records(records, kind, spec.to_dict(), settings, metric)
    return found[-1] if found else None


def summary(specs: list[ModelSpec], opts: MeasureOptions, records: list[dict], env: dict) -> list[dict[str, Any]]:
    """One row per variant from the records alone: what ``avskit compare`` prints."""
    from avsbench_kit.reported import reported_for

    rows = []
    for spec in specs:
        params = latest(records, "params", spec, {})
        flops = latest(records, "flops", spec, _settings("flops", opts, env))
        diss = latest(records, "dissipation", spec, _settings("dissipation", opts, env))
        lat = best_timed(matching(records, "latency", spec, _settings("latency", opts, env, specs[0])))  # as the report picks
        row: dict[str, Any] = {
            "model": spec.label, "spec": spec.to_dict(),
            "params_declared": params and params["declared"], "params_live": params and params["value"],
            "latency_ms": lat and lat["stats"], "ratio_to_anchor": lat and lat["ratio_to_anchor"],
            "anchor": lat and lat["provenance"]["anchor"], "flops": flops and flops["value"],
            "dissipated_sites": diss and diss["value"], "attention_sites": diss and diss["sites"],
            "flagged": diss and diss["flagged"], "min_row_diversity": diss and diss["min_row_diversity"],
        }
        if opts.train:  # per seed, then the mean and sd over the seeds recorded
            row.update(_trained_row(spec, opts, records, blind_control=spec == specs[0] and opts.audio_blind_control))
        rep = reported_for(spec)
        row["reported"] = dataclasses.asdict(rep) if rep else None
        rows.append(row)
    return rows


def environment_for(opts: MeasureOptions) -> dict:
    if opts.threads:
        torch.set_num_threads(opts.threads)
    return environment(torch.device(opts.device))


def _trained_row(spec: ModelSpec, opts: MeasureOptions, records: list[dict], blind_control: bool) -> dict[str, Any]:
    """A variant's trained columns: J and F per seed and their mean and sd, its probed checkpoints'
    attention, and (for the base) the audio-blind control's J."""
    row: dict[str, Any] = {}
    per_seed = {}
    for seed in opts.seeds:
        found = {m: runs_of(records, spec.to_dict(), identity(opts, seed), m) for m in ("jaccard", "f_score", "miou")}
        if any(found.values()):
            per_seed[seed] = {m: recs[-1]["value"] for m, recs in found.items() if recs}
    for metric in ("jaccard", "f_score", "miou"):
        values = [v[metric] for v in per_seed.values() if metric in v]
        if values:
            row[metric], row[f"{metric}_sd"] = mean_sd(values)
    row["seeds"] = {str(seed): v for seed, v in per_seed.items()}
    attention = {}
    for seed in opts.seeds:
        found = probe_of(records, spec, opts, seed)
        if found:
            attention[str(seed)] = trained_attention(found)
            row["seeds"].setdefault(str(seed), {})["attention"] = attention[str(seed)]
    for key in ("energy_ratio", "ciou_at_05", "dissipated_share"):
        values = [a[key] for a in attention.values() if a.get(key) is not None]
        if values:
            row[f"trained_{key}"], row[f"trained_{key}_sd"] = mean_sd(values)
    if blind_control:
        blind = [recs[-1]["value"] for seed in opts.seeds if (recs := runs_of(records, spec.to_dict(), identity(opts, seed, True), "jaccard"))]
        if blind:
            row["audio_blind_jaccard"], row["audio_blind_jaccard_sd"] = mean_sd(blind)
            row["audio_blind_seeds"] = len(blind)
    return row


def measure_job(store: Path, say: Callable[[str], None], specs: list[dict], opts: dict[str, Any], tag: str) -> dict:
    """A compare sweep's measurements as one launched job (``launch.MeasureJob``)."""
    sweep = measure([spec_from_dict(s) for s in specs], MeasureOptions(**{**opts, "train": None}), store, tag=tag, progress=say)
    return {"measured": sweep.measured, "skipped": sweep.skipped}
