"""What every zoo model shares: the ``model(image, audio) -> logits`` contract and its input checks."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from avsbench_kit.errors import UserError

AUDIO_SHAPE = (1, 96, 64)  # one VGGish log-mel example: 96 frames x 64 mel bands


def check_inputs(image: Tensor, audio: Tensor) -> None:
    """UserError unless image is ``[B, 3, H, W]`` (H, W multiples of 32) and audio ``[B, 1, 96, 64]``."""
    if image.dim() != 4 or image.shape[1] != 3:
        raise UserError(f"image must be [B, 3, H, W], got {list(image.shape)}")
    h, w = image.shape[-2:]
    if h < 32 or w < 32 or h % 32 or w % 32:
        raise UserError(f"image height and width must be multiples of 32 (e.g. 224), got {h}x{w}")
    if audio.dim() != 4 or tuple(audio.shape[1:]) != AUDIO_SHAPE:
        raise UserError(f"audio must be VGGish log-mel examples [B, 1, 96, 64], got {list(audio.shape)}")
    if audio.shape[0] != image.shape[0]:
        raise UserError(f"image batch {image.shape[0]} and audio batch {audio.shape[0]} differ (one 0.96 s example per frame)")


@dataclass(frozen=True)
class AudioPath:
    """One route of the audio: argument ``arg`` (a position after ``self``, or a keyword) of
    ``module``'s ``method`` (the sub-module's dotted name; "" is the model itself)."""

    name: str
    module: str
    arg: int | str
    method: str = "forward"


class AVSModel(nn.Module):
    """Base of the zoo's models: ``forward(image [B,3,H,W], audio [B,1,96,64]) -> logits [B,classes,H,W]``.

    ``parts`` names the model's natural top-level parts in data-flow order (the rows of a
    parameter or runtime breakdown); ``breakdown_groups`` gathers modules spread over the tree
    (every fusion sub-layer) into one more row. ``audio_paths`` names the tensors through which
    audio-derived information enters the rest of the network (`avskit pathways` patches each).
    """

    parts: tuple[str, ...] = ()
    breakdown_groups: dict[str, tuple[str, ...]] = {}  # extra breakdown rows: name -> module path patterns
    audio_paths: tuple[AudioPath, ...] = ()

    def forward(self, image: Tensor, audio: Tensor) -> Tensor:
        check_inputs(image, audio)
        return self.segment(image, audio)

    def segment(self, image: Tensor, audio: Tensor) -> Tensor:
        raise NotImplementedError
