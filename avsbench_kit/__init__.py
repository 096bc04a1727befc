"""avsbench_kit: AVESFormer and the AVS baselines in the real-time setting (T=1), measured honestly."""

from avsbench_kit.errors import UserError
from avsbench_kit.spec import ZOO, ModelSpec, make_spec

__version__ = "0.1.0"
__all__ = ["UserError", "ModelSpec", "ZOO", "make_spec", "build_model", "build_from_spec", "list_models"]
_FROM_ZOO = ("build_model", "build_from_spec", "list_models")


def __getattr__(name: str):
    """The builders import torch and every model family: loaded on first use, so that a process that
    only reads or writes records (avsbench_kit.results, the launcher's bookkeeping) starts in a blink."""
    if name in _FROM_ZOO:
        from avsbench_kit import zoo

        return getattr(zoo, name)
    raise AttributeError(f"module 'avsbench_kit' has no attribute {name!r}")
