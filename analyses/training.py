"""Train and evaluate zoo models on AVSBench or the synthetic benchmark; every result is a record."""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from avsbench_kit import UserError, build_from_spec
from avsbench_kit.checkpoints import load_checkpoint
from avsbench_kit.data.avsbench import AVSBenchFrames
from avsbench_kit.data.frames import SyntheticFrames
from avsbench_kit.engine import TrainConfig, distributed_rank_and_size, evaluate, train
from avsbench_kit.profiling.env import command_line, environment, gemm_probe
from avsbench_kit.recipe import DEFAULT, SYNTHETIC_PREFIX, Recipe, check_size, run_identity
from avsbench_kit.results import append_records, ensure_writable_folder, make_record
from avsbench_kit.spec import ModelSpec, front_end_of
from avskit.analyses.attention_frames import compact, probe_model, spread_frames
from avskit.analyses.launch import LaunchOptions, TrainTask

SUBSETS = ("s4", "ms3", "avss")


@dataclass
class DataOptions:
    data: str = "synthetic:s4"  # synthetic:s4|ms3|avss or an AVSBench root
    subset: str | None = None  # needed with a path; implied by synthetic:NAME
    size: int = DEFAULT.size
    videos: int = DEFAULT.videos  # synthetic only
    test_videos: int | None = None  # synthetic only: evaluate on the test split's first N videos (quick runs)
    val_videos: int | None = 40  # synthetic only: the validation curve's videos (the val split's first N)

    def resolve_subset(self) -> str:
        if self.data.startswith(SYNTHETIC_PREFIX):
            name = self.data[len(SYNTHETIC_PREFIX):]
            if name not in SUBSETS:
                raise UserError(f"--data {self.data!r}: choose synthetic:s4, synthetic:ms3 or synthetic:avss, or an AVSBench root")
            if self.subset and self.subset != name:
                raise UserError(f"--subset {self.subset} contradicts --data {self.data}")
            return name
        if self.subset is None:
            raise UserError(f"--data {self.data} is a dataset root: say which one with --subset s4|ms3|avss")
        if self.subset not in SUBSETS:
            raise UserError(f"--subset {self.subset!r} is not accepted; choose one of: {', '.join(SUBSETS)}")
        return self.subset

    def dataset(self, split: str, front_end: str = "vggish"):
        """One split as T=1 samples, the audio through ``front_end`` (spec.front_end_of: the model's release's)."""
        subset = self.resolve_subset()
        check_size(self.size)
        if self.data.startswith(SYNTHETIC_PREFIX):
            if self.videos < 7:
                raise UserError(f"--videos must be at least 7 (so every split has a video), got {self.videos}")
            limit = {"test": self.test_videos, "val": self.val_videos}.get(split)
            return SyntheticFrames(subset, split, self.videos, self.size, limit=limit, front_end=front_end)
        return AVSBenchFrames(self.data, subset, split, self.size, front_end=front_end)


def zoo_only(spec) -> None:
    """train and eval build zoo models (their data, losses and checkpoints assume the zoo's contract)."""
    if spec.family == "foreign":
        raise UserError(f"{spec.label}: train and eval take zoo models (a name or a label); "
                        "a model reference can be measured with params, profile, dissipation and compare")


def _classes_for(spec: ModelSpec, subset: str) -> None:
    zoo_only(spec)
    if subset == "avss" and spec.classes == 1:
        raise UserError("AVSS has 71 classes: add --set classes=71")
    if subset != "avss" and spec.classes != 1:
        raise UserError(f"{subset} is binary: the model must have classes=1, not {spec.classes}")


PROBE_FRAMES = 16  # val frames a training run's attention is probed on at each validation


def data_for(data: str, recipe: Recipe, subset: str | None = None) -> DataOptions:
    """The data a run of ``recipe`` trains, validates and tests on."""
    return DataOptions(data, subset, recipe.size, recipe.videos, recipe.test_videos if data.startswith(SYNTHETIC_PREFIX) else None)


def config_for(recipe: Recipe, seed: int = 0, audio_blind: bool = False, device: str = "cpu") -> TrainConfig:
    """The engine's configuration of one run of ``recipe``."""
    return TrainConfig(steps=recipe.steps, batch=recipe.batch, lr=recipe.lr, weight_decay=recipe.weight_decay, seed=seed,
                       audio_blind=audio_blind, checkpoint_every=recipe.checkpoint_every, device=device, warmup=recipe.warmup,
                       val_every=recipe.val_every, supervise_attention=recipe.supervise_attention)


def steps_for_epochs(epochs: int, data: str, recipe: Recipe, subset: str | None = None) -> int:
    """``--epochs``: passes over the train split, in steps of ``recipe.batch`` frames."""
    return max(1, epochs * len(data_for(data, recipe, subset).dataset("train")) // recipe.batch)


def run_training(spec: ModelSpec, data: str, recipe: Recipe, out_dir: Path, subset: str | None = None, seed: int = 0,
                 audio_blind: bool = False, device: str = "cpu", results: Path | None = None,
                 on_step: Callable[[int, float], None] | None = None, on_eval: Callable[[int, int], None] | None = None,
                 restart: bool = False, on_plan: Callable[[dict[str, Any]], None] | None = None,
                 on_features: Callable[[int, int], None] | None = None, provenance: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train ``spec`` on ``data`` with ``recipe`` into ``out_dir`` (resuming its last.pt), evaluate, and
    record J and F under the run's identity; ``provenance`` adds to the records' (a launched job's run
    id and attempt)."""
    identity = run_identity(data, recipe, seed, audio_blind)
    cfg = config_for(recipe, seed, audio_blind, device)
    data = data_for(data, recipe, subset)
    subset = data.resolve_subset()
    _classes_for(spec, subset)
    cfg.subset = subset
    front_end = front_end_of(spec)
    train_set, test_set = data.dataset("train", front_end), data.dataset("test", front_end)
    if len(train_set) == 0 or len(test_set) == 0:
        raise UserError(f"--data {data.data}: the train or test split is empty")
    ensure_writable_folder(out_dir, "--out", "checkpoints")  # before training, not after it
    checkpoint = out_dir / "last.pt"
    run = {"spec": spec.to_dict(), **identity, "frozen_source": _frozen_source(spec, cfg)}
    if restart:
        checkpoint.unlink(missing_ok=True)
    elif checkpoint.is_file():
        _check_resumable(checkpoint, run, cfg)  # one line now, before the model is built
    torch.manual_seed(cfg.seed)  # the initial weights are part of the run: seeded too
    model = build_from_spec(spec)
    if on_plan:
        on_plan({"steps": cfg.steps, "batch": cfg.batch, "train_frames": len(train_set), "test_frames": len(test_set),
                 "size": data.size, "checkpoint": str(checkpoint), "checkpoint_every": cfg.checkpoint_every,
                 "resuming": checkpoint.is_file()})
    validate = None
    if cfg.val_every:
        val_set = data.dataset("val", front_end)
        if len(val_set) == 0:
            raise UserError(f"--data {data.data}: the val split is empty; --val-every needs one")

        probed = spread_frames(len(val_set), PROBE_FRAMES)

        def validate(net):  # the validation curve: J and F on the val split, as the test is scored, and the
            # attention of the model's audio-to-visual sites on a fixed few val frames (whether dissipation appears or fades)
            point = evaluate(net, val_set, subset, num_classes=spec.classes, audio_blind=cfg.audio_blind, device=cfg.device)
            if not cfg.audio_blind and cfg.device == "cpu":
                point["attention"] = compact(probe_model(net, val_set, subset, probed))
            return point

    probe_before = gemm_probe() if cfg.device == "cpu" else None  # the machine's speed beside the time
    started = time.perf_counter()
    load: list[float] = []

    def step_and_load(step: int, loss: float) -> None:  # the machine's load beside the run, every 25 steps
        if step % 25 == 0 and hasattr(os, "getloadavg"):
            load.append(os.getloadavg()[0])
        if on_step:
            on_step(step, loss)

    trained = train(model, train_set, cfg, checkpoint, step_and_load, run=run, on_features=on_features, validate=validate)
    seconds = time.perf_counter() - started
    speed = {"gemm_gmacs_before": probe_before, "gemm_gmacs_after": gemm_probe()} if cfg.device == "cpu" else {}
    rank, world = distributed_rank_and_size()
    if world > 1:
        torch.distributed.destroy_process_group()
        if rank != 0:  # under torchrun only rank 0 evaluates, records and reports
            return {"rank": rank}
    test = evaluate(model, test_set, subset, num_classes=spec.classes, audio_blind=cfg.audio_blind, progress=on_eval, device=cfg.device)
    size_mb = checkpoint.stat().st_size / 2**20 if checkpoint.is_file() else None
    report = {"model": spec.label, "spec": spec.to_dict(), "data": data.data, "subset": subset, "audio_blind": cfg.audio_blind,
              "train": {**trained, "seconds": round(seconds, 1), **speed, "frames": len(train_set), "config": asdict(cfg)},
              "test": test, "test_frames": len(test_set), "checkpoint": str(checkpoint),
              "checkpoint_mb": size_mb and round(size_mb, 1), "weights": _weights_note(spec)}
    extra = {**(provenance or {}), **speed, "resumed_from": trained.get("resumed_from", 0), **_shared_cpu(load, torch.get_num_threads())}
    threads = {seg["threads"] for seg in trained.get("segments", [])}
    if trained.get("resumed_from"):  # bit-exact only at the same thread count (floats are summed in another order)
        extra["threads_changed"] = None if None in threads else len(threads) > 1
    report["records"] = str(_record(report, "train", results, {**identity, **extra},
                                    val_curve=trained.get("val_curve"), seconds=round(seconds, 1)))
    return report


def _shared_cpu(load: list[float], threads: int) -> dict[str, Any]:
    """Whether the run shared the CPU with other work: the 1-minute load average, sampled during the
    run, went a whole runnable process beyond the run's own threads (its time then says little)."""
    if not load:
        return {}
    return {"load_avg_max": round(max(load), 2), "cpu_shared": max(load) >= threads + 1}


def _frozen_source(spec: ModelSpec, cfg: TrainConfig) -> str:
    """How a rebuilt model gets the run's frozen weights back: their file, or the run's seed."""
    if spec.vggish_weights:
        return f"VGGish from {spec.vggish_weights}"
    if spec.weights:
        return f"VGGish from the whole-model file {spec.weights} (or the seed {cfg.seed} if that file has none)"
    return f"random VGGish, seed {cfg.seed}"


def _check_resumable(checkpoint: Path, run: dict[str, Any], cfg: TrainConfig) -> None:
    from avsbench_kit.checkpoints import read_checkpoint, run_differences
    from avsbench_kit.engine import run_identity

    _, world = distributed_rank_and_size()
    differences = run_differences(read_checkpoint(checkpoint).get("run"), run_identity(cfg, world, **run))
    if differences:
        raise UserError(f"checkpoint {checkpoint} belongs to another run ({'; '.join(differences[:3])}): "
                        "give --out another folder for a new run, or --restart to start this one afresh")


EVAL_SIZE = 224  # the releases' frame size: evaluating their weights at another one measures nothing


def eval_data(data: str, subset: str | None, size: int | None, videos: int | None, checkpoint: str | None) -> DataOptions:
    """``avskit eval``'s data: what was given, else what the checkpoint's run trained on (its size and
    videos), else the releases' frame size and the recipe's videos."""
    from avsbench_kit.checkpoints import read_checkpoint

    run = (read_checkpoint(Path(checkpoint)).get("run") or {}) if checkpoint else {}
    return DataOptions(data, subset, size or run.get("size") or EVAL_SIZE, videos or run.get("videos") or DEFAULT.videos)


def run_evaluation(spec: ModelSpec, data: DataOptions, checkpoint: str | None, audio_blind: bool = False,
                   results: Path | None = None, on_eval: Callable[[int, int], None] | None = None, device: str = "cpu") -> dict[str, Any]:
    from avsbench_kit.checkpoints import read_checkpoint

    subset = data.resolve_subset()
    _classes_for(spec, subset)
    test_set = data.dataset("test", front_end_of(spec))
    if checkpoint and spec.weights:
        raise UserError("give --checkpoint or --set weights=FILE, not both (weights= also reads avskit checkpoints)")
    state = read_checkpoint(Path(checkpoint)) if checkpoint else None
    if state is not None:
        saved = (state.get("run") or {}).get("spec")
        if saved is not None and dataclasses.replace(ModelSpec(**saved), weights=None) != spec:  # a fine-tuning run's start file aside
            saved = ModelSpec(**saved).to_dict()
            differ = [f"{k}: {saved.get(k)!r} there, {v!r} here" for k, v in spec.to_dict().items() if saved.get(k) != v]
            raise UserError(f"checkpoint {checkpoint} was trained as {ModelSpec(**saved).label}, not {spec.label} ({'; '.join(differ[:3])})")
        torch.manual_seed((state.get("run") or {}).get("seed", 0))  # random frozen weights come back from the run's seed
    model = build_from_spec(spec)
    if state is not None:
        load_checkpoint(Path(checkpoint), model, state)
    test = evaluate(model, test_set, subset, num_classes=spec.classes, audio_blind=audio_blind, progress=on_eval, device=device)
    report = {"model": spec.label, "spec": spec.to_dict(), "data": data.data, "subset": subset, "audio_blind": audio_blind,
              "checkpoint": checkpoint, "initial_weights": checkpoint is None and not spec.weights, "test": test,
              "weights": _weights_note(spec), "audio_front_end": front_end_of(spec)}
    if getattr(model, "weights_report", None) is not None:
        report["weights_file"] = model.weights_report.to_dict()
    settings = {"size": data.size, "videos": data.videos if data.data.startswith(SYNTHETIC_PREFIX) else None}
    report["records"] = str(_record(report, "eval", results, {**settings, "checkpoint": checkpoint}))
    return report


def _weights_note(spec: ModelSpec) -> str:
    if spec.weights:
        return f"whole model from {spec.weights}" + (f", VGGish from {spec.vggish_weights}" if spec.vggish_weights else "")
    parts = [f"VGGish {'from ' + spec.vggish_weights if spec.vggish_weights else 'random (frozen)'}",
             f"backbone {'from ' + spec.backbone_weights if spec.backbone_weights else 'random'}"]
    return ", ".join(parts)


def _record(report: dict, kind: str, results: Path | None, settings: dict[str, Any], **extra: Any) -> Path:
    env = {**environment(torch.device("cpu")), "command": command_line()}
    provenance = {**env, "data": report["data"], "subset": report["subset"], "audio_blind": report["audio_blind"], **settings}
    extra = {k: v for k, v in extra.items() if v is not None}
    records = [make_record(kind, report["model"], report["spec"], metric, value, "", provenance, **extra)
               for metric, value in report["test"].items() if not (isinstance(value, float) and math.isnan(value))]
    return append_records(records, results)


def train_job(spec: dict[str, Any], data: str, subset: str | None, recipe: dict[str, Any], seed: int, audio_blind: bool, device: str,
              folder: str, store: str, provenance: dict[str, Any], on_step: Callable[[int, float], None] | None = None) -> dict[str, Any]:
    """One launched run (``analyses.launch``): plain values in, the run's report out."""
    return run_training(ModelSpec(**spec), data, Recipe(**recipe), Path(folder), subset, seed, audio_blind, device, Path(store),
                        on_step=on_step, provenance=provenance)


def training_task(spec: ModelSpec, data: str, recipe: Recipe, seed: int, audio_blind: bool, store: Path, folder: Path,
                  launch: LaunchOptions | None = None, subset: str | None = None, device: str = "cpu") -> TrainTask:
    """One run as a launcher's task: its run id is the hash of its identity and spec."""
    launch = launch or LaunchOptions()
    kwargs = {"spec": spec.to_dict(), "data": data, "subset": subset, "recipe": dataclasses.asdict(recipe), "seed": seed,
              "audio_blind": audio_blind, "device": device, "folder": str(Path(folder).resolve()), "store": str(Path(store).resolve())}
    identity = {"spec": spec.to_dict(), **run_identity(data, recipe, seed, audio_blind)}
    return TrainTask(run=train_job, kwargs=kwargs, label=spec.label, seed=seed, identity=identity, store=str(Path(store).resolve()),
                     steps=recipe.steps, job_dir=str(launch.folder(store).resolve()) if launch.launcher != "inline" else None,
                     launcher=launch.launcher)
