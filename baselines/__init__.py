"""Re-implementations of the baselines AVESFormer is compared with; importing registers them."""

if __name__ != "avskit.baselines":  # one copy of each module: a second would register every part twice
    raise ImportError(f"import avskit.baselines, not {__name__} (the folder is installed inside the avskit package)")
from avskit.baselines import (  # noqa: F401
    audio_token_attention,
    avsbench,
    avsegformer,
    catr,
    cavp,
    channel_attention,
    ecmvae,
    query_generators,
    released,
    tpavi,
)
