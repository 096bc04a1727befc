"""Measured accuracy of the released checkpoints: ``avskit report --eval-data ROOT --weights-dir DIR``.

Each zoo model whose released checkpoint is found in ``DIR`` (under the file names the releases'
scripts write, below) is evaluated on the AVSBench test split of each subset found under ``ROOT``;
the J/F (mIoU/F on AVSS) go to the record store as ``eval`` records whose provenance names the
weights file and its SHA-256. Table 3 and Figure 1 show them as measured, beside the paper's.

File names (searched in DIR, then anywhere below it; the first match in sorted order wins):

- AVSegFormer (vvvb-github/AVSegFormer): ``work_dir/<config>/<SESSION>_best.pth`` with config
  ``AVSegFormer_res50_s4`` (or ``_ms3``, ``_avss``; ``pvt2`` for PVT-v2) and SESSION ``S4``,
  ``MS3``, ``AVSS`` (``AVSS_miou_best.pth``); a flat ``AVSegFormer_res50_s4.pth`` is accepted too.
- AVSBench (OpenNLPLab/AVSBench): ``<SESSION>_best.pth`` with the session names of its train.sh,
  ``S4_resnet``, ``MS3_pvt``, ... (``AVSS_resnet_miou_best.pth`` on AVSS). Its VGGish is a separate
  ``vggish-10086976.pth``, looked for in DIR as well; without it AVSBench models are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from avsbench_kit.errors import UserError
from avsbench_kit.spec import make_spec

SUBSET_CSV = {"s4": "s4_meta_data.csv", "ms3": "ms3_meta_data.csv", "avss": "metadata.csv"}
SESSION = {"s4": "S4", "ms3": "MS3", "avss": "AVSS"}
VGGISH_FILE = "vggish-10086976.pth"


def released_names(model: str, subset: str) -> list[str]:
    """Relative paths (file names, or a config folder and file) a release writes for ``model`` on ``subset``."""
    best = "_miou_best.pth" if subset == "avss" else "_best.pth"
    if model.startswith("avsegformer"):
        config = f"AVSegFormer_{'pvt2' if model.endswith('pvt') else 'res50'}_{subset}"
        return [f"{config}/{SESSION[subset]}{best}", f"{config}.pth"]
    if model.startswith("avsbench"):
        return [f"{SESSION[subset]}_{'pvt' if model.endswith('pvt') else 'resnet'}{best}"]
    return []


RELEASED_MODELS = ("avsegformer-r50", "avsbench-r50", "avsegformer-pvt", "avsbench-pvt")


def _find(folder: Path, relative: str) -> Path | None:
    direct = folder / relative
    if direct.is_file():
        return direct
    found = sorted(p for p in folder.rglob(Path(relative).name) if p.is_file() and p.as_posix().endswith(relative))
    return found[0] if found else None


def subset_roots(root: Path) -> dict[str, Path]:
    """Which AVSBench subsets ``root`` holds: the root itself or its subfolders (Single-source, ...)."""
    if not root.is_dir():
        raise UserError(f"--eval-data {root} is not a directory")
    found = {}
    for subset, csv in SUBSET_CSV.items():
        candidates = [root] + sorted(p for p in root.iterdir() if p.is_dir())
        hit = next((c for c in candidates if (c / csv).is_file()), None)
        if hit is not None:
            found[subset] = hit
    if not found:
        raise UserError(f"--eval-data {root}: no AVSBench subset found (looked for {', '.join(SUBSET_CSV.values())} "
                        "in it and in its subfolders)")
    return found


@dataclass(frozen=True)
class Planned:
    model: str
    subset: str
    data: Path
    weights: Path
    vggish: Path | None


def plan(eval_data: Path, weights_dir: Path) -> tuple[list[Planned], list[str]]:
    """What can be evaluated, and a note for each released checkpoint that cannot (missing file or data)."""
    if not weights_dir.is_dir():
        raise UserError(f"--weights-dir {weights_dir} is not a directory")
    roots = subset_roots(eval_data)
    vggish = _find(weights_dir, VGGISH_FILE)
    work, notes = [], []
    for model in RELEASED_MODELS:
        for subset, root in roots.items():
            path = next((p for p in (_find(weights_dir, name) for name in released_names(model, subset)) if p), None)
            if path is None:
                continue
            if model.startswith("avsbench") and vggish is None:
                notes.append(f"{model} {subset}: {path.name} found, but not {VGGISH_FILE} (AVSBench keeps VGGish apart): skipped")
                continue
            work.append(Planned(model, subset, root, path, vggish if model.startswith("avsbench") else None))
    if not work:
        wanted = ", ".join(sorted({n for m in RELEASED_MODELS for s in roots for n in released_names(m, s)}))
        raise UserError(f"--weights-dir {weights_dir}: no released checkpoint for the subsets in --eval-data ({', '.join(roots)}); "
                        f"looked for {wanted}")
    return work, notes


def evaluate_released(eval_data: Path, weights_dir: Path, store: Path, size: int = 224,
                      progress: Callable[[str], None] | None = None) -> list[dict]:
    """Evaluate every planned (model, subset); returns one summary per evaluation (records go to ``store``)."""
    from avskit.analyses.training import DataOptions, run_evaluation

    say = progress or (lambda message: None)
    work, notes = plan(eval_data, weights_dir)
    for note in notes:
        say(note)
    done = []
    for n, item in enumerate(work, 1):
        overrides = {"weights": str(item.weights)}
        if item.subset == "avss":
            overrides["classes"] = 71
        if item.vggish is not None:
            overrides["vggish_weights"] = str(item.vggish)
        spec = make_spec(item.model, overrides)
        label = f"eval {n}/{len(work)}: {item.model} on {item.subset} ({item.weights.name})"
        say(label)
        result = run_evaluation(spec, DataOptions(str(item.data), item.subset, size), None, results=store,
                                on_eval=lambda i, total, label=label: say(f"{label} {i}/{total}"))
        done.append({"model": item.model, "subset": item.subset, "weights": str(item.weights),
                     "sha256": result["weights_file"]["sha256"], **result["test"]})
    return done
