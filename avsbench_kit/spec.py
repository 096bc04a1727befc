"""A model is a spec: a named point in the zoo, and every ablation is one field changed.

Specs are frozen dataclasses, so they print, compare and hash, and results can be keyed by them.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from avsbench_kit.errors import UserError
from avsbench_kit.registry import FUSIONS, QUERY_GENERATORS

BACKBONES = ("resnet18", "resnet50", "pvt_v2_b5")
QUERY_RANGE = (1, 1024)  # the paper sweeps 8..256; AVSegFormer's QG uses 300
CLASS_RANGE = (1, 1000)  # 1 for S4/MS3, 71 for AVSS
# Queries a generator makes when the user does not say: PQG and BQG as AVESFormer (16), QG as
# released (300); without a generator the raw audio token is the one query.
DEFAULT_QUERIES = {"pqg": 16, "bqg": 16, "qg": 300, "none": 1}


@dataclass(frozen=True)
class ModelSpec:
    name: str  # the zoo entry this spec derives from
    family: str  # avesformer | avsegformer | avsbench | ecmvae | catr | cavp
    backbone: str = "resnet50"
    qg: str | None = "pqg"
    fusion: str | None = "cross_attention"
    stages: str | None = "CTT"
    queries: int | None = 16
    classes: int = 1
    backbone_weights: str | None = None  # None (random), "imagenet", or a state-dict path
    vggish_weights: str | None = None  # a vggish-10086976.pth-style state-dict path
    weights: str | None = None  # the whole model: an avskit checkpoint or a released checkpoint (avsbench_kit.weights)
    # fields of one family each; None elsewhere, and then left out of to_dict() so that the records and
    # run ids of the other models stay as they were before these fields existed
    latent: str | None = None  # ecmvae: "mean" (every latent at its mean, deterministic) or "sample" (as released)
    temporal_ffn: int | None = None  # catr: the temporal encoder's feed-forward width (256: the code's default; 2048)
    input_upsample: bool | None = None  # catr: the release's loader resizes the frame x2 (224 -> 448) before the model

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        return {k: v for k, v in data.items() if not (k in FAMILY_ONLY_FIELDS and v is None)}

    def changes(self) -> dict[str, Any]:
        """Fields that differ from the zoo entry this spec derives from."""
        base = ZOO[self.name]
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) != getattr(base, f.name)}

    @property
    def label(self) -> str:
        changes = self.changes()
        if not changes:
            return self.name
        return self.name + "[" + ",".join(f"{k}={v}" for k, v in changes.items()) + "]"


ZOO: dict[str, ModelSpec] = {
    "avesformer-r18": ModelSpec("avesformer-r18", "avesformer", backbone="resnet18"),
    "avesformer-r50": ModelSpec("avesformer-r50", "avesformer", backbone="resnet50"),
    "avsegformer-r50": ModelSpec("avsegformer-r50", "avsegformer", qg="qg", fusion=None, stages=None, queries=300),
    "avsbench-r50": ModelSpec("avsbench-r50", "avsbench", qg=None, fusion=None, stages=None, queries=None),
    # the releases' PVT-v2-b5 configurations (timm's pvt_v2_b5 as the backbone)
    "avsegformer-pvt": ModelSpec("avsegformer-pvt", "avsegformer", backbone="pvt_v2_b5", qg="qg", fusion=None, stages=None, queries=300),
    "avsbench-pvt": ModelSpec("avsbench-pvt", "avsbench", backbone="pvt_v2_b5", qg=None, fusion=None, stages=None, queries=None),
    # Table 3's other two methods, as released (REFERENCE.md sections 9 and 10; the paper labels both ResNet-50)
    "ecmvae-pvt": ModelSpec("ecmvae-pvt", "ecmvae", backbone="pvt_v2_b5", qg=None, fusion=None, stages=None, queries=None, latent="mean"),
    "ecmvae-r50": ModelSpec("ecmvae-r50", "ecmvae", backbone="resnet50", qg=None, fusion=None, stages=None, queries=None, latent="mean"),
    "catr-pvt": ModelSpec("catr-pvt", "catr", backbone="pvt_v2_b5", qg=None, fusion=None, stages=None, queries=None,
                          temporal_ffn=256, input_upsample=True),
    # the 2024 releases (REFERENCE.md's facts, checked in each release's code); the backbone is CAVP's own deep-stem ResNet-50
    "cavp-r50": ModelSpec("cavp-r50", "cavp", backbone="resnet50", qg=None, fusion=None, stages=None, queries=None),
}
FAMILY_ONLY_FIELDS = ("latent", "temporal_ffn", "input_upsample")
LATENTS = ("mean", "sample")
TEMPORAL_FFN = (256, 2048)

WEIGHT_FIELDS = ("backbone_weights", "vggish_weights", "weights")
FAMILY_FIELDS = {
    "avesformer": ("backbone", "qg", "fusion", "stages", "queries", "classes") + WEIGHT_FIELDS,
    "avsegformer": ("backbone", "qg", "queries", "classes") + WEIGHT_FIELDS,
    "avsbench": ("backbone", "classes") + WEIGHT_FIELDS,
    "ecmvae": ("backbone", "latent") + WEIGHT_FIELDS,
    "catr": ("temporal_ffn", "input_upsample") + WEIGHT_FIELDS,
    "cavp": ("classes", "weights"),  # its backbone and audio network come with the release's one checkpoint
}
ALL_FIELDS = FAMILY_FIELDS["avesformer"] + FAMILY_ONLY_FIELDS
# the audio each family's release feeds its model (the datasets compute it); every other family: AVSBench's VGGish log-mel
FRONT_ENDS = {"cavp": "cavp"}


def front_end_of(spec) -> str:
    """"vggish" (AVSBench's log-mel, avsbench_kit.audio) or "cavp" (avsbench_kit.audio_cavp)."""
    return FRONT_ENDS.get(getattr(spec, "family", ""), "vggish")


def weights_for(variant: ModelSpec, base: ModelSpec) -> ModelSpec:
    """``variant`` of ``base`` (another value on some axis): it keeps base's whole-model ``weights``
    file only when it is base's own architecture; the file fits no other."""
    if variant.weights and dataclasses.replace(variant, weights=None) != dataclasses.replace(base, weights=None):
        return dataclasses.replace(variant, weights=None)
    return variant


def _choice(key: str, value: Any, accepted: list[str] | tuple[str, ...]) -> str:
    text = str(value).strip().lower()
    if text not in accepted:
        raise UserError(f"{key}={value!r} is not accepted; choose one of: {', '.join(accepted)}")
    return text


def _integer(key: str, value: Any, low: int, high: int, hint: str = "") -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        raise UserError(f"{key}={value!r} is not accepted; expected an integer in {low}..{high}{hint}")
    return number


def _stages(value: Any) -> str:
    text = str(value).replace("-", "").strip().upper()
    if not re.fullmatch(r"[CT]{3}", text):
        raise UserError(f"stages={value!r} is not accepted; expected 3 letters from C (convolution) and T (transformer), e.g. CTT, TTT, TCT")
    return text


def _boolean(key: str, value: Any) -> bool:
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise UserError(f"{key}={value!r} is not accepted; expected true or false")


def _optional_path(key: str, value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return None if text.lower() in ("", "none", "random") else text


def parse_field(key: str, value: Any) -> Any:
    """One override, checked and converted to its field's type; UserError on a bad value."""
    if key == "backbone":
        return _choice(key, value, BACKBONES)
    if key == "qg":
        return _choice(key, value, QUERY_GENERATORS.names())
    if key == "fusion":
        return _choice(key, value, FUSIONS.names())
    if key == "stages":
        return _stages(value)
    if key == "queries":
        return _integer(key, value, *QUERY_RANGE, " (the paper sweeps 8..256)")
    if key == "classes":
        return _integer(key, value, *CLASS_RANGE, " (1 for S4/MS3, 71 for AVSS)")
    if key in WEIGHT_FIELDS:
        return _optional_path(key, value)
    if key == "latent":
        return _choice(key, value, LATENTS)
    if key == "temporal_ffn":
        return int(_choice(key, value, tuple(map(str, TEMPORAL_FFN))))
    if key == "input_upsample":
        return _boolean(key, value)
    raise UserError(f"unknown override key {key!r}; accepted: {', '.join(ALL_FIELDS)}")


def parse_set_options(items: list[str] | None) -> dict[str, str]:
    """``["fusion=tpavi", "queries=64"]`` -> ``{"fusion": "tpavi", "queries": "64"}``."""
    overrides: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"--set expects key=value, got {item!r} (e.g. --set fusion=tpavi)")
        overrides[key] = value
    return overrides


def make_spec(name: str, overrides: dict[str, Any] | None = None) -> ModelSpec:
    """The zoo entry ``name`` with ``overrides`` applied and checked."""
    if name not in ZOO:
        raise UserError(f"unknown model {name!r}; accepted: {', '.join(ZOO)}")
    base = ZOO[name]
    overrides = dict(overrides or {})
    applicable = FAMILY_FIELDS[base.family]
    values: dict[str, Any] = {}
    for key, value in overrides.items():
        parsed = parse_field(key, value)  # unknown keys and bad values first
        if key not in applicable:
            raise UserError(f"{key} does not apply to {name}; it accepts: {', '.join(applicable)}")
        values[key] = parsed
    if "qg" in values and "queries" not in values:
        values["queries"] = DEFAULT_QUERIES[values["qg"]]
    spec = dataclasses.replace(base, **values)
    if spec.qg == "none" and spec.queries != 1:
        raise UserError(f"queries={spec.queries} does not apply with qg=none: the raw audio token is the only query")
    return spec


def spec_from_text(text: str, overrides: dict[str, Any] | None = None):
    """A spec from a model name, a label such as ``avesformer-r50[stages=TTT,queries=64]``, or a
    model reference ``path/to/file.py:factory[k=v]`` / ``package.module:factory`` (a ForeignSpec).

    ``overrides`` (from ``--set``) apply on top of those in the label. This is the inverse of
    :attr:`ModelSpec.label`, so what a table prints can be pasted back on the command line.
    """
    from avsbench_kit.foreign import is_reference, parse_reference

    if is_reference(text):  # path/to/file.py:factory or package.module:factory
        return parse_reference(text, overrides)
    match = re.fullmatch(r"\s*([^\[\]\s]+)\s*(?:\[(.*)\])?\s*", text)
    if not match:
        raise UserError(f"{text!r} is not a model name or a label like avesformer-r50[stages=TTT,queries=64]")
    name, inner = match.groups()
    inline = parse_set_options([item for item in (inner or "").split(",") if item.strip()]) if inner is not None else {}
    return make_spec(name, {**inline, **(overrides or {})})


def spec_from_dict(data: dict[str, Any]):
    """A spec back from its ``to_dict()`` (a record's ``spec``): ModelSpec or ForeignSpec."""
    from avsbench_kit.foreign import ForeignSpec

    if data.get("family") == "foreign":
        return ForeignSpec(data["reference"], tuple(data.get("kwargs", {}).items()), data.get("sha256", ""))
    return ModelSpec(**data)
