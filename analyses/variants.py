"""The variants of a sweep: one axis of a model spec set to each value the user names (or all the
zoo knows), or a list of models against a base; what ``avskit compare`` and the report sweep."""

from __future__ import annotations

from typing import Iterable

from avsbench_kit import ModelSpec, UserError
from avsbench_kit.registry import FUSIONS, QUERY_GENERATORS
from avsbench_kit.spec import BACKBONES, make_spec, weights_for

AXES = ("fusion", "qg", "stages", "queries", "backbone")
ALL_STAGES = ("TTT", "CTT", "TCT", "TTC")
PAPER_QUERIES = (8, 16, 32, 64, 128, 256)
BACKBONE_ALIASES = {"r18": "resnet18", "r50": "resnet50"}


def axis_values(axis: str, values: Iterable[str]) -> list[str]:
    """The values of one axis: comma-separated or repeated; ``all`` for every value the zoo knows."""
    if axis not in AXES:
        raise UserError(f"unknown axis {axis!r}; choose one of: {', '.join(AXES)}")
    items = [v.strip() for text in values for v in str(text).split(",") if v.strip()]
    if not items:
        raise UserError(f"--{axis} needs at least one value (or 'all')")
    if items == ["all"]:
        return {"fusion": FUSIONS.names, "qg": QUERY_GENERATORS.names, "stages": lambda: list(ALL_STAGES),
                "queries": lambda: [str(q) for q in PAPER_QUERIES], "backbone": lambda: list(BACKBONES)}[axis]()
    if axis == "backbone":
        items = [BACKBONE_ALIASES.get(v.lower(), v) for v in items]
    return list(dict.fromkeys(items))  # each value once, in the order given


def variants(base: ModelSpec, axis: str, values: Iterable[str]) -> list[ModelSpec]:
    """``base`` with ``axis`` set to each value (checked like ``--set``); the base's other changes kept."""
    kept = {k: v for k, v in base.changes().items() if k != axis and not (axis == "qg" and k == "queries")}
    specs = [weights_for(make_spec(base.name, {**kept, axis: value}), base) for value in axis_values(axis, values)]
    return list(dict.fromkeys(specs))


def split_models(text: str) -> list[str]:
    """``a,b[k=v,w=x],c`` -> ``["a", "b[k=v,w=x]", "c"]``: commas inside brackets belong to a label."""
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    return parts + [current]


def sweep_specs(base: str, given: dict[str, list[str]], trained: bool = False) -> tuple[str, list]:
    """``avskit compare``'s sweep: the one axis given (or ``models``) and its specs, the base first."""
    from avsbench_kit.spec import spec_from_text

    if len(given) != 1:
        raise UserError("give exactly one axis to sweep (--fusion, --qg, --stages, --queries or --backbone, e.g. --fusion all), "
                        "or --models with a list of models")
    (axis, values), = given.items()
    base_spec = spec_from_text(base)
    if axis == "models":
        names = [v.strip() for text in values for v in split_models(text) if v.strip()]
        if not names:
            raise UserError("--models needs at least one model, e.g. --models avesformer-r18,avsegformer-r50")
        specs = list(dict.fromkeys([base_spec, *(spec_from_text(name) for name in names)]))
    elif base_spec.family == "foreign":
        raise UserError(f"--{axis} sweeps a zoo model's spec; {base_spec.label} is a reference: compare it with --models instead")
    else:
        specs = list(dict.fromkeys([base_spec, *variants(base_spec, axis, values)]))
    if trained and any(s.family == "foreign" for s in specs):
        raise UserError("--train trains zoo models only; a referenced model is measured without it")
    return axis, specs
