"""One attention site's map supervised with the sounding object's mask: the localisation scores'
positive control. A model trained so must have a map that points at the object; if the scores
then read chance, the instrument is blind, not the models.

The option reads ``SITE[:WEIGHT[:QUERY]]``: a site name or glob (the last call of a forward that
matches it), the loss's weight (1), and which query's map (0). One query, not all, by default: in a
pixel-to-query softmax every pixel's weights sum to 1 over the queries, so all the queries' maps
cannot concentrate on the object at once; one of them can, the background's weight going to the rest.
The loss is the Dice loss between that map (over its own maximum, upsampled bilinearly to the mask)
and the mask of the sounding object(s).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from avsbench_kit.errors import UserError
from avsbench_kit.losses import dice_loss
from avsbench_kit.nn.attention import add_observer, remove_observer
from avsbench_kit.probes.maps import query_maps


@dataclass(frozen=True)
class Supervision:
    site: str
    weight: float = 1.0
    query: int = 0

    @classmethod
    def parse(cls, text: str) -> "Supervision":
        parts = str(text).split(":")
        try:
            site, weight, query = parts[0], float(parts[1]) if len(parts) > 1 else 1.0, int(parts[2]) if len(parts) > 2 else 0
        except ValueError:
            site = ""
        if not site or len(parts) > 3 or weight <= 0 or query < 0:
            raise UserError(f"--supervise-attention {text!r}: write SITE[:WEIGHT[:QUERY]], e.g. 'decoder.stages.2.layers.1.fusion*:1.0:0'")
        return cls(site, weight, query)


class SupervisedSite:
    """While entered, keeps the supervised site's weights of each forward (in the autograd graph);
    :meth:`loss` turns the last ones into the weighted Dice loss against the masks."""

    def __init__(self, model: nn.Module, supervision: Supervision):
        self.supervision, self.weights = supervision, None
        declared = [(p, o) for p, o in getattr(model, "audio_visual_sites", ()) if fnmatch.fnmatch(supervision.site, p)]
        if not declared:
            sites = ", ".join(p for p, _ in getattr(model, "audio_visual_sites", ())) or "none"
            raise UserError(f"--supervise-attention {supervision.site!r} is not one of the model's audio-to-visual sites ({sites})")
        self.orientation = declared[0][1]

    def _seen(self, site: str, kind: str, weights: Tensor) -> None:
        if fnmatch.fnmatch(site, self.supervision.site):
            self.weights = weights

    def __enter__(self) -> "SupervisedSite":
        self.weights = None
        add_observer(self._seen)
        return self

    def __exit__(self, *exc) -> None:
        remove_observer(self._seen)

    def loss(self, masks: Tensor) -> Tensor:
        """``masks [B, H, W]`` (0/1, or class indices: any class) -> the weighted loss of the last forward."""
        if self.weights is None:
            raise UserError(f"--supervise-attention {self.supervision.site!r}: no attention call of the model matched it")
        maps = query_maps(self.weights, self.orientation)
        if isinstance(maps, str):
            raise UserError(f"--supervise-attention {self.supervision.site!r}: {maps}")
        if self.supervision.query >= maps.shape[1]:
            raise UserError(f"--supervise-attention: the site has {maps.shape[1]} query maps, not query {self.supervision.query}")
        chosen = maps[:, self.supervision.query]
        chosen = chosen / chosen.flatten(1).amax(1).clamp_min(1e-12)[:, None, None]
        chosen = F.interpolate(chosen[:, None], size=masks.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
        return self.supervision.weight * dice_loss(chosen, (masks > 0).to(chosen.dtype))
