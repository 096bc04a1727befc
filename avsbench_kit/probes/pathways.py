"""The audio's paths to the mask, measured by patching (issue #28 item 4).

A model declares its *audio paths*: the named tensors through which audio-derived information enters
the rest of the network (``audio_paths``, a tuple of ``avsbench_kit.models.base.AudioPath``). Each is one argument of one
method of one sub-module, as that method receives it. A path is patched by running the model once on
the donor's audio (another frame's, or silence) with the same image, keeping the tensor each path
received, then running it on the frame's own audio with only that path's tensor replaced by the
donor's. When every declared path is patched at once, the output must equal the output for the
donor's audio: otherwise a route from the audio to the mask is not declared (:func:`completeness`).
"""

from __future__ import annotations

import inspect
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import Tensor, nn

from avsbench_kit.errors import UserError

_ABSENT = object()


def declared_paths(model: nn.Module) -> tuple:
    """The model's audio paths, or a UserError saying it declares none."""
    paths = tuple(getattr(model, "audio_paths", ()))
    if not paths:
        raise UserError(f"{type(model).__name__} declares no audio paths: give its class an `audio_paths` tuple of "
                        "avsbench_kit.models.base.AudioPath (module, argument) to measure them")
    return paths


def _argument(bound: inspect.BoundArguments, path) -> str:
    names = list(bound.signature.parameters)
    return names[path.arg] if isinstance(path.arg, int) else path.arg


@contextmanager
def intercept(model: nn.Module, paths: tuple, kept: dict[str, list[Tensor]] | None = None,
              replace: dict[str, list[Tensor]] | None = None) -> Iterator[None]:
    """While open, every call of each path's method hands its argument to ``kept[path.name]`` (in call
    order) and, for the paths in ``replace``, receives ``replace[path.name][i]`` on its i-th call instead.
    The methods are wrapped on the module instances (one wrapper per method, however many of its
    arguments are paths) and restored on exit."""
    groups: dict[tuple[str, str], list] = {}
    for path in paths:
        groups.setdefault((path.module, path.method), []).append(path)
    restore: list[tuple[nn.Module, str, object]] = []
    try:
        for (module_name, method), group in groups.items():
            module = model.get_submodule(module_name)
            original = getattr(module, method)
            signature = inspect.signature(original)
            calls = [0]

            def patched(*args, _group=group, _original=original, _signature=signature, _calls=calls, **kwargs):
                bound = _signature.bind(*args, **kwargs)
                for path in _group:
                    name = _argument(bound, path)
                    if name not in bound.arguments:
                        raise UserError(f"audio path {path.name!r}: {path.module or 'the model'}.{path.method} got no argument {path.arg!r}")
                    if kept is not None:
                        kept.setdefault(path.name, []).append(bound.arguments[name])
                    if replace is not None and path.name in replace:
                        bound.arguments[name] = replace[path.name][_calls[0]]
                _calls[0] += 1
                return _original(*bound.args, **bound.kwargs)

            restore.append((module, method, vars(module).get(method, _ABSENT)))
            setattr(module, method, patched)
        yield
    finally:
        for module, method, previous in reversed(restore):
            if previous is _ABSENT:
                delattr(module, method)
            else:
                setattr(module, method, previous)


def run(model: nn.Module, image: Tensor, audio: Tensor, paths: tuple = (),
        replace: dict[str, list[Tensor]] | None = None) -> tuple[Tensor, dict[str, list[Tensor]]]:
    """One forward pass with the paths watched (and those in ``replace`` patched): the output, and
    what each path received."""
    kept: dict[str, list[Tensor]] = {}
    with torch.inference_mode(), intercept(model, paths, kept, replace):
        output = model(image, audio)
    return output, kept


def completeness(patched_all: Tensor, donor_output: Tensor) -> float:
    """The largest difference between patching every declared path and swapping the whole audio."""
    return float((patched_all.float() - donor_output.float()).abs().max())
