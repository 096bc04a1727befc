"""Visual backbones: torchvision ResNets as feature pyramids (strides 4, 8, 16, 32).

Weights are an explicit, optional argument, as in torchvision's builders: ``None`` (random),
``"imagenet"`` (torchvision's ImageNet weights, from the torch cache when offline) or the path of a
state dict (torchvision's key names; ``fc.*`` is ignored).
"""

from __future__ import annotations

import contextlib
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
CHANNELS = {"resnet18": (64, 128, 256, 512), "resnet50": (256, 512, 1024, 2048)}


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
    """A state dict from ``path`` (a bare dict, or one under 'state_dict'/'model'); UserError if unusable."""
    file = Path(path)
    if not file.is_file():
        raise UserError(f"{what}: no such file {path}")
    try:
        obj = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(f"{what}: {path} is not a readable PyTorch state dict ({type(exc).__name__})") from None
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise UserError(f"{what}: {path} does not hold a state dict of tensors")
    return obj


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
