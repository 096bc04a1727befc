"""Whole-model weights: ``--set weights=FILE`` / ``build_model(name, weights=FILE)``.

A file is read with ``torch.load(weights_only=True)`` (reading runs no code), unwrapped (a
``{"state_dict": ...}`` or ``{"model": ...}`` wrapper, a ``module.`` prefix) and recognised by its
keys:

- ``avskit checkpoint``: written by ``avskit train`` (trainable state + the frozen weights' SHA-256;
  the frozen VGGish comes back from ``vggish_weights`` or the run's seed and is checked);
- ``avskit state dict``: ``torch.save(model.state_dict())`` of the same avskit model;
- a released format registered in :data:`avsbench_kit.registry.WEIGHT_FORMATS` (the ``baselines``
  package registers the AVSegFormer and AVSBench releases, with their key maps).

Anything else, or a file that does not fit the model (missing, unexpected or wrongly shaped keys,
another family or backbone), is a one-line :class:`UserError` naming the file and the first keys
that do not fit. What was loaded, dropped as unused and filled is returned as a
:class:`WeightsReport` (also kept on the model as ``model.weights_report``).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from avsbench_kit.errors import UserError
from avsbench_kit.files import file_sha256
from avsbench_kit.registry import WEIGHT_FORMATS
from avsbench_kit.spec import ZOO


@dataclass
class WeightsReport:
    path: str
    sha256: str
    format: str
    description: str
    loaded: int  # tensors loaded into the model
    dropped: list[str] = field(default_factory=list)  # in the file, never used by the forward
    filled: list[str] = field(default_factory=list)  # not in the file, given a neutral value
    kept: list[str] = field(default_factory=list)  # model prefixes the file does not cover (kept as built)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def dropped_groups(self) -> dict[str, int]:
        """Dropped tensors counted by module (the key up to its second dot): what the forward never uses."""
        groups: dict[str, int] = {}
        for key in self.dropped:
            head = ".".join(key.split(".")[:2])
            groups[head] = groups.get(head, 0) + 1
        return groups

    def summary(self) -> str:
        text = f"{self.description}: {self.loaded} tensors loaded, {len(self.dropped)} dropped as unused"
        if self.dropped:
            text += " (" + ", ".join(f"{k} {n}" for k, n in self.dropped_groups().items()) + ")"
        if self.filled:
            text += f", {len(self.filled)} filled with zeros"
        if self.kept:
            text += f"; not in the file, kept as built: {', '.join(self.kept)}"
        return text



def read_weights(path: str, what: str = "weights") -> Any:
    """The object in ``path``, read without running code; UserError (one line, starting with
    ``what`` and the path) when it cannot be. Every weights file avskit reads comes through here."""
    file = Path(path)
    if not file.is_file():
        raise UserError(f"{what} {path}: " + ("a folder, not a file" if file.is_dir() else "no such file"))
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:
        text = str(exc)
        wanted = re.search(r"GLOBAL ([\w.]+)", text)  # a pickle naming a function or class to call
        if wanted:
            raise UserError(f"{what} {path}: refused, it asks to run code ({wanted.group(1)}); only tensors are read") from None
        raise UserError(f"{what} {path}: not a readable PyTorch state dict ({type(exc).__name__}; truncated, or not a checkpoint?)") from None


def unwrap(obj: Any, path: str, what: str = "weights") -> dict[str, Tensor]:
    """A flat ``name -> tensor`` dict from a bare state dict or a ``state_dict``/``model`` wrapper,
    without a common ``module.`` prefix."""
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, Tensor) for v in obj.values()):
        raise UserError(f"{what} {path}: does not hold a state dict of tensors")
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def _first(keys, n: int = 3) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:n]) + (f" (+{len(keys) - n} more)" if len(keys) > n else "")


def _file_backbone(keys: set[str]) -> str | None:
    if any("patch_embed1." in k or k.startswith(("visual_backbone.net.", "encoder_backbone.")) for k in keys):
        return "pvt_v2_b5"
    if any(re.search(r"(^|\.)layer4(_1)?\.", k) for k in keys):
        return "resnet"
    return None


def _check_backbone(path: str, keys: set[str], spec) -> None:
    found = _file_backbone(keys)
    if found is None:
        return
    if (found == "pvt_v2_b5") != spec.backbone.startswith("pvt"):
        same = [n for n, s in ZOO.items() if s.family == spec.family and s.backbone.startswith("pvt") == (found == "pvt_v2_b5")]
        other = " / ".join(same) if same else "a model of that backbone"
        raise UserError(f"weights {path}: the file's backbone is {'PVT-v2' if found == 'pvt_v2_b5' else 'a ResNet'}, "
                        f"{_plain(spec)} uses {spec.backbone} (use {other})")


def _mismatch(path: str, what: str, label: str, missing, unexpected, shapes: list[str]) -> UserError:
    parts = []
    if missing:
        parts.append(f"missing {_first(missing)}")
    if unexpected:
        parts.append(f"unexpected {_first(unexpected)}")
    if shapes:
        parts.append(f"wrong shape {shapes[0]}" + (f" (+{len(shapes) - 1} more)" if len(shapes) > 1 else ""))
    hint = ""
    if any("classifier" in s or "output_head" in s for s in shapes):
        hint = "; is it an AVSS (71-class) file? then --set classes=71"
    elif first := next((s for s in shapes if s.startswith("temporal_encoder.layers.") and ".ffn.net.0.weight" in s), None):
        width = first.split("(")[1].split(",")[0]  # "KEY: (2048, 256) in the file, ..."
        hint = f"; the file's temporal feed-forward width is {width}: --set temporal_ffn={width}"
    return UserError(f"weights {path}: {what} does not fit {label}: {'; '.join(parts)}{hint}")


def _load_state(model: nn.Module, path: str, what: str, label: str, state: dict[str, Tensor],
                extra: list[str] = (), allowed_missing: tuple[str, ...] = ()) -> int:
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.startswith(allowed_missing)]
    unexpected = list(extra) + [k for k in state if k not in own]
    shapes = [f"{k}: {tuple(v.shape)} in the file, {tuple(own[k].shape)} here" for k, v in state.items()
              if k in own and tuple(v.shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        raise _mismatch(path, what, label, missing, unexpected, shapes)
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=False)
    return len(state)


def checkpoint_seed(obj: Any) -> int | None:
    """The seed of the run an avskit checkpoint came from (its random frozen weights come back from it)."""
    if isinstance(obj, dict) and str(obj.get("format", "")).startswith("avskit-checkpoint"):
        return int((obj.get("run") or {}).get("seed", 0))
    return None


def load_weights(model: nn.Module, spec, obj: Any = None) -> WeightsReport:
    """Load ``spec.weights`` into ``model`` (built from ``spec``); UserError if the file does not fit.
    ``obj`` is the file's content when the caller has read it already (:func:`read_weights`)."""
    path = str(spec.weights)
    obj = read_weights(path) if obj is None else obj
    sha = file_sha256(path)
    if isinstance(obj, dict) and str(obj.get("format", "")).startswith("avskit-checkpoint"):
        return _load_avskit_checkpoint(model, spec, path, obj, sha)
    state = unwrap(obj, path)
    keys = set(state)
    own = model.state_dict()
    if keys & set(own) and not any(entry[2](keys) for _, entry in _formats()):
        _check_backbone(path, keys, spec)
        frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
        loaded = _load_state(model, path, "the avskit state dict", _plain(spec), state, allowed_missing=tuple(frozen))
        if frozen and not keys & frozen:
            kept = ["audio_backbone (frozen VGGish, from vggish_weights)"]
            _mark_pretrained(model, bool(spec.vggish_weights))
        else:
            kept = []
            _mark_pretrained(model, True)
        return WeightsReport(path, sha, "avskit-state-dict", "avskit state dict", loaded, kept=kept)
    found = released_format(path, keys, spec)
    if found is not None:
        name, (description, family, detect, convert) = found
        try:
            converted = convert(state, spec)
        except KeyError as exc:
            raise UserError(f"weights {path}: {description} checkpoint without {exc.args[0]}; the file is incomplete") from None
        allowed = ("audio_backbone.",) if not any(k.startswith("audio_backbone.") for k in converted.state) else ()
        loaded = _load_state(model, path, f"the {description} checkpoint", _plain(spec), converted.state, converted.unread, allowed)
        kept = ["audio_backbone (VGGish: the release keeps it apart; --set vggish_weights=vggish-10086976.pth)"] if allowed else []
        _mark_pretrained(model, bool(spec.vggish_weights) if allowed else True)
        return WeightsReport(path, sha, name, description, loaded, converted.dropped, converted.filled, kept)
    raise UserError(f"weights {path}: not a format avskit knows (first keys: {_first(keys)}); expected an avskit checkpoint "
                    f"or state dict, or a released checkpoint ({', '.join(entry[0] for _, entry in _formats())})")


def released_format(path: str, keys: set[str], spec) -> tuple[str, tuple] | None:
    """The released format whose keys these are, checked against the model: UserError for a file of
    another family or backbone; None when no released format matches."""
    for name, entry in _formats():
        description, family, detect = entry[:3]
        if not detect(keys):
            continue
        if family != spec.family:
            examples = [n for n, s in ZOO.items() if s.family == family]
            raise UserError(f"weights {path}: is a checkpoint of the {description}; {_plain(spec)} belongs to the {spec.family} family "
                            f"(the file fits {', '.join(examples)})")
        _check_backbone(path, keys, spec)
        return name, entry
    return None


def check_before_build(spec, content: Any) -> None:
    """The checks a weights file can fail before the model is built (family, backbone), so a wrong
    file costs no build; what needs the model (shapes) is checked when loading."""
    if isinstance(content, dict) and str(content.get("format", "")).startswith("avskit-checkpoint"):
        return
    state = unwrap(content, str(spec.weights))
    if any(entry[2](set(state)) for _, entry in _formats()):
        released_format(str(spec.weights), set(state), spec)


def _plain(spec) -> str:
    """The model's label without the weights file it is being loaded from (messages name the file already)."""
    import dataclasses

    return dataclasses.replace(spec, weights=None).label


def _formats():
    return [(name, WEIGHT_FORMATS.get(name)) for name in WEIGHT_FORMATS.names()]


def _mark_pretrained(model: nn.Module, pretrained: bool) -> None:
    audio = getattr(model, "audio_backbone", None)
    if audio is not None and hasattr(audio, "pretrained"):
        audio.pretrained = pretrained


def _load_avskit_checkpoint(model: nn.Module, spec, path: str, obj: dict, sha: str) -> WeightsReport:
    from avsbench_kit.checkpoints import load_checkpoint
    from avsbench_kit.spec import WEIGHT_FIELDS, ModelSpec

    saved = (obj.get("run") or {}).get("spec")
    if saved is not None:
        try:
            trained = ModelSpec(**saved)
        except TypeError:
            trained = None
        if trained is not None:
            differ = [f"{k}: {getattr(trained, k)!r} there, {getattr(spec, k)!r} here" for k in saved
                      if k not in WEIGHT_FIELDS + ("name",) and getattr(trained, k) != getattr(spec, k, None)]
            if differ:
                raise UserError(f"weights {path}: an avskit checkpoint of {trained.label}, not of {_plain(spec)} ({'; '.join(differ[:3])})")
    load_checkpoint(Path(path), model, obj)
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    _mark_pretrained(model, bool(spec.vggish_weights))
    kept = ["audio_backbone (frozen; checked against the run's SHA-256)"] if frozen else []
    return WeightsReport(path, sha, "avskit-checkpoint", f"avskit checkpoint (step {obj.get('step', '?')})", len(obj["model"]), kept=kept)
