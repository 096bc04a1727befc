"""Key maps from the released AVSegFormer / AVSBench state dicts to avskit's modules.

The released code stores ``nn.MultiheadAttention`` projections packed (``in_proj_weight`` of
``[3C, C]``); avskit's attention keeps ``q_proj``, ``k_proj`` and ``v_proj`` apart. Each function
here takes a released state dict and returns the part of avskit's state dict it maps, key by key,
so a mismatch surfaces as a missing or unexpected key, never as a silent reshuffle. So far: the
query generator (with the head's learnable query) and the query decoder; more parts follow
(issue #10).
"""

from __future__ import annotations

from torch import Tensor


def split_packed_attention(state: dict[str, Tensor], src: str, dst: str) -> dict[str, Tensor]:
    """``src.in_proj_weight/bias`` and ``src.out_proj.*`` -> ``dst.{q,k,v,out}_proj.*``."""
    out: dict[str, Tensor] = {}
    for kind in ("weight", "bias"):
        packed = state.get(f"{src}.in_proj_{kind}")
        if packed is not None:
            for name, part in zip(("q_proj", "k_proj", "v_proj"), packed.chunk(3)):
                out[f"{dst}.{name}.{kind}"] = part
        if f"{src}.out_proj.{kind}" in state:
            out[f"{dst}.out_proj.{kind}"] = state[f"{src}.out_proj.{kind}"]
    return out


def post_norm_layers(state: dict[str, Tensor], prefix: str, ffn: tuple[str, str]) -> dict[str, Tensor]:
    """Released post-norm layers ``PREFIXlayers.N`` (self-attention + norm1, cross-attention + norm2,
    a two-linear FFN named ``ffn`` + norm3) -> avskit's ``layers.N.{self_attn,cross_attn,ffn}``."""
    out: dict[str, Tensor] = {}
    layers = sorted({int(k[len(prefix):].split(".")[1]) for k in state if k.startswith(f"{prefix}layers.")})
    for n in layers:
        src, dst = f"{prefix}layers.{n}", f"layers.{n}"
        for attn, norm in (("self_attn", "norm1"), ("cross_attn", "norm2")):
            out |= split_packed_attention(state, f"{src}.{attn}", f"{dst}.{attn}.attn")
            out |= {f"{dst}.{attn}.norm.{kind}": state[f"{src}.{norm}.{kind}"] for kind in ("weight", "bias")}
        for released, ours in ((ffn[0], "ffn.net.0"), (ffn[1], "ffn.net.3"), ("norm3", "ffn.norm")):
            out |= {f"{dst}.{ours}.{kind}": state[f"{src}.{released}.{kind}"] for kind in ("weight", "bias")}
    return out


def query_generator_state(state: dict[str, Tensor], prefix: str = "head.query_generator.",
                          learnable: str = "head.learnable_query.weight") -> dict[str, Tensor]:
    """The released ``AttentionGenerator`` (FFN ``ffn.0``/``ffn.2``) and the head's learnable query
    -> :class:`baselines.query_generators.AttentionQueryGenerator`'s state dict."""
    out = {"query.weight": state[f"{prefix}query.weight"], "learnable_query.weight": state[learnable]}
    return out | post_norm_layers(state, prefix, ("ffn.0", "ffn.2"))


def query_decoder_state(state: dict[str, Tensor], prefix: str = "head.transformer.decoder.") -> dict[str, Tensor]:
    """The released ``AVSTransformerDecoder`` (FFN ``linear1``/``linear2``) -> :class:`baselines.avsegformer.QueryDecoder`."""
    return post_norm_layers(state, prefix, ("linear1", "linear2"))
