"""`avskit pathways`: which of a model's audio paths carries the audio to the mask, measured by
patching (issue #28 item 4; the mechanism: avsbench_kit.probes.pathways).

For each of N test frames (spread evenly over the split) and each declared path, the output is
recomputed with only that path's tensor taken from a donor run: ``swap``, the same image with the
audio of another frame that sounds another class (the donor is drawn by a seeded rule among the
probed frames), and ``zero``, the same image with silence (the audio-blind control's input). Per
path: J patched, the drop from the clean J and its 95% CI over frames (Student's t). Patching every
path at once must give the output of swapping the whole audio (the completeness check)."""

from __future__ import annotations

import random
from typing import Any, Callable

import torch

from avsbench_kit import UserError, build_from_spec
from avsbench_kit.metrics import jaccard
from avsbench_kit.models.base import AudioPath
from avsbench_kit.probes.pathways import completeness, declared_paths, run
from avsbench_kit.spec import ModelSpec
from avsbench_kit.stats import mean_ci
from avskit.analyses.attention_frames import ground_truth, spread_frames

MODES = ("swap", "zero")
COMPLETE_ATOL = 1e-5  # float32: patching every declared path reproduces the whole-audio swap to this
DONOR_SEED = 0


def swap_donors(labels: list, seed: int = DONOR_SEED) -> list[int]:
    """For each frame (by position), the position of its donor: a frame whose audio sounds another
    class, drawn with a seeded generator from the others in order. UserError when every frame
    sounds the same."""
    rng = random.Random(seed)
    donors = []
    for label in labels:
        others = [j for j, other in enumerate(labels) if other != label]
        if not others:
            raise UserError(f"swap needs frames of at least two sounding classes; all {len(labels)} probed frames sound "
                            f"{label!r}: raise --frames")
        donors.append(rng.choice(others))
    return donors


def _frame_j(output: torch.Tensor, target: torch.Tensor) -> float:
    return jaccard(output[:, 0], target[None])


def measure(model, dataset, subset: str, chosen: list[int], on_frame: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Every declared path of a built model patched on the frames ``chosen`` of ``dataset``."""
    paths: tuple[AudioPath, ...] = declared_paths(model)
    donors = swap_donors([dataset.sounding_label(i) for i in chosen])
    model.eval()
    clean: list[float] = []
    whole = {m: [] for m in MODES}
    patched = {(p.name, m): [] for p in paths for m in MODES}
    worst = dict.fromkeys(MODES, 0.0)
    for done, index in enumerate(chosen):
        image, audio, mask, _ = dataset[index]
        image, target = image[None], ground_truth(mask, subset)
        own = audio[None]
        clean_out, _ = run(model, image, own)
        clean.append(_frame_j(clean_out, target))
        for mode in MODES:
            donor = dataset.audio(chosen[donors[done]])[None] if mode == "swap" else torch.zeros_like(own)
            donor_out, donor_kept = run(model, image, donor, paths)
            whole[mode].append(_frame_j(donor_out, target))
            for path in paths:
                out, _ = run(model, image, own, paths, {path.name: donor_kept[path.name]})
                patched[(path.name, mode)].append(_frame_j(out, target))
            every, _ = run(model, image, own, paths, donor_kept)
            worst[mode] = max(worst[mode], completeness(every, donor_out))
        if on_frame:
            on_frame(done + 1, len(chosen))

    def row(name: str, mode: str, values: list[float]) -> dict[str, Any]:
        drop = mean_ci([c - v for c, v in zip(clean, values, strict=True)])
        return {"path": name, "mode": mode, "jaccard": mean_ci(values)["mean"], "drop": drop["mean"], "drop_ci95": drop["ci95"]}

    rows = [row(p.name, m, patched[(p.name, m)]) for m in MODES for p in paths]
    return {"clean_jaccard": mean_ci(clean), "whole_audio": [row("whole audio", m, whole[m]) for m in MODES], "paths": rows,
            "declared": [{"name": p.name, "module": p.module, "method": p.method, "arg": p.arg} for p in paths],
            "completeness": {m: {"max_abs_diff": worst[m], "ok": worst[m] <= COMPLETE_ATOL} for m in MODES},
            "donor_rule": f"swap: per frame, a probed frame of another sounding class, random.Random({DONOR_SEED}).choice in frame order"}


def probe_pathways(spec: ModelSpec, data: str, subset: str | None, frames: int, size: int, videos: int, store,
                   on_start: Callable[[int], None] | None = None, on_frame: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """`avskit pathways`: the measurement over ``frames`` test frames, kept as a ``pathways`` record."""
    from avsbench_kit.profiling.env import command_line, environment
    from avsbench_kit.results import append_records, ensure_writable_folder, make_record
    from avsbench_kit.spec import front_end_of
    from avskit.analyses.training import DataOptions

    if frames < 2:
        raise UserError(f"--frames must be at least 2 (swap takes a donor among them), got {frames}")
    options = DataOptions(data, subset, size, videos)
    name = options.resolve_subset()
    if name == "avss":
        raise UserError("pathways scores binary J: use s4 or ms3 (AVSS's per-class scores are not patched yet)")
    if getattr(spec, "classes", 1) != 1:
        raise UserError(f"{name} is binary: the model must have classes=1, not {spec.classes}")
    dataset = options.dataset("test", front_end_of(spec))  # a bad root or size is an error before any model is built
    if len(dataset) == 0:
        raise UserError("the test split has no frames")
    ensure_writable_folder(store.parent, "--results", "records")
    model = build_from_spec(spec)
    if getattr(model, "custom_inputs", False):
        raise UserError(f"{spec.label} takes its own inputs (example_inputs): pathways feeds dataset frames and log-mel audio")
    declared_paths(model)  # a model without paths: one line, before any frame
    chosen = spread_frames(len(dataset), frames)
    if on_start:
        on_start(len(chosen))
    report = {"model": spec.label, "spec": spec.to_dict(), "data": data, "subset": name, "size": size, "frames": len(chosen),
              "frame_indices": chosen, **measure(model, dataset, name, chosen, on_frame)}
    prov = {**environment(torch.device("cpu")), "command": command_line(), "data": data, "subset": name, "split": "test", "size": size,
            "frames": len(chosen), "videos": videos if data.startswith("synthetic:") else None}
    append_records([make_record("pathways", spec.label, spec.to_dict(), "clean_jaccard", report["clean_jaccard"]["mean"], "J", prov,
                                **{k: report[k] for k in ("frame_indices", "clean_jaccard", "whole_audio", "paths", "declared",
                                                          "completeness", "donor_rule")})], store)
    return report
