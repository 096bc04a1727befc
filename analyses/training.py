"""Train and evaluate zoo models on AVSBench or the synthetic benchmark; every result is a record."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from avsbench_kit import UserError, build_from_spec
from avsbench_kit.data.avsbench import AVSBenchFrames
from avsbench_kit.engine import SyntheticFrames, TrainConfig, distributed_rank_and_size, evaluate, load_checkpoint, train
from avsbench_kit.profiling.env import command_line, environment
from avsbench_kit.results import append_records, ensure_writable_folder, make_record
from avsbench_kit.spec import ModelSpec

SYNTHETIC_PREFIX = "synthetic:"
SUBSETS = ("s4", "ms3", "avss")


@dataclass
class DataOptions:
    data: str = "synthetic:s4"  # synthetic:s4|ms3|avss or an AVSBench root
    subset: str | None = None  # needed with a path; implied by synthetic:NAME
    size: int = 224
    videos: int = 200  # synthetic only

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
            return SyntheticFrames(subset, split, self.videos, self.size)
        return AVSBenchFrames(self.data, subset, split, self.size)


def _classes_for(spec: ModelSpec, subset: str) -> None:
    if subset == "avss" and spec.classes == 1:
        raise UserError("AVSS has 71 classes: add --set classes=71")
    if subset != "avss" and spec.classes != 1:
        raise UserError(f"{subset} is binary: the model must have classes=1, not {spec.classes}")


def run_training(spec: ModelSpec, data: DataOptions, cfg: TrainConfig, out_dir: Path, results: Path | None = None,
                 on_step: Callable[[int, float], None] | None = None, on_eval: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    subset = data.resolve_subset()
    _classes_for(spec, subset)
    cfg.subset = subset
    train_set, test_set = data.dataset("train"), data.dataset("test")
    if len(train_set) == 0 or len(test_set) == 0:
        raise UserError(f"--data {data.data}: the train or test split is empty")
    ensure_writable_folder(out_dir, "--out", "checkpoints")  # before training, not after it
    torch.manual_seed(cfg.seed)  # the initial weights are part of the run: seeded too
    model = build_from_spec(spec)
    checkpoint = out_dir / "last.pt"
    started = time.perf_counter()
    trained = train(model, train_set, cfg, checkpoint, on_step)
    seconds = time.perf_counter() - started
    rank, world = distributed_rank_and_size()
    if world > 1:
        torch.distributed.destroy_process_group()
        if rank != 0:  # under torchrun only rank 0 evaluates, records and reports
            return {"rank": rank}
    test = evaluate(model, test_set, subset, num_classes=spec.classes, audio_blind=cfg.audio_blind, progress=on_eval, device=cfg.device)
    report = {"model": spec.label, "spec": spec.to_dict(), "data": data.data, "subset": subset, "audio_blind": cfg.audio_blind,
              "train": {**trained, "seconds": round(seconds, 1), "frames": len(train_set), "config": asdict(cfg)},
              "test": test, "checkpoint": str(checkpoint), "weights": _weights_note(spec)}
    report["records"] = str(_record(report, "train", results, _settings(data, cfg)))
    return report


def run_evaluation(spec: ModelSpec, data: DataOptions, checkpoint: str | None, audio_blind: bool = False,
                   results: Path | None = None, on_eval: Callable[[int, int], None] | None = None, device: str = "cpu") -> dict[str, Any]:
    subset = data.resolve_subset()
    _classes_for(spec, subset)
    test_set = data.dataset("test")
    model = build_from_spec(spec)
    if checkpoint:
        load_checkpoint(Path(checkpoint), model)
    test = evaluate(model, test_set, subset, num_classes=spec.classes, audio_blind=audio_blind, progress=on_eval, device=device)
    report = {"model": spec.label, "spec": spec.to_dict(), "data": data.data, "subset": subset, "audio_blind": audio_blind,
              "checkpoint": checkpoint, "initial_weights": checkpoint is None, "test": test, "weights": _weights_note(spec)}
    report["records"] = str(_record(report, "eval", results, {**_settings(data), "checkpoint": checkpoint}))
    return report


def _weights_note(spec: ModelSpec) -> str:
    parts = [f"VGGish {'from ' + spec.vggish_weights if spec.vggish_weights else 'random (frozen)'}",
             f"backbone {'from ' + spec.backbone_weights if spec.backbone_weights else 'random'}"]
    return ", ".join(parts)


def _settings(data: DataOptions, cfg: TrainConfig | None = None) -> dict[str, Any]:
    """What a result depends on besides the spec: a sweep matches records on these to skip finished work."""
    settings: dict[str, Any] = {"size": data.size, "videos": data.videos if data.data.startswith(SYNTHETIC_PREFIX) else None}
    if cfg is not None:
        settings.update(steps=cfg.steps, batch=cfg.batch, lr=cfg.lr, seed=cfg.seed)
    return settings


def _record(report: dict, kind: str, results: Path | None, settings: dict[str, Any]) -> Path:
    env = {**environment(torch.device("cpu")), "command": command_line()}
    provenance = {**env, "data": report["data"], "subset": report["subset"], "audio_blind": report["audio_blind"], **settings}
    records = [make_record(kind, report["model"], report["spec"], metric, value, "", provenance)
               for metric, value in report["test"].items() if not (isinstance(value, float) and math.isnan(value))]
    return append_records(records, results)
