"""Re-implementations of the baselines AVESFormer is compared with; importing registers them."""

if __name__ != "avskit.baselines":  # one copy of each module: a second would register every part twice
    raise ImportError(f"import avskit.baselines, not {__name__} (the folder is installed inside the avskit package)")
from avskit.baselines import audio_token_attention, avsbench, avsegformer, channel_attention, query_generators, released, tpavi  # noqa: F401
