"""VGGish (Hershey et al., 2017), the audio backbone of every AVS model here.

Input: log-mel examples ``[B, 1, 96, 64]`` (0.96 s each; see avsbench_kit.audio). Output: the
128-d embedding ``[B, 128]``, with the ReLU after the last FC as the AVS repositories keep it and
PCA post-processing off. 72,141,184 parameters. Weights come from a ``vggish-10086976.pth``-style
state dict at a path the user gives; without one the network runs with random weights and says so.
"""

from __future__ import annotations

import warnings

from torch import Tensor, nn

from avsbench_kit.models.backbones import check_keys, load_into, load_state_dict_file

VGGISH_PARAMS = 72_141_184
RANDOM_WEIGHTS_NOTICE = (
    "VGGish is running with RANDOM weights: audio features are meaningless until you pass "
    "--set vggish_weights=PATH/vggish-10086976.pth (nothing can be downloaded here)"
)


class RandomWeightsWarning(UserWarning):
    """A pretrained network is running with random weights."""


def vggish_features() -> nn.Sequential:
    """VGGish's convolutional layers: ``[B, 1, 96, 64]`` -> ``[B, 512, 6, 4]`` (CAVP's audio network has them too)."""
    layers: list[nn.Module] = []
    cin = 1
    for item in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M"):
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, int(item), 3, padding=1), nn.ReLU(inplace=True)]
            cin = int(item)
    return nn.Sequential(*layers)


class VGGish(nn.Module):
    def __init__(self, weights: str | None = None, frozen: bool = True):
        super().__init__()
        self.features = vggish_features()
        self.embeddings = nn.Sequential(
            nn.Linear(512 * 4 * 6, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, 128), nn.ReLU(inplace=True),
        )
        self.pretrained = weights is not None
        if weights is not None:
            state = load_state_dict_file(weights, "VGGish weights")
            state = {k: v for k, v in state.items() if not k.startswith("pproc.")}  # PCA is off
            check_keys(weights, state, set(self.state_dict()))
            load_into(self, state, weights)
        else:
            self._init_random()
            warnings.warn(RANDOM_WEIGHTS_NOTICE, RandomWeightsWarning, stacklevel=2)
        if frozen:
            self.requires_grad_(False)

    def _init_random(self) -> None:
        """He initialisation, so random features keep their scale through the nine ReLU layers.

        PyTorch's default initialisation shrinks the signal about 400x over this depth (embedding
        norm ~0.08 on log-mel input), which leaves a model trained on top almost no audio signal.
        """
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def forward(self, log_mel: Tensor) -> Tensor:
        x = self.features(log_mel)  # [B, 512, 6, 4]
        # the TF original flattens channels-last: [B, 6, 4, 512]
        x = x.permute(0, 2, 3, 1).flatten(1)
        return self.embeddings(x)
