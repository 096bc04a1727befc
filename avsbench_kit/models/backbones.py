"""Visual backbones as feature pyramids (strides 4, 8, 16, 32): torchvision ResNets and timm's
PVT-v2-b5 (the AVS releases' transformer backbone).

Weights are an explicit, optional argument, as in torchvision's builders: ``None`` (random),
``"imagenet"`` (torchvision's ImageNet weights, from the torch cache when offline; ResNets only) or
the path of a state dict: torchvision's key names for ResNets (``fc.*`` is ignored); for PVT-v2-b5
either timm's names or those of the releases' ``pvt_v2_b5.pth`` (``patch_embed1``, ``block1.N``,
``norm1``..., mapped by :func:`pvt_release_to_timm`; the classifier ``head.*`` is ignored).
"""

from __future__ import annotations

import contextlib
import re
import sys
from pathlib import Path

import torch
import torchvision
from torch import Tensor, nn

from avsbench_kit.errors import UserError

# The weights the AVS baselines start from (AVSBench loads resnet50-19c8e357.pth, i.e. V1).
IMAGENET_WEIGHTS = {
    "resnet18": torchvision.models.ResNet18_Weights.IMAGENET1K_V1,
    "resnet50": torchvision.models.ResNet50_Weights.IMAGENET1K_V1,
}
CHANNELS = {"resnet18": (64, 128, 256, 512), "resnet50": (256, 512, 1024, 2048), "pvt_v2_b5": (64, 128, 320, 512)}


class ResNetPyramid(nn.Module):
    """The stem and four stages of a torchvision ResNet; returns the four stage outputs."""

    def __init__(self, name: str = "resnet50", weights: str | None = None):
        super().__init__()
        if name not in CHANNELS:
            raise UserError(f"backbone={name!r} is not accepted; choose one of: {', '.join(CHANNELS)}")
        net = getattr(torchvision.models, name)(weights=None)
        if weights is not None:
            load_into(net, _load_state_dict(name, weights, net), weights)
        self.channels = CHANNELS[name]
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4

    def forward(self, image: Tensor) -> list[Tensor]:
        c1 = self.layer1(self.stem(image))
        c2 = self.layer2(c1)
        c3 = self.layer3(c2)
        c4 = self.layer4(c3)
        return [c1, c2, c3, c4]


class PVTPyramid(nn.Module):
    """timm's ``pvt_v2_b5`` without its classifier; returns the four stage outputs (NCHW, each after
    its stage's LayerNorm, as the releases' ``pvt_v2_b5.forward_features`` returns them)."""

    def __init__(self, name: str = "pvt_v2_b5", weights: str | None = None):
        super().__init__()
        import timm

        self.net = timm.create_model(name, pretrained=False, num_classes=0)
        self.channels = CHANNELS[name]
        if weights == "imagenet":
            raise UserError(f"backbone_weights=imagenet is for ResNets; for {name} pass the path of pvt_v2_b5.pth "
                            "(the releases' file, or timm's state dict)")
        if weights is not None:
            state = load_state_dict_file(weights, f"{name} weights")
            if any(k.startswith("patch_embed1.") for k in state):  # the releases' key names
                state = pvt_release_to_timm(state)
            state = {k: v for k, v in state.items() if not k.startswith("head.")}
            check_keys(weights, state, set(self.net.state_dict()))
            load_into(self.net, state, weights)

    def forward(self, image: Tensor) -> list[Tensor]:
        return self.net.forward_intermediates(image, indices=4, intermediates_only=True)


def pvt_release_name(key: str, prefix: str = "") -> str | None:
    """timm's name for one of the releases' PVT-v2 keys (``PREFIXpatch_embed{i}``, ``block{i}.N`` with
    ``mlp.dwconv.dwconv``, ``norm{i}`` -> ``patch_embed`` / ``stages.{i-1}.downsample``,
    ``stages.{i-1}.blocks.N``, ``stages.{i-1}.norm``); None for a key outside the backbone (``head.*``)."""
    match = re.fullmatch(rf"{re.escape(prefix)}(patch_embed|block|norm)(\d)\.(.*)", key)
    if not match:
        return None
    kind, stage, rest = match.group(1), int(match.group(2)) - 1, match.group(3)
    if kind == "patch_embed":
        return ("patch_embed." if stage == 0 else f"stages.{stage}.downsample.") + rest
    if kind == "block":
        return f"stages.{stage}.blocks.{rest.replace('mlp.dwconv.dwconv.', 'mlp.dwconv.')}"
    return f"stages.{stage}.norm.{rest}"


def pvt_release_to_timm(state: dict[str, Tensor], prefix: str = "") -> dict[str, Tensor]:
    """A state dict in the releases' PVT-v2 names -> timm's names (keys outside the backbone left out)."""
    return {new: value for key, value in state.items() if (new := pvt_release_name(key, prefix)) is not None}


def build_backbone(name: str, weights: str | None = None) -> nn.Module:
    """A pyramid with ``.channels`` whose forward returns the four stage maps."""
    if name.startswith("pvt"):
        return PVTPyramid(name, weights)
    return ResNetPyramid(name, weights)


def _load_state_dict(name: str, weights: str, net: nn.Module) -> dict[str, Tensor]:
    if weights == "imagenet":
        entry = IMAGENET_WEIGHTS[name]
        try:
            with contextlib.redirect_stdout(sys.stderr):  # torch.hub announces downloads on stdout
                return entry.get_state_dict(progress=False)
        except Exception as exc:  # offline and not cached: say where it must be put
            cache = Path(torch.hub.get_dir()) / "checkpoints" / entry.url.rsplit("/", 1)[-1]
            raise UserError(
                f"ImageNet weights for {name} are not in the torch cache ({cache}) and could not be downloaded "
                f"({type(exc).__name__}); copy the file there or pass a state-dict path"
            ) from None
    state = load_state_dict_file(weights, f"{name} weights")
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    expected = {k for k in net.state_dict() if not k.startswith("fc.")}
    check_keys(weights, state, expected)
    state.update({k: v for k, v in net.state_dict().items() if k.startswith("fc.")})
    return state


def load_state_dict_file(path: str, what: str) -> dict[str, Tensor]:
    """A state dict from ``path`` (bare, under 'state_dict'/'model', or with a ``module.`` prefix),
    read without running code (avsbench_kit.weights.read_weights); UserError if unusable."""
    from avsbench_kit.weights import read_weights, unwrap

    return unwrap(read_weights(path, what), path, what)


def check_keys(path: str, state: dict[str, Tensor], expected: set[str]) -> None:
    missing = sorted(expected - set(state))
    extra = sorted(set(state) - expected)
    if missing or extra:
        detail = (f"missing {missing[:3]}" if missing else "") + (" " if missing and extra else "") + (f"unexpected {extra[:3]}" if extra else "")
        raise UserError(f"{path}: keys do not match the network ({detail})")


def load_into(module: nn.Module, state: dict[str, Tensor], path: str) -> None:
    """``module.load_state_dict(state)``, with a shape mismatch reported as a UserError."""
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        first = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line), "shapes differ")
        raise UserError(f"{path}: does not fit the network ({first})") from None
