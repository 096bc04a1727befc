"""Numbers the AVESFormer paper reports (RTX 3090, batch 1, T=1). Shown beside ours, never mixed.

Each entry names the zoo model and the overrides that make the paper's configuration.
"""

from __future__ import annotations

from dataclasses import dataclass

from avsbench_kit.spec import ModelSpec, make_spec


@dataclass(frozen=True)
class Reported:
    model: str
    overrides: tuple[tuple[str, str], ...]
    params_m: float | None  # millions, VGGish included (the baselines' dead weights included too)
    latency_ms: float | None
    source: str


REPORTED = (
    Reported("avsbench-r50", (), 163, 15.7, "Table 3"),
    Reported("avsegformer-r50", (), 151, 37.9, "Table 3"),
    Reported("avesformer-r18", (), 108, 8.8, "Table 3"),
    Reported("avesformer-r50", (), 127, 12.0, "Table 3"),
    Reported("avsegformer-r50", (("qg", "pqg"),), 144, 32.5, "Table 6"),
    Reported("avesformer-r50", (("qg", "qg"),), 131, 17.9, "Table 6"),
    Reported("avesformer-r50", (("stages", "TTT"),), None, 14.9, "Table 7"),
    Reported("avesformer-r50", (("stages", "TCT"),), None, 12.1, "Table 7"),
    Reported("avesformer-r50", (("stages", "TTC"),), None, 11.8, "Table 7"),
)


def _architecture(spec: ModelSpec) -> ModelSpec:
    return ModelSpec(**{**spec.to_dict(), "name": "", "backbone_weights": None, "vggish_weights": None})


def reported_for(spec: ModelSpec) -> Reported | None:
    """The paper's figures for this exact architecture (weights aside), if it reports any."""
    arch = _architecture(spec)
    for entry in REPORTED:
        if _architecture(make_spec(entry.model, dict(entry.overrides))) == arch:
            return entry
    return None


# What the released baselines declare, and which of those parameters their forward never uses
# (REFERENCE.md sections 1 and 2). Our re-implementations hold only the live ones.
RELEASED = {
    "avsegformer-r50": {
        "declared": 150_902_528,
        "unused": {"second backbone branch (layer3_2, layer4_2)": 22_063_104, "SimpleFPN": 1_770_240, "attn_fc head": 331_968},
    },
    "avsbench-r50": {
        "declared": 163_542_145,
        "unused": {"second backbone branch (layer3_2, layer4_2)": 22_063_104, "RCU1 of the first fusion block": 1_180_160},
    },
}


def released_live(model: str) -> int:
    """Live parameters of the released code: what it declares minus what its forward never uses."""
    entry = RELEASED[model]
    return entry["declared"] - sum(entry["unused"].values())
