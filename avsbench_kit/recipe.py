"""The training recipe and a run's identity: every training default lives here, and nowhere else.

``avskit train``, ``compare --train``, ``report --train`` and the launcher's jobs all start from
:data:`DEFAULT` (or a named preset such as ``quick``) and override only what the user gave. The
default is the ablation recipe measured in docs/training.md: avesformer-r18-sized runs on the
synthetic benchmark at 64x64, 3000 videos, 600 steps of 8 at lr 2e-4 after a 30-step warmup, a
validation point every 100 steps. The paper trains at 224x224 on AVSBench: give ``--size 224``.

A run's identity (:func:`run_identity`) is what its result depends on besides the model: data,
frame size, videos, steps, batch, lr, warmup, weight decay, seed, audio-blind. Records carry it in
their provenance, checkpoints in their ``run`` entry, the launcher hashes it into a run id and the
tables group runs by it less the seed. A key a record was written without (it predates the key)
reads as the value every run had then (:data:`ABSENT`), so records made before stay matched.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

SYNTHETIC_PREFIX = "synthetic:"


@dataclass(frozen=True)
class Recipe:
    size: int = 64  # frame height and width
    videos: int = 3000  # synthetic data only: videos made (70/15/15 train/val/test)
    steps: int = 600  # optimizer steps
    batch: int = 8  # frames per step
    lr: float = 2e-4  # AdamW, polynomial decay (power 0.9)
    warmup: int = 30  # linear learning-rate warmup steps before the decay
    weight_decay: float = 0.01
    val_every: int = 100  # the validation curve: J every N steps and at the end (0: none); not part of the identity
    checkpoint_every: int = 50  # not part of the identity
    test_videos: int | None = None  # synthetic only: test on the test split's first N videos (None: all)
    supervise_attention: str | None = None  # SITE[:WEIGHT[:QUERY]]: the localisation's positive control (probes/supervise.py)


DEFAULT = Recipe()
# quick: sized for `avskit train --quick` (data, training and test) to take about 5 minutes on 2 cores
PRESETS = {"default": DEFAULT, "quick": Recipe(steps=400, warmup=0, val_every=0, checkpoint_every=200, test_videos=150)}

RUN_KEYS = ("data", "size", "videos", "test_videos", "steps", "batch", "lr", "warmup", "weight_decay", "supervise_attention", "seed",
            "audio_blind")
ABSENT = {"test_videos": None, "warmup": 0, "weight_decay": 0.01, "supervise_attention": None}  # how a record or checkpoint without the key reads
RECIPE_KEYS = tuple(k for k in RUN_KEYS if k not in ("seed", "audio_blind"))  # one recipe: its runs differ in seed only


def preset(name: str = "default", **given: Any) -> Recipe:
    """The preset ``name`` with the values the user gave (None: not given) put in."""
    from avsbench_kit.errors import UserError

    if name not in PRESETS:
        raise UserError(f"--recipe {name!r} is not a preset; choose one of: {', '.join(PRESETS)}")
    chosen = dataclasses.replace(PRESETS[name], **{k: v for k, v in given.items() if v is not None})
    if chosen.steps < 1 or chosen.batch < 1 or not chosen.lr > 0:
        raise UserError("--steps, --batch and --lr must be positive")
    if chosen.warmup < 0 or chosen.val_every < 0:
        raise UserError("--warmup and --val-every must be 0 or more")
    check_size(chosen.size)
    if chosen.supervise_attention is not None:
        from avsbench_kit.probes.supervise import Supervision

        Supervision.parse(chosen.supervise_attention)  # malformed: one line now, not after the data is made
    return chosen


def check_size(size: int, option: str = "--size") -> None:
    """Frames are a multiple of 32 (the backbones' output stride), at least 32."""
    from avsbench_kit.errors import UserError

    if size < 32 or size % 32:
        raise UserError(f"{option} must be a multiple of 32 (e.g. 224), got {size}")


def parse_seeds(text: str, option: str = "--seeds") -> tuple[int, ...]:
    """``"0,1,2"`` -> ``(0, 1, 2)``, each seed once, in the order given."""
    from avsbench_kit.errors import UserError

    try:
        seeds = tuple(dict.fromkeys(int(s) for s in str(text).split(",") if s.strip()))
    except ValueError:
        raise UserError(f"{option} {text!r}: give whole numbers, comma-separated, e.g. 0,1,2") from None
    if not seeds or min(seeds) < 0:
        raise UserError(f"{option} {text!r}: give one or more seeds of 0 or more, e.g. 0,1,2")
    return seeds


def run_identity(data: str, recipe: Recipe, seed: int, audio_blind: bool = False) -> dict[str, Any]:
    """What a run's result depends on besides the model. Keys at their :data:`ABSENT` value are left
    out, as the records made before those keys existed have them."""
    synthetic = data.startswith(SYNTHETIC_PREFIX)
    identity = {"data": data, "size": recipe.size, "videos": recipe.videos if synthetic else None,
                "test_videos": recipe.test_videos if synthetic else None, "steps": recipe.steps, "batch": recipe.batch,
                "lr": recipe.lr, "warmup": recipe.warmup, "weight_decay": recipe.weight_decay, "supervise_attention": recipe.supervise_attention,
                "seed": seed, "audio_blind": audio_blind}
    return {k: v for k, v in identity.items() if not (k in ABSENT and v == ABSENT[k])}


def identity_of(provenance: dict[str, Any], keys: tuple[str, ...] = RUN_KEYS) -> dict[str, Any]:
    """A record's (or checkpoint's) identity, with absent keys read as :data:`ABSENT` says."""
    return {k: provenance.get(k, ABSENT.get(k)) for k in keys}


def same_run(provenance: dict[str, Any], identity: dict[str, Any], keys: tuple[str, ...] = RUN_KEYS) -> bool:
    return identity_of(provenance, keys) == identity_of(identity, keys)


def differences(saved: dict[str, Any], now: dict[str, Any], same=lambda key, a, b: a == b) -> list[str]:
    """``key: saved there, now here`` for every key on which two identities differ (absent keys read
    as :data:`ABSENT`); ``same`` compares one key's values (e.g. specs, whose new fields default)."""
    keys = sorted(set(saved) | set(now))
    got = {k: (saved.get(k, ABSENT.get(k)), now.get(k, ABSENT.get(k))) for k in keys}
    return [f"{k}: {a!r} there, {b!r} here" for k, (a, b) in got.items() if not same(k, a, b)]


def runs_of(records: list[dict], spec: dict, identity: dict[str, Any], metric: str | None = None) -> list[dict]:
    """The ``train`` records of ``spec`` made by the run ``identity``, oldest first (the store's matching
    for training runs: resume, sweeps and tables all find a run this way)."""
    from avsbench_kit.results import matching

    return [r for r in matching(records, "train", spec, metric=metric) if same_run(r["provenance"], identity)]
