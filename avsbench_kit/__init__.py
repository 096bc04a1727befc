"""avsbench_kit: AVESFormer and the AVS baselines in the real-time setting (T=1), measured honestly."""

from avsbench_kit.errors import UserError
from avsbench_kit.spec import ZOO, ModelSpec, make_spec
from avsbench_kit.zoo import build_from_spec, build_model, list_models

__version__ = "0.1.0"
__all__ = ["UserError", "ModelSpec", "ZOO", "make_spec", "build_model", "build_from_spec", "list_models"]
