"""Models of avsbench_kit; importing this registers AVESFormer and its own parts."""

from avsbench_kit.models import avesformer, fusion, query_generators  # noqa: F401  (registration)
from avsbench_kit.models.avesformer import AVESFormer
from avsbench_kit.models.base import AVSModel, check_inputs
from avsbench_kit.models.vggish import VGGish

__all__ = ["AVESFormer", "AVSModel", "VGGish", "check_inputs"]
