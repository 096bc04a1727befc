"""avskit's own checkpoints: written atomically, read without running code, resumed only by their run.

A checkpoint holds what training changes (trainable weights, optimizer, schedule, RNG) and the
SHA-256 of the frozen weights the run had (VGGish's 72M parameters are rebuilt from their file or
the run's seed, never stored). Its ``run`` entry is the run's identity (``avsbench_kit.recipe``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from avsbench_kit.errors import UserError
from avsbench_kit.recipe import differences
from avsbench_kit.results import same_spec

CHECKPOINT_FORMAT = "avskit-checkpoint/2"


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically: a reader never sees a half-written checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    torch.save(state, tmp)
    os.replace(tmp, path)


def frozen_parameters(model: nn.Module) -> set[str]:
    """Parameters training never changes (VGGish): a rebuilt model gets them back from their
    weights file, or from the run's seed when they are random, so checkpoints leave them out."""
    return {name for name, p in model.named_parameters() if not p.requires_grad}


def frozen_fingerprint(model: nn.Module) -> str:
    """SHA-256 of the frozen parameters (names, shapes, bytes): proves a rebuilt model got them back."""
    digest = hashlib.sha256()
    for name, p in sorted(model.named_parameters()):
        if not p.requires_grad:
            tensor = p.detach().cpu().contiguous()
            digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
            digest.update(tensor.view(torch.uint8).numpy().data if tensor.numel() else b"")  # the bytes, not a copy of them
    return digest.hexdigest()


def trainable_state(model: nn.Module) -> dict[str, Tensor]:
    """The state dict without the frozen parameters (VGGish's 72M): only what training changes."""
    skip = frozen_parameters(model)
    return {k: v for k, v in model.state_dict().items() if k not in skip}


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint at ``path`` as a dict (``torch.load(weights_only=True)``: reading runs no code)."""
    if not Path(path).is_file():
        raise UserError(f"checkpoint {path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(f"checkpoint {path}: not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise UserError(f"checkpoint {path}: not an avskit checkpoint (no 'model' entry)")
    return state


def load_checkpoint(path: Path, model: nn.Module, state: dict[str, Any] | None = None) -> dict[str, Any]:
    """Load a checkpoint into ``model``; UserError if the file is unreadable or made for another model."""
    state = state if state is not None else read_checkpoint(path)
    frozen = frozen_parameters(model)
    try:
        result = model.load_state_dict(state["model"], strict=False)
    except RuntimeError as exc:
        first = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line), "shapes differ")
        raise UserError(f"checkpoint {path}: does not fit this model ({first}); was it trained with other --set values?") from None
    missing = [k for k in result.missing_keys if k not in frozen]
    if missing or result.unexpected_keys:
        keys = (missing or result.unexpected_keys)[:2]
        raise UserError(f"checkpoint {path}: does not fit this model (keys {keys} differ); was it trained with other --set values?")
    expected = state.get("frozen", {}).get("sha256")
    if expected and not set(state["model"]) & frozen and frozen_fingerprint(model) != expected:
        source = state["frozen"].get("source", "its weights file or seed")
        raise UserError(f"checkpoint {path}: the frozen weights rebuilt here differ from the run's ({source}); "
                        "give the same --set vggish_weights / seed the run had")
    return state


def run_differences(saved: dict[str, Any] | None, run: dict[str, Any]) -> list[str]:
    """What differs between the run a checkpoint was made by and this one, as ``key: saved -> now``."""
    if saved is None:
        return ["the checkpoint does not say which run made it (an older avskit)"]

    def same(key: str, a: Any, b: Any) -> bool:
        return same_spec(a, b) if key == "spec" and isinstance(a, dict) and isinstance(b, dict) else a == b

    return differences(saved, run, same)
