"""Re-implementations of the baselines AVESFormer is compared with; importing registers them."""

from baselines import audio_token_attention, avsbench, avsegformer, channel_attention, query_generators, released, tpavi  # noqa: F401
