"""A researcher's own model, named by an import reference instead of a zoo name.

``path/to/file.py:factory`` or ``package.module:factory``, optionally with keyword arguments for
the factory: ``file.py:build[dim=128,heads=4]``. The factory returns an ``nn.Module`` whose
forward takes ``(image [B,3,H,W], audio [B,1,96,64])``, or ``(module, example_inputs)`` where
``example_inputs(batch, size)`` returns the positional inputs of that module's forward (another
audio convention, say ``[B, 128]`` features). The forward returns a tensor, or a tuple, list or
dict whose first tensor is the logits (the released AVSegFormer returns ``(pred, mask_feature)``).

References are resolved here, once, into a :class:`ForeignSpec`: the reference, the factory's
keywords and the SHA-256 of the file (or of the module's source), so records of a foreign model
resume like a zoo model's and reports name exactly what was measured. Every failure on the way
(missing file, failing import, missing or uncallable factory, a factory that returns no module,
a forward that fails on its inputs) is a one-line :class:`UserError`.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib
import importlib.util
import inspect
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from torch import Tensor, nn

from avsbench_kit.errors import UserError
from avsbench_kit.inputs import default_inputs

REFERENCE = re.compile(r"\s*(?P<target>[^\[\]\s]+?):(?P<factory>[A-Za-z_][\w.]*)\s*(?:\[(?P<kwargs>.*)\])?\s*")


def is_reference(text: str) -> bool:
    """Zoo names and labels never contain ':'; a reference always does."""
    return REFERENCE.fullmatch(text) is not None


@dataclass(frozen=True)
class ForeignSpec:
    reference: str  # target:factory as given
    kwargs: tuple[tuple[str, Any], ...] = ()
    sha256: str = ""
    family: str = "foreign"

    @property
    def name(self) -> str:
        return self.reference

    @property
    def label(self) -> str:
        if not self.kwargs:
            return self.reference
        return self.reference + "[" + ",".join(f"{k}={v}" for k, v in self.kwargs) + "]"

    def changes(self) -> dict[str, Any]:
        return dict(self.kwargs)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.reference, "family": self.family, "reference": self.reference, "kwargs": dict(self.kwargs),
                "sha256": self.sha256}


def _literal(text: str) -> Any:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare word is a string
    return tuple(value) if isinstance(value, list) else value  # specs are hashable


def _split_kwargs(text: str | None, label: str) -> tuple[tuple[str, Any], ...]:
    items = []
    for item in (text or "").split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise UserError(f"{label}: factory keywords must be key=value, got {item.strip()!r}")
        items.append((key.strip(), _literal(value.strip())))
    return tuple(items)


def _is_file_target(target: str) -> bool:
    return target.endswith(".py") or "/" in target or "\\" in target


def parse_reference(text: str, overrides: dict[str, Any] | None = None) -> ForeignSpec:
    """``file.py:build[k=v]`` -> ForeignSpec (``overrides``, from --set, add factory keywords)."""
    match = REFERENCE.fullmatch(text)
    if not match:
        raise UserError(f"{text!r} is not a model reference like path/to/model.py:build or package.module:build")
    target, factory = match["target"], match["factory"]
    kwargs = dict(_split_kwargs(match["kwargs"], text))
    kwargs.update({k: _literal(str(v)) for k, v in (overrides or {}).items()})
    reference = f"{target}:{factory}"
    return ForeignSpec(reference, tuple(kwargs.items()), _source_hash(target, reference))


def _source_hash(target: str, reference: str) -> str:
    if _is_file_target(target):
        path = Path(target)
        if not path.is_file():
            raise UserError(f"{reference}: no such file {target}")
        return hashlib.sha256(path.read_bytes()).hexdigest()
    module = _import(target, reference)
    try:
        source = inspect.getsource(module)
    except (OSError, TypeError):
        return ""
    return hashlib.sha256(source.encode()).hexdigest()


def _import(target: str, reference: str):
    try:
        if _is_file_target(target):
            path = Path(target).resolve()
            name = "avskit_foreign_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
            if name in sys.modules:
                return sys.modules[name]
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            folder = str(path.parent)
            sys.path.insert(0, folder)  # the file's own folder, so its sibling modules import
            try:
                sys.modules[name] = module
                spec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(name, None)
                raise
            finally:
                if folder in sys.path:
                    sys.path.remove(folder)
            return module
        if "" not in sys.path and "." not in sys.path:
            sys.path.insert(0, "")  # a module of the current folder, as `python -m` would find it
        return importlib.import_module(target)
    except UserError:
        raise
    except (Exception, SystemExit) as exc:
        raise UserError(f"{reference}: importing {target} failed: {type(exc).__name__}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else "(no message)"


def _shapes(inputs: tuple) -> str:
    return ", ".join(f"{list(t.shape)}" if isinstance(t, Tensor) else type(t).__name__ for t in inputs)


def first_tensor(output: Any) -> Tensor | None:
    """The logits in a forward's output: the tensor itself, or the first tensor of a tuple, list or dict."""
    if isinstance(output, Tensor):
        return output
    if isinstance(output, dict):
        output = list(output.values())
    if isinstance(output, (tuple, list)):
        for item in output:
            found = first_tensor(item)
            if found is not None:
                return found
    return None


class ForeignModel(nn.Module):
    """A foreign module behind the zoo's contract: ``model(*inputs) -> logits``.

    ``parts`` are the module's top-level children (the rows of its parameter and runtime
    breakdowns); they are reachable as attributes of this wrapper too (``model.encoder``).
    """

    def __init__(self, module: nn.Module, spec: ForeignSpec, example_inputs: Callable[[int, int], tuple] | None = None):
        super().__init__()
        self.inner = module
        self.reference = spec.label
        self._example_inputs = example_inputs
        self.parts = tuple(name for name, _ in module.named_children())
        self.breakdown_groups: dict[str, tuple[str, ...]] = {}

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            inner = super().__getattr__("inner")
            if name in inner._modules:
                return inner._modules[name]
            raise

    @property
    def audio_paths(self) -> tuple:
        """The module's own ``audio_paths`` (avsbench_kit.models.base.AudioPath), addressed through this wrapper."""
        return tuple(dataclasses.replace(p, module=f"inner.{p.module}" if p.module else "inner") for p in getattr(self.inner, "audio_paths", ()))

    @property
    def custom_inputs(self) -> bool:
        """True when the factory gave its own example_inputs (another input convention)."""
        return self._example_inputs is not None

    def example_inputs(self, batch: int = 1, size: int = 224) -> tuple:
        if self._example_inputs is None:
            return default_inputs(batch, size)
        try:
            inputs = self._example_inputs(batch, size)
        except Exception as exc:
            raise UserError(f"{self.reference}: example_inputs({batch}, {size}) failed: {type(exc).__name__}: {_first_line(exc)}") from None
        return tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)

    def forward(self, *inputs: Any) -> Tensor:
        try:
            output = self.inner(*inputs)
        except UserError:
            raise
        except Exception as exc:
            raise UserError(f"{self.reference}: the forward failed on inputs of shape {_shapes(inputs)}: "
                            f"{type(exc).__name__}: {_first_line(exc)}") from None
        logits = first_tensor(output)
        if logits is None:
            raise UserError(f"{self.reference}: the forward returned {type(output).__name__} with no tensor in it")
        return logits


def build_foreign(spec: ForeignSpec) -> ForeignModel:
    target, factory_name = spec.reference.rsplit(":", 1)
    module = _import(target, spec.reference)
    factory: Any = module
    for part in factory_name.split("."):
        if not hasattr(factory, part):
            raise UserError(f"{spec.reference}: {target} has no {factory_name!r}")
        factory = getattr(factory, part)
    if not callable(factory):
        raise UserError(f"{spec.reference}: {factory_name} is a {type(factory).__name__}, not callable")
    try:
        made = factory(**dict(spec.kwargs))
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"{spec.reference}: {factory_name}({', '.join(f'{k}={v!r}' for k, v in spec.kwargs)}) failed: "
                        f"{type(exc).__name__}: {_first_line(exc)}") from None
    example_inputs = None
    if isinstance(made, (tuple, list)) and len(made) == 2 and isinstance(made[0], nn.Module) and callable(made[1]):
        made, example_inputs = made
    if not isinstance(made, nn.Module):
        raise UserError(f"{spec.reference}: {factory_name} returned {type(made).__name__}, not an nn.Module "
                        "(or a pair (module, example_inputs))")
    return ForeignModel(made, spec, example_inputs)


def public_path(model: nn.Module, path: str) -> str:
    """A module path as the user's own code names it (a ForeignModel's wrapper level left out)."""
    if isinstance(model, ForeignModel):
        return path[len("inner."):] if path.startswith("inner.") else ("" if path == "inner" else path)
    return path


