"""Key maps from the released AVSegFormer, AVSBench, ECMVAE, CATR and CAVP state dicts to avskit's modules.

The released code stores ``nn.MultiheadAttention`` projections packed (``in_proj_weight`` of
``[3C, C]``); avskit's attention keeps ``q_proj``, ``k_proj`` and ``v_proj`` apart. Each function
here takes a released state dict and returns the part of avskit's state dict it maps, key by key,
so a mismatch surfaces as a missing or unexpected key, never as a silent reshuffle.

The whole-model maps (:func:`avsegformer_release`, :func:`avsbench_release`, :func:`ecmvae_release`,
:func:`catr_release`, :func:`cavp_release`) are registered as
weight formats, so ``--set weights=FILE`` recognises a released checkpoint by its keys
(avsbench_kit.weights) and loads it; each returns the mapped state, the source keys it dropped
because the forward never uses them, and the target keys it filled (AVSS's bias-free TPAVI
``align_channel`` gets a zero bias).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from avsbench_kit.models.backbones import pvt_release_name
from avsbench_kit.registry import WEIGHT_FORMATS


def split_packed_attention(state: dict[str, Tensor], src: str, dst: str) -> dict[str, Tensor]:
    """``src.in_proj_weight/bias`` and ``src.out_proj.*`` -> ``dst.{q,k,v,out}_proj.*``."""
    out: dict[str, Tensor] = {}
    for kind in ("weight", "bias"):
        packed = state.get(f"{src}.in_proj_{kind}")
        if packed is not None:
            for name, part in zip(("q_proj", "k_proj", "v_proj"), packed.chunk(3), strict=True):
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
    -> :class:`avskit.baselines.query_generators.AttentionQueryGenerator`'s state dict."""
    out = {"query.weight": state[f"{prefix}query.weight"], "learnable_query.weight": state[learnable]}
    return out | post_norm_layers(state, prefix, ("ffn.0", "ffn.2"))


def query_decoder_state(state: dict[str, Tensor], prefix: str = "head.transformer.decoder.") -> dict[str, Tensor]:
    """The released ``AVSTransformerDecoder`` (FFN ``linear1``/``linear2``) -> :class:`avskit.baselines.avsegformer.QueryDecoder`."""
    return post_norm_layers(state, prefix, ("linear1", "linear2"))


@dataclass
class Converted:
    """A released state dict in avskit's names: ``state``; source keys ``dropped`` because the
    forward never uses them; target keys ``filled`` with a neutral value; source keys ``unread`` by
    any map (the loader reports them as unexpected)."""

    state: dict[str, Tensor]
    dropped: list[str]
    filled: list[str]
    unread: list[str]

    @classmethod
    def of(cls, state: dict[str, Tensor], src: "_Reads", unused: tuple[str, ...], filled: list[str] | None = None) -> "Converted":
        dropped = sorted(k for k in src if k.startswith(unused) and k not in src.read)
        unread = sorted(set(src) - src.read - set(dropped))
        return cls(state, dropped, filled or [], unread)


class _Reads(dict):
    """A state dict that remembers which keys were read, so what a map leaves over shows."""

    def __init__(self, state: dict[str, Tensor]):
        super().__init__(state)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Tensor:
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        if key in self:
            return self[key]
        return default


def _moved(state: dict[str, Tensor], src: str, dst: str) -> dict[str, Tensor]:
    """Every key under ``src`` renamed to lie under ``dst``."""
    return {dst + k[len(src):]: state[k] for k in list(state) if k.startswith(src)}


def _backbone(state: dict[str, Tensor], src: str, backbone: str) -> dict[str, Tensor]:
    """The releases' ``B2_ResNet`` (first branch: ``layer3_1``/``layer4_1``) or PVT-v2 under ``src``
    -> avskit's ``visual_backbone``."""
    if backbone.startswith("pvt"):
        return {f"visual_backbone.net.{new}": state[k] for k in list(state) if (new := pvt_release_name(k, src)) is not None}
    out = _moved(state, f"{src}conv1.", "visual_backbone.stem.0.") | _moved(state, f"{src}bn1.", "visual_backbone.stem.1.")
    for released, ours in (("layer1", "layer1"), ("layer2", "layer2"), ("layer3_1", "layer3"), ("layer4_1", "layer4")):
        out |= _moved(state, f"{src}{released}.", f"visual_backbone.{ours}.")
    return out


def _sequential(state: dict[str, Tensor], src: str, dst: str, pairs: tuple[tuple[int, int], ...]) -> dict[str, Tensor]:
    out: dict[str, Tensor] = {}
    for a, b in pairs:
        out |= _moved(state, f"{src}.{a}.", f"{dst}.{b}.")
    return out


def _tpavi(state: dict[str, Tensor], src: str, dst: str) -> dict[str, Tensor]:
    """A released ``TPAVIModule`` under ``src`` (AVSBench's or ECMVAE's) -> :class:`avskit.baselines.tpavi.TPAVI`
    under ``dst``: its 1x1x1 Conv3d kernels become Linear weights, ``W_z.0/W_z.1`` -> ``W_z``/``bn``."""
    out: dict[str, Tensor] = {}
    for conv in ("theta", "phi", "g"):
        out[f"{dst}{conv}.weight"] = state[f"{src}{conv}.weight"].flatten(1)
        out[f"{dst}{conv}.bias"] = state[f"{src}{conv}.bias"]
    out[f"{dst}W_z.weight"] = state[f"{src}W_z.0.weight"].flatten(1)
    out[f"{dst}W_z.bias"] = state[f"{src}W_z.0.bias"]
    return out | _moved(state, f"{src}W_z.1.", f"{dst}bn.") | _moved(state, f"{src}norm_layer.", f"{dst}norm.")


# parts of the released checkpoints that their forward never runs
AVSEGFORMER_UNUSED = ("head.fpn.", "head.attn_fc.", "backbone.layer3_2.", "backbone.layer4_2.", "backbone.head.")
AVSBENCH_UNUSED = ("resnet.layer3_2.", "resnet.layer4_2.", "path4.resConfUnit1.", "encoder_backbone.head.")


def avsegformer_release(state: dict[str, Tensor], spec) -> "Converted":
    """``torch.save(model.module.state_dict())`` of the released AVSegFormer -> :class:`avskit.baselines.avsegformer.AVSegFormer`."""
    src = _Reads(state)
    out = _backbone(src, "backbone.", spec.backbone)
    out |= _moved(src, "vggish.", "audio_backbone.") | _moved(src, "audio_proj.", "audio_proj.")
    out |= _moved(src, "head.in_proj.", "input_proj.levels.")
    out["pixel_encoder.level_embed"] = src["head.level_embed"]
    enc = "head.transformer.encoder.layers."
    for n in sorted({int(k[len(enc):].split(".")[0]) for k in state if k.startswith(enc)}):
        s, d = f"{enc}{n}.", f"pixel_encoder.layers.{n}."
        out |= _moved(src, f"{s}self_attn.", f"{d}self_attn.attn.") | _moved(src, f"{s}norm1.", f"{d}self_attn.norm.")
        out |= _moved(src, f"{s}linear1.", f"{d}ffn.net.0.") | _moved(src, f"{s}linear2.", f"{d}ffn.net.3.")
        out |= _moved(src, f"{s}norm2.", f"{d}ffn.norm.")
    out |= {f"query_generator.{k}": v for k, v in query_generator_state(src).items()}
    out |= {f"query_decoder.{k}": v for k, v in query_decoder_state(src).items()}
    out |= _moved(src, "head.lateral_conv.", "mask_head.lateral.") | _moved(src, "head.out_conv.", "mask_head.out_conv.")
    out |= _sequential(src, "head.mlp.layers", "mask_head.query_mlp", ((0, 0), (1, 2), (2, 4)))
    out |= _moved(src, "head.fusion_block.", "mask_head.mixer.")
    out |= _sequential(src, "head.fc", "mask_head.classifier", ((0, 0), (2, 2), (4, 4)))
    return Converted.of(out, src, AVSEGFORMER_UNUSED)


def avsbench_release(state: dict[str, Tensor], spec) -> "Converted":
    """The released ``Pred_endecoder`` state dict (ResNet-50 ``resnet.*`` or PVT ``encoder_backbone.*``)
    -> :class:`avskit.baselines.avsbench.AVSBenchModel`. VGGish is not in it: it comes through ``vggish_weights``."""
    src = _Reads(state)
    out = _backbone(src, "encoder_backbone." if spec.backbone.startswith("pvt") else "resnet.", spec.backbone)
    for i in range(4):
        out |= _moved(src, f"conv{i + 1}.conv2d_list.", f"stage_convs.{i}.convs.")
        t, d = f"tpavi_b{i + 1}.", f"tpavi.{i}."
        out |= _moved(src, f"{t}align_channel.", f"{d}align_channel.") | _tpavi(src, t, d)
        for n, path in ((1, "lateral_unit"), (2, "out_unit")):
            if not (i == 3 and n == 1):  # path4's first unit never runs
                out |= _moved(src, f"path{i + 1}.resConfUnit{n}.", f"decoder.path{i + 1}.{path}.")
    out |= _sequential(src, "output_conv", "output_head", ((0, 0), (2, 2), (4, 4)))
    filled = []
    for i in range(4):  # AVSS's release builds align_channel without a bias
        key = f"tpavi.{i}.align_channel.bias"
        if key not in out and f"tpavi.{i}.align_channel.weight" in out:
            out[key] = torch.zeros(out[f"tpavi.{i}.align_channel.weight"].shape[0])
            filled.append(key)
    return Converted.of(out, src, AVSBENCH_UNUSED, filled)


WEIGHT_FORMATS.register("avsegformer-release")((
    "AVSegFormer release (vvvb-github/AVSegFormer)", "avsegformer",
    lambda keys: any(k.startswith("head.transformer.") for k in keys) and any(k.startswith("vggish.") for k in keys),
    avsegformer_release))
WEIGHT_FORMATS.register("avsbench-release")((
    "AVSBench release (OpenNLPLab/AVSBench Pred_endecoder)", "avsbench",
    lambda keys: any(k.startswith("tpavi_b") for k in keys) and any(k.startswith("path1.resConfUnit") for k in keys),
    avsbench_release))


# ---- ECMVAE (OpenNLPLab/MMVAE-AVS) and CATR (aspirinone/CATR.github.io) -----------------------------

ECMVAE_UNUSED = ("mm_vae_model.enc_vs_y.", "mm_vae_model.enc_as_y.", "mm_vae_model.enc_vac_y.", "mm_vae_model.sc1_posterior.",
                 "mm_vae_model.sc2_posterior.", "mm_vae_model.noise_model_post.", "mm_vae_model.ba_lower_bound_", "decoder_post.",
                 "audio_neck.", "decoder_prior.fusion_block_1.resConfUnit1.")


def _resnet_torchvision(state: dict[str, Tensor], src: str) -> dict[str, Tensor]:
    """A torchvision ResNet's stem and stages under ``src`` -> avskit's ``visual_backbone``."""
    out = _moved(state, f"{src}conv1.", "visual_backbone.stem.0.") | _moved(state, f"{src}bn1.", "visual_backbone.stem.1.")
    for n in range(1, 5):
        out |= _moved(state, f"{src}layer{n}.", f"visual_backbone.layer{n}.")
    return out


def _conv_bn(state: dict[str, Tensor], src: str, dst: str) -> dict[str, Tensor]:
    return _moved(state, f"{src}.conv.", f"{dst}.conv.") | _moved(state, f"{src}.norm.", f"{dst}.norm.")


def _image_encoder(state: dict[str, Tensor], src: str, dst: str) -> dict[str, Tensor]:
    out: dict[str, Tensor] = {}
    for n in range(5):
        out |= _moved(state, f"{src}.layer{n + 1}.", f"{dst}.convs.{n}.") | _moved(state, f"{src}.bn{n + 1}.", f"{dst}.norms.{n}.")
    return out


def ecmvae_release(state: dict[str, Tensor], spec) -> "Converted":
    """``torch.save(model.module.state_dict())`` of the released ``AVSMMVAE`` -> :class:`avskit.baselines.ecmvae.ECMVAE`.
    VGGish is not in it (the release's separate ``audio_extractor``): it comes through ``vggish_weights``."""
    src = _Reads(state)
    if spec.backbone.startswith("pvt"):
        out = {f"visual_backbone.net.{new}": src[k] for k in list(state) if (new := pvt_release_name(k, "encoder.")) is not None}
    else:
        out = _resnet_torchvision(src, "encoder.")
    for neck, ours in (("neck_prior", "neck"), ("neck_post", "neck_post")):
        for i in range(4):
            for j in range(3):
                out |= _conv_bn(src, f"{neck}.conv_list.{i}.reduce.{j}", f"{ours}.{i}.{j}")
    vae = "mm_vae_model."
    out |= _image_encoder(src, f"{vae}enc_vs", "vae.image") | _image_encoder(src, f"{vae}enc_vac", "vae.common_image")
    for released, ours in (("enc_vs", "image_latent"), ("enc_as", "audio_latent"), ("enc_vac", "common_latent")):
        out |= _moved(src, f"{vae}{released}.fc1.", f"vae.{ours}.fc1.") | _moved(src, f"{vae}{released}.fc2.", f"vae.{ours}.fc2.")
    out |= _moved(src, f"{vae}enc_vac.fc_gt_vector.", "vae.common_vector.")
    out |= _moved(src, f"{vae}sc1_prior.", "vae.visual_code.") | _moved(src, f"{vae}sc2_prior.", "vae.audio_code.")
    out |= _moved(src, f"{vae}noise_model_prior.noise_conv.", "vae.fuse.")
    for i in range(4):
        out |= _tpavi(src, f"fusion_modules.{i}.", f"tpavi.{i}.")  # ECMVAE's TPAVI has no align_channel
    for k in range(4):
        block = f"decoder_prior.fusion_block_{k + 1}"
        for unit, ours in (("resConfUnit1", "lateral_unit"), ("resConfUnit2", "out_unit")):
            if unit == "resConfUnit1" and k == 0:
                continue  # the first block has no skip input: its lateral unit never runs
            for n, part in ((1, "first"), (2, "second")):
                out |= _conv_bn(src, f"{block}.{unit}.ConvBNReLU{n}", f"decoder.blocks.{k}.{ours}.{part}")
    out |= _sequential(src, "decoder_prior.head_up_2.output_conv", "decoder.head", ((0, 0), (2, 2), (4, 4)))
    return Converted.of(out, src, ECMVAE_UNUSED)


CATR_UNUSED = ("path1.", "path2.", "path3.", "path4.", "fusion_module.", "transformer.temporal_encoder.av_atten.",
               "transformer.temporal_encoder.va_atten.")


def _catr_encoder_layer(state: dict[str, Tensor], src: str, dst: str) -> dict[str, Tensor]:
    """A released ``SpatialEncoderLayer``/``TemporalEncoderLayer``'s encoder part -> :class:`avskit.baselines.catr.EncoderLayer`."""
    out = split_packed_attention(state, f"{src}.self_attn", f"{dst}.self_attn")
    out |= _moved(state, f"{src}.norm1.", f"{dst}.norm1.") | _moved(state, f"{src}.norm2.", f"{dst}.ffn.norm.")
    return out | _moved(state, f"{src}.linear1.", f"{dst}.ffn.net.0.") | _moved(state, f"{src}.linear2.", f"{dst}.ffn.net.3.")


def _layer_numbers(state: dict[str, Tensor], prefix: str) -> list[int]:
    return sorted({int(k[len(prefix):].split(".")[0]) for k in state if k.startswith(prefix)})


def catr_release(state: dict[str, Tensor], spec) -> "Converted":
    """The released ``Pred_endecoder`` state dict -> :class:`avskit.baselines.catr.CATR`. VGGish is not in it:
    it comes through ``vggish_weights``."""
    src = _Reads(state)
    out = {f"visual_backbone.net.{new}": src[k] for k in list(state) if (new := pvt_release_name(k, "encoder_backbone.")) is not None}
    for i in range(4):
        out |= _moved(src, f"conv{i + 1}.conv2d_list.", f"stage_convs.{i}.convs.")
    out |= _moved(src, "vid_embed_proj.", "vid_embed_proj.") | _moved(src, "obj_queries.", "obj_queries.")
    out |= _moved(src, "transformer.audio_proj.", "audio_proj.")
    prefix = "transformer.spatial_encoder.layers."
    for n in _layer_numbers(state, prefix):
        out |= _catr_encoder_layer(src, f"{prefix}{n}", f"spatial_encoder.{n}")
    prefix = "transformer.temporal_encoder.layers."
    for n in _layer_numbers(state, prefix):
        s, d = f"{prefix}{n}", f"temporal_encoder.layers.{n}"
        out |= _catr_encoder_layer(src, s, f"{d}.encoder")
        for attn in ("av_atten", "va_atten"):  # each one's vid_embed_proj, a Conv2d(5, 15680), is never called
            out |= split_packed_attention(src, f"{s}.{attn}.multihead_attn", f"{d}.{attn}")
    t = "transformer.temporal_encoder."
    out |= _moved(src, f"{t}attention_feature.0.", "temporal_encoder.attention_feature.")
    out |= _moved(src, f"{t}output1.", "temporal_encoder.output1.") | _moved(src, f"{t}output2.", "temporal_encoder.output2.")
    prefix = "transformer.decoder.layers."
    for n in _layer_numbers(state, prefix):
        s, d = f"{prefix}{n}", f"decoder.layers.{n}"
        out |= split_packed_attention(src, f"{s}.self_attn", f"{d}.self_attn")
        out |= split_packed_attention(src, f"{s}.multihead_attn", f"{d}.cross_attn")
        for released, ours in (("norm1", "norm1"), ("norm2", "norm2"), ("norm3", "ffn.norm"), ("linear1", "ffn.net.0"), ("linear2", "ffn.net.3")):
            out |= _moved(src, f"{s}.{released}.", f"{d}.{ours}.")
    out |= _moved(src, "transformer.decoder.norm.", "decoder.norm.") | _moved(src, "spatial_decoder.", "mask_decoder.")
    out |= _sequential(src, "instance_kernels_head.layers", "kernel_head", ((0, 0), (1, 2)))
    out |= _moved(src, "is_referred_head.", "score_head.")
    return Converted.of(out, src, CATR_UNUSED + tuple(k for k in state if k.startswith("transformer.") and ".vid_embed_proj." in k))


WEIGHT_FORMATS.register("ecmvae-release")((
    "ECMVAE release (OpenNLPLab/MMVAE-AVS AVSMMVAE)", "ecmvae",
    lambda keys: any(k.startswith("mm_vae_model.") for k in keys) and any(k.startswith("neck_prior.") for k in keys),
    ecmvae_release))
WEIGHT_FORMATS.register("catr-release")((
    "CATR release (aspirinone/CATR.github.io Pred_endecoder)", "catr",
    lambda keys: any(k.startswith("transformer.temporal_encoder.") for k in keys) and "obj_queries.weight" in keys,
    catr_release))


def cavp_release(state: dict[str, Tensor], spec) -> "Converted":
    """The released ``CAVP`` checkpoint (``{'model': DDP state dict}``, unwrapped by the loader) ->
    :class:`avskit.baselines.cavp.CAVP`. Every key is mapped: the declared-but-unused ``pos_embed_*`` and
    ``cls_head`` too, so a file with a key short or over fails to load instead of passing as the
    release's ``strict=False`` lets it."""
    src = _Reads(state)
    out = _moved(src, "backbone.backbone.", "visual_backbone.") | _moved(src, "segment.aspp.", "aspp.")
    out |= _moved(src, "segment.reduce.", "reduce.") | _moved(src, "visual_projector.", "visual_projector.")
    out |= _moved(src, "segment.upsample.last_conv.", "head.") | _moved(src, "segment.upsample.classifier.", "head.6.")
    out |= _moved(src, "cross_att.patch_embed_v.proj.", "fusion.visual_embed.") | _moved(src, "cross_att.patch_embed_a.proj.", "fusion.audio_embed.")
    out |= {f"fusion.{k}": src[f"cross_att.{k}"] for k in ("pos_embed_v", "pos_embed_a") if f"cross_att.{k}" in state}
    out |= _moved(src, "cross_att.norm.", "fusion.norm.")
    for n in _layer_numbers(state, "cross_att.blocks."):
        s, d = f"cross_att.blocks.{n}", f"fusion.blocks.{n}"
        out |= _moved(src, f"{s}.norm1.", f"{d}.norm1.") | _moved(src, f"{s}.norm2.", f"{d}.norm2.") | _moved(src, f"{s}.mlp.", f"{d}.mlp.")
        for released, ours in (("q", "q_proj"), ("k", "k_proj"), ("v", "v_proj"), ("proj", "out_proj")):
            out |= _moved(src, f"{s}.attn.{released}.", f"{d}.attn.{ours}.")
    out |= _moved(src, "audio_backbone.backbone.", "audio_backbone.") | _moved(src, "audio_backbone.cls_head.", "audio_backbone.cls_head.")
    return Converted.of(out, src, ())


WEIGHT_FORMATS.register("cavp-release")((
    "CAVP release (cyh-0/CAVP CAVP, DeepLabV3+)", "cavp",
    lambda keys: "cross_att.patch_embed_v.proj.weight" in keys and any(k.startswith("segment.aspp.") for k in keys),
    cavp_release))
