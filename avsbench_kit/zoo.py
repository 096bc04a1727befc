"""The public entry point: ``build_model(name, **overrides)``."""

from __future__ import annotations

from typing import Any

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
    else:
        model = FAMILIES.get(spec.family)(spec)
    model.spec = spec
    name_attention_sites(model)
    return model.eval()


def build_model(name: str, **overrides: Any) -> AVSModel:
    """A zoo model in eval mode, e.g. ``build_model("avesformer-r50", fusion="tpavi", stages="TTT")``.

    ``model(image [B,3,H,W], audio [B,1,96,64])`` returns logits ``[B, classes, H, W]``. Weights are
    random unless ``backbone_weights`` ("imagenet" or a path) and ``vggish_weights`` (a path) say
    otherwise. Raises :class:`avsbench_kit.UserError` for an unknown name, key or value.
    """
    return build_from_spec(make_spec(name, overrides))
