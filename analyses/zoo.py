"""The zoo: what models and variant axes exist, their parameter counts, and the demo run."""

from __future__ import annotations

import time
from typing import Any, Callable

import torch

from avsbench_kit import build_from_spec, make_spec
from avsbench_kit.inputs import synthetic_inputs
from avsbench_kit.profiling.params import count_parameters
from avsbench_kit.registry import FUSIONS, QUERY_GENERATORS
from avsbench_kit.reported import RELEASED, reported_for
from avsbench_kit.spec import BACKBONES, CLASS_RANGE, FAMILY_FIELDS, QUERY_RANGE, WEIGHT_FIELDS, ZOO, ModelSpec


def overview() -> dict[str, Any]:
    """The zoo's models (with their specs and the paper's figures) and every variant axis."""
    models = []
    for name, spec in ZOO.items():
        rep = reported_for(spec)
        models.append({
            "name": name,
            "family": spec.family,
            "spec": spec.to_dict(),
            "overridable": list(FAMILY_FIELDS[spec.family]),
            "reported_params_m": rep.params_m if rep else None,
            "reported_latency_ms": rep.latency_ms if rep else None,
        })
    axes = {
        "backbone": list(BACKBONES),
        "qg": QUERY_GENERATORS.names(),
        "fusion": FUSIONS.names(),
        "stages": "3 letters from C (convolution) and T (transformer), e.g. CTT, TTT, TCT, TTC",
        "queries": f"integer {QUERY_RANGE[0]}..{QUERY_RANGE[1]} (paper: 8..256; QG default 300)",
        "classes": f"integer {CLASS_RANGE[0]}..{CLASS_RANGE[1]} (1 for S4/MS3, 71 for AVSS)",
        "backbone_weights": "none (random), imagenet (torchvision, from the torch cache) or a state-dict path",
        "vggish_weights": "none (random) or the path of a vggish-10086976.pth-style state dict",
        "latent": "ecmvae only: mean (every VAE latent at its mean, the default) or sample (drawn, as the release does)",
        "temporal_ffn": "catr only: 256 (the code's default, the paper's 177M) or 2048 (the unpublished config's other reading)",
        "input_upsample": "catr only: true (the release's loader resizes the frame x2, 224 -> 448; default) or false",
        "weights": "none, or the whole model: an avskit checkpoint/state dict or a released AVSegFormer, AVSBench, ECMVAE or CATR checkpoint",
    }
    return {"models": models, "axes": axes}


def parameter_report(spec: ModelSpec, size: int = 224, model: torch.nn.Module | None = None) -> dict[str, Any]:
    """Declared, live and trainable parameters, per part, beside the paper's figure."""
    model = build_from_spec(spec) if model is None else model
    counts = count_parameters(model, size)
    rep = reported_for(spec)
    report: dict[str, Any] = {
        "model": spec.label,
        "spec": spec.to_dict(),
        "declared": counts.declared,
        "live": counts.live,
        "trainable": counts.trainable,
        "reported": {"params_m": rep.params_m, "source": f"paper {rep.source}"} if rep and rep.params_m else None,
        "modules": counts.parts,
    }
    weights = getattr(model, "weights_report", None)
    if weights is not None:
        report["weights"] = weights.to_dict()
    if spec.family != "foreign" and spec.name in RELEASED and not set(spec.changes()) - set(WEIGHT_FIELDS):
        released = RELEASED[spec.name]
        report["released"] = {
            "declared": released["declared"],
            "unused": released["unused"],
            "live": released["declared"] - sum(released["unused"].values()),
        }
    return report


def demo(size: int = 224, on_model: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Every zoo model: parameter counts and one forward pass on synthetic inputs of ``size`` (a model
    built for one frame size, ECMVAE's 224, runs at that size and its row says so)."""
    rows = []
    for name in ZOO:
        if on_model:
            on_model(name)
        spec = make_spec(name)
        model = build_from_spec(spec)
        run_size = getattr(model, "frame_size", None) or size  # ECMVAE is built for 224x224 frames only
        image, audio = synthetic_inputs(1, run_size)
        report = parameter_report(spec, run_size, model)
        with torch.inference_mode():
            start = time.perf_counter()
            logits = model(image, audio)
            seconds = time.perf_counter() - start
        rows.append({
            "model": name,
            "declared": report["declared"],
            "live": report["live"],
            "trainable": report["trainable"],
            "reported_params_m": report["reported"]["params_m"] if report["reported"] else None,
            "size": run_size,
            "output_shape": list(logits.shape),
            "first_forward_s": round(seconds, 3),
        })
    return rows
