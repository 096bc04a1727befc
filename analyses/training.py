"""Train and evaluate zoo models on AVSBench or the synthetic benchmark; every result is a record."""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from avsbench_kit import UserError, build_from_spec
from avsbench_kit.data.avsbench import AVSBenchFrames
from avsbench_kit.engine import SyntheticFrames, TrainConfig, distributed_rank_and_size, evaluate, load_checkpoint, train
from avsbench_kit.profiling.env import command_line, environment, gemm_probe
from avsbench_kit.results import append_records, ensure_writable_folder, make_record
from avsbench_kit.spec import ModelSpec
from avskit.analyses.attention_frames import compact, probe_model, spread_frames

SYNTHETIC_PREFIX = "synthetic:"
SUBSETS = ("s4", "ms3", "avss")


@dataclass
class DataOptions:
    data: str = "synthetic:s4"  # synthetic:s4|ms3|avss or an AVSBench root
    subset: str | None = None  # needed with a path; implied by synthetic:NAME
    size: int = 224
    videos: int = 200  # synthetic only
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

    def dataset(self, split: str):
        subset = self.resolve_subset()
        if self.size < 32 or self.size % 32:
            raise UserError(f"--size must be a multiple of 32 (e.g. 224), got {self.size}")
        if self.data.startswith(SYNTHETIC_PREFIX):
            if self.videos < 7:
                raise UserError(f"--videos must be at least 7 (so every split has a video), got {self.videos}")
            limit = {"test": self.test_videos, "val": self.val_videos}.get(split)
            return SyntheticFrames(subset, split, self.videos, self.size, limit=limit)
        return AVSBenchFrames(self.data, subset, split, self.size)


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


def run_training(spec: ModelSpec, data: DataOptions, cfg: TrainConfig, out_dir: Path, results: Path | None = None,
                 on_step: Callable[[int, float], None] | None = None, on_eval: Callable[[int, int], None] | None = None,
                 restart: bool = False, on_plan: Callable[[dict[str, Any]], None] | None = None,
                 on_features: Callable[[int, int], None] | None = None, provenance: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train ``spec`` on ``data`` into ``out_dir`` (resuming its last.pt), evaluate, and record J and F;
    ``provenance`` adds to the records' (a launched job's run id and attempt)."""
    subset = data.resolve_subset()
    _classes_for(spec, subset)
    cfg.subset = subset
    train_set, test_set = data.dataset("train"), data.dataset("test")
    if len(train_set) == 0 or len(test_set) == 0:
        raise UserError(f"--data {data.data}: the train or test split is empty")
    ensure_writable_folder(out_dir, "--out", "checkpoints")  # before training, not after it
    checkpoint = out_dir / "last.pt"
    run = {"spec": spec.to_dict(), "data": data.data, "size": data.size,
           "videos": data.videos if data.data.startswith(SYNTHETIC_PREFIX) else None, "frozen_source": _frozen_source(spec, cfg)}
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
        val_set = data.dataset("val")
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
    trained = train(model, train_set, cfg, checkpoint, on_step, run=run, on_features=on_features, validate=validate)
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
    extra = {**(provenance or {}), **speed, "resumed_from": trained.get("resumed_from", 0)}
    report["records"] = str(_record(report, "train", results, {**_settings(data, cfg), **extra},
                                    val_curve=trained.get("val_curve"), seconds=round(seconds, 1)))
    return report


def _frozen_source(spec: ModelSpec, cfg: TrainConfig) -> str:
    """How a rebuilt model gets the run's frozen weights back: their file, or the run's seed."""
    if spec.vggish_weights:
        return f"VGGish from {spec.vggish_weights}"
    if spec.weights:
        return f"VGGish from the whole-model file {spec.weights} (or the seed {cfg.seed} if that file has none)"
    return f"random VGGish, seed {cfg.seed}"


def _check_resumable(checkpoint: Path, run: dict[str, Any], cfg: TrainConfig) -> None:
    from avsbench_kit.engine import read_checkpoint, run_differences, run_identity

    _, world = distributed_rank_and_size()
    differences = run_differences(read_checkpoint(checkpoint).get("run"), run_identity(cfg, world, **run))
    if differences:
        raise UserError(f"checkpoint {checkpoint} belongs to another run ({'; '.join(differences[:3])}): "
                        "give --out another folder for a new run, or --restart to start this one afresh")


def run_evaluation(spec: ModelSpec, data: DataOptions, checkpoint: str | None, audio_blind: bool = False,
                   results: Path | None = None, on_eval: Callable[[int, int], None] | None = None, device: str = "cpu") -> dict[str, Any]:
    from avsbench_kit.engine import read_checkpoint

    subset = data.resolve_subset()
    _classes_for(spec, subset)
    test_set = data.dataset("test")
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
              "weights": _weights_note(spec)}
    if getattr(model, "weights_report", None) is not None:
        report["weights_file"] = model.weights_report.to_dict()
    report["records"] = str(_record(report, "eval", results, {**_settings(data), "checkpoint": checkpoint}))
    return report


def _weights_note(spec: ModelSpec) -> str:
    if spec.weights:
        return f"whole model from {spec.weights}" + (f", VGGish from {spec.vggish_weights}" if spec.vggish_weights else "")
    parts = [f"VGGish {'from ' + spec.vggish_weights if spec.vggish_weights else 'random (frozen)'}",
             f"backbone {'from ' + spec.backbone_weights if spec.backbone_weights else 'random'}"]
    return ", ".join(parts)


def _settings(data: DataOptions, cfg: TrainConfig | None = None) -> dict[str, Any]:
    """What a result depends on besides the spec: a sweep matches records on these to skip finished work."""
    settings: dict[str, Any] = {"size": data.size, "videos": data.videos if data.data.startswith(SYNTHETIC_PREFIX) else None}
    if data.test_videos is not None:
        settings["test_videos"] = data.test_videos
    if cfg is not None:
        settings.update(steps=cfg.steps, batch=cfg.batch, lr=cfg.lr, seed=cfg.seed)
        if cfg.warmup:
            settings["warmup"] = cfg.warmup
    return settings


def _record(report: dict, kind: str, results: Path | None, settings: dict[str, Any], **extra: Any) -> Path:
    env = {**environment(torch.device("cpu")), "command": command_line()}
    provenance = {**env, "data": report["data"], "subset": report["subset"], "audio_blind": report["audio_blind"], **settings}
    extra = {k: v for k, v in extra.items() if v is not None}
    records = [make_record(kind, report["model"], report["spec"], metric, value, "", provenance, **extra)
               for metric, value in report["test"].items() if not (isinstance(value, float) and math.isnan(value))]
    return append_records(records, results)
