"""Registries of swappable parts, filled by decorators (timm's model-registry style).

avsbench_kit registers its own parts (the prompt query generator, cross-attention fusion, the
AVESFormer family); the ``avskit.baselines`` package registers the rest when plugins are loaded.
Plugins are found through the ``avsbench_kit.plugins`` entry-point group, so avsbench_kit never
imports a higher folder at import time; a source checkout that is not installed falls back to
importing ``avskit.baselines`` by name.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Callable, Generic, TypeVar

F = TypeVar("F", bound=Callable)


class Registry(Generic[F]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, F] = {}

    def register(self, name: str) -> Callable[[F], F]:
        def decorate(fn: F) -> F:
            if name in self._items and self._items[name] is not fn:
                raise RuntimeError(f"{self.kind} {name!r} registered twice")
            self._items[name] = fn
            return fn

        return decorate

    def names(self) -> list[str]:
        load_plugins()
        return list(self._items)

    def get(self, name: str) -> F:
        load_plugins()
        try:
            return self._items[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r}; accepted: {', '.join(self._items)}") from None


QUERY_GENERATORS: Registry = Registry("query generator")
FUSIONS: Registry = Registry("fusion")
FAMILIES: Registry = Registry("model family")
# name -> (description, family, detect(keys) -> bool, convert(state, spec) -> avskit.baselines.released.Converted)
WEIGHT_FORMATS: Registry = Registry("weights format")

_loaded = False


def load_plugins() -> None:
    """Import the project's own parts and every registered plugin package, once."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    importlib.import_module("avsbench_kit.models")
    found = entry_points(group="avsbench_kit.plugins")
    for ep in found:
        ep.load()
    if not any(ep.name == "baselines" for ep in found):
        try:
            importlib.import_module("avskit.baselines")
        except ModuleNotFoundError:
            pass
