"""Figure 3's groups of a model's parts (by what they do) and a forward's shares per group."""

from __future__ import annotations

PART_GROUPS = (  # fig3's legend: the models' parts, gathered by what they do
    ("audio backbone (VGGish)", ("audio_backbone", "audio_proj")),
    ("visual backbone", ("visual_backbone",)),
    ("projections / neck", ("input_proj", "stage_convs", "neck", "neck_post", "vid_embed_proj", "aspp", "reduce", "visual_projector")),
    ("query generator", ("query_generator",)),
    ("decoder and fusion", ("decoder", "pixel_encoder", "query_decoder", "tpavi", "vae", "spatial_encoder", "temporal_encoder",
                            "obj_queries", "fusion")),
    ("mask head", ("mask_head", "output_head", "mask_decoder", "kernel_head", "score_head", "head")),
    ("other parts", ()),  # a part the groups above do not name: its own segment, never lost
)
GROUP_COLOURS = ("#9e9e9e", "#4c72b0", "#c4ad66", "#dd8452", "#c44e52", "#55a868", "#8172b3")
OUTSIDE_COLOUR = "#e5e5e5"


def _groups(modules: list[dict]) -> tuple[list[float], float]:
    """A forward's parts as the shares of PART_GROUPS (a part no group names counts as "other parts")
    and the share outside every part. The per-part times come from the hooked forward; where their sum
    passes that forward's time (timing noise), the shares are scaled to sum to 1 and nothing is outside."""
    shares = {m["name"]: m["share"] for m in modules if m["depth"] == 1}
    named = {part for _, parts in PART_GROUPS for part in parts}
    grouped = [sum(shares.get(part, 0.0) for part in parts) for _, parts in PART_GROUPS[:-1]]
    grouped.append(sum(v for k, v in shares.items() if k not in named))
    total = sum(grouped)
    if total > 1:
        grouped = [g / total for g in grouped]
    return grouped, max(0.0, 1 - sum(grouped))
