"""The public entry point: ``build_model(name, **overrides)``."""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import os
import warnings
from collections import OrderedDict
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
        model = _family_build(spec)
    model.spec = spec
    name_attention_sites(model)
    return model.eval()


BUILD_CACHE = "AVSKIT_BUILD_CACHE"  # N > 0: keep the last N random-weight builds of this process and copy them
_built: OrderedDict = OrderedDict()


def _family_build(spec: ModelSpec) -> AVSModel:
    """The family's builder; with ``$AVSKIT_BUILD_CACHE`` a model built from random weights before, from
    the same RNG state, comes back as a copy, and the RNG is left where that build left it: the same
    weights and the same random stream after, without initialising 72M VGGish parameters again (the
    test suite spends a quarter of its time there)."""
    keep = int(os.environ.get(BUILD_CACHE, "0") or 0)
    state = hashlib.sha256(torch.get_rng_state().numpy().data).hexdigest() if keep > 0 else None
    if state not in _seeded_states() or spec.vggish_weights or getattr(spec, "backbone_weights", None):
        return FAMILIES.get(spec.family)(spec)  # only builds right after torch.manual_seed(small seed) come back: a run's, its probe's
    key = (dataclasses.replace(spec, weights=None), state)
    if key in _built:
        model, after = _built[key]
        _built.move_to_end(key)
        torch.set_rng_state(after)
        audio = getattr(model, "audio_backbone", None)
        if audio is not None and not getattr(audio, "pretrained", True):
            from avsbench_kit.models.vggish import RANDOM_WEIGHTS_NOTICE, RandomWeightsWarning

            warnings.warn(RANDOM_WEIGHTS_NOTICE, RandomWeightsWarning, stacklevel=4)  # as the build would have
        return copy.deepcopy(model)
    model = FAMILIES.get(spec.family)(spec)
    _built[key] = (copy.deepcopy(model), torch.get_rng_state())
    while len(_built) > keep:
        _built.popitem(last=False)
    return model


@functools.lru_cache(maxsize=1)
def _seeded_states() -> frozenset[str]:
    return frozenset(hashlib.sha256(torch.Generator().manual_seed(seed).get_state().numpy().data).hexdigest() for seed in range(16))


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
        model = _family_build(spec)
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
