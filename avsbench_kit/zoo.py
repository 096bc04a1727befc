"""The public entry point: ``build_model(name, **overrides)``."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import torch

from avsbench_kit.models.base import AVSModel
from avsbench_kit.nn.attention import name_attention_sites
from avsbench_kit.registry import FAMILIES
from avsbench_kit.spec import ZOO, ModelSpec, make_spec


def list_models() -> list[str]:
    return list(ZOO)


def build_from_spec(spec: ModelSpec) -> AVSModel:
    if spec.family == "foreign":  # a researcher's own model, from an import reference
        from avsbench_kit.foreign import build_foreign

        model = build_foreign(spec)
    elif getattr(spec, "weights", None):
        model = _build_with_weights(spec)
    else:
        model = FAMILIES.get(spec.family)(spec)
    model.spec = spec
    name_attention_sites(model)
    return model.eval()


def _build_with_weights(spec: ModelSpec) -> AVSModel:
    """Build, then load the whole-model file; VGGish's random-weights notice waits for the load."""
    from avsbench_kit.models.vggish import RANDOM_WEIGHTS_NOTICE, RandomWeightsWarning
    from avsbench_kit.weights import check_before_build, checkpoint_seed, load_weights, read_weights

    content = read_weights(spec.weights)  # first: a bad file costs no model build
    check_before_build(spec, content)
    seed = checkpoint_seed(content)
    if seed is not None:
        torch.manual_seed(seed)  # an avskit run's random frozen weights come back from its seed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        model = FAMILIES.get(spec.family)(spec)
        started = ((content.get("run") or {}).get("spec") or {}).get("weights") if seed is not None else None
        if started and started != spec.weights and Path(started).is_file():
            # a fine-tuning run: its frozen VGGish came from the file it started from
            load_weights(model, dataclasses.replace(spec, weights=started))
    model.weights_report = load_weights(model, spec, content)
    audio = getattr(model, "audio_backbone", None)
    if audio is not None and not getattr(audio, "pretrained", True):
        warnings.warn(RANDOM_WEIGHTS_NOTICE, RandomWeightsWarning, stacklevel=3)
    return model


def build_model(name: str, **overrides: Any) -> AVSModel:
    """A zoo model in eval mode, e.g. ``build_model("avesformer-r50", fusion="tpavi", stages="TTT")``.

    ``model(image [B,3,H,W], audio [B,1,96,64])`` returns logits ``[B, classes, H, W]``. Weights are
    random unless ``backbone_weights`` ("imagenet" or a path) and ``vggish_weights`` (a path) say
    otherwise; ``weights`` (a path) loads the whole model from an avskit checkpoint or a released
    AVSegFormer, AVSBench, ECMVAE or CATR checkpoint (:mod:`avsbench_kit.weights`). Raises
    :class:`avsbench_kit.UserError` for an unknown name, key or value.
    """
    return build_from_spec(make_spec(name, overrides))
