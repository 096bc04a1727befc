"""Dissipation: per-site attention metrics of a model, and the paper's attention figures.

Figures (PNG and SVG, provenance in their metadata and footer), all from one input frame:
- fig4a: each generated query's probabilities over its keys, AVSegFormer's QG beside PQG;
- fig8: audio-to-visual maps of each fusion strategy, overlaid on the frame;
- fig9: the map of each PQG query;
- fig7: the map of each decoder layer of an all-transformer (TTT) decoder.
A map is a query's attention column over the stride-8 pixels (normalised over the pixels),
averaged over heads (and over queries where the paper averages), upsampled to the frame.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from avsbench_kit import UserError, build_from_spec
from avsbench_kit.audio import EXAMPLE_SAMPLES, SAMPLE_RATE, waveform_to_examples
from avsbench_kit.data.avsbench import normalise_rgb
from avsbench_kit.probes import capture_attention
from avsbench_kit.probes.capture import AttentionRecord, AttentionRecorder
from avsbench_kit.profiling.env import environment
from avsbench_kit.results import ensure_writable_folder
from avsbench_kit.spec import ModelSpec, front_end_of, make_spec, weights_for
from avskit.analyses.attention_figures import render_maps
from avskit.analyses.figure_io import pyplot, save_figure

FUSIONS_SHOWN = ("dissipation", "tpavi", "cha", "sigmoid", "cross_attention")


@dataclasses.dataclass
class Sample:
    image: torch.Tensor  # [1, 3, H, W], ImageNet-normalised
    rgb: np.ndarray  # [H, W, 3] uint8, for overlays
    waveform: np.ndarray  # [samples] float32 at 16 kHz, mono: the frame's sound (a model's front end makes its input)
    description: str
    mask: np.ndarray | None = None  # [H, W] 0/1: the sounding object, when known (synthetic frames): maps are scored against it

    def audio(self, front_end: str = "vggish") -> torch.Tensor:
        """``[1, 1, 96, 64]``: the first 0.96 s as the model's release computes its input (spec.front_end_of)."""
        if front_end == "cavp":
            from avsbench_kit.audio_cavp import log_mel

            return log_mel(torch.from_numpy(self.waveform))[None]
        return waveform_to_examples(self.waveform, SAMPLE_RATE)[:1].unsqueeze(1)


def synthetic_sample(size: int = 224, seed: int = 0, video: int = 0, frame: int = 0) -> Sample:
    """A frame of a synthetic S4 video (avsbench_kit.data.synthetic): 2-5 shapes, the sound of one.
    ``seed`` is the benchmark's seed; a trained model is shown a video of its test split."""
    from avsbench_kit.data.synthetic import CLASSES, synthetic_frame

    made = synthetic_frame("s4", seed, video, frame, size)
    names = ", ".join(CLASSES[c][0] for c in made.objects)
    sounding = CLASSES[made.objects[made.sounding[0]]]
    where = f"seed {seed}" + (f", video {video}, frame {frame}" if video or frame else "")
    return Sample(normalise_rgb(made.image)[None], made.image, made.waveform,
                  f"synthetic S4 frame ({where}): {names}; the {sounding[0]} ({sounding[1]}) sounds", (made.mask > 0).astype(np.uint8))


def load_sample(image_path: str | None, audio_path: str | None, size: int = 224) -> Sample:
    """A user's frame (any image PIL reads, resized to size x size) and the first 0.96 s of a sound
    file; either one missing comes from the default synthetic sample, and the description says which."""
    default = synthetic_sample(size) if image_path is None or audio_path is None else None
    if image_path is None and audio_path is None:
        return default
    rgb8 = _read_frame(image_path, size) if image_path is not None else default.rgb
    waveform = _read_sound(audio_path) if audio_path is not None else default.waveform
    parts = [f"frame {image_path}" if image_path is not None else "the default synthetic S4 frame (seed 0)",
             f"first 0.96 s of {audio_path}" if audio_path is not None else "the default synthetic sound (seed 0: the sounding shape's)"]
    return Sample(normalise_rgb(rgb8)[None], rgb8, waveform, " + ".join(parts))


def _read_frame(image_path: str, size: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(image_path) as img:
            return np.asarray(img.convert("RGB").resize((size, size), Image.BILINEAR))
    except FileNotFoundError:
        raise UserError(f"--image: no such file {image_path}") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise UserError(f"--image: {image_path} is not a readable image ({type(exc).__name__})") from None


def _read_sound(audio_path: str) -> np.ndarray:
    """The file's first 0.96 s or more, mono at 16 kHz (UserError when shorter or unreadable)."""
    import soundfile

    if not Path(audio_path).is_file():
        raise UserError(f"--audio: no such file {audio_path}")
    try:
        wave, rate = soundfile.read(audio_path, dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as exc:
        raise UserError(f"--audio: {audio_path} is not a readable sound file ({exc})") from None
    mono = torch.from_numpy(np.ascontiguousarray(wave.mean(1)))
    if rate != SAMPLE_RATE:
        import torchaudio.functional as AF

        mono = AF.resample(mono, rate, SAMPLE_RATE)
    if mono.numel() < EXAMPLE_SAMPLES:
        raise UserError(f"--audio: {audio_path} is shorter than one 0.96 s VGGish example ({mono.numel()} of {EXAMPLE_SAMPLES} samples at 16 kHz)")
    return mono[:SAMPLE_RATE].numpy()  # the first second holds what either front end reads


def capture(spec: ModelSpec, sample: Sample) -> AttentionRecorder:
    """Every attention call of one forward of ``spec`` on ``sample`` (a foreign model whose factory
    gave its own ``example_inputs`` runs on those, at the sample's size)."""
    model = build_from_spec(spec)
    own = getattr(model, "custom_inputs", False)
    inputs = model.example_inputs(1, sample.image.shape[-1]) if own else (sample.image, sample.audio(front_end_of(spec)))
    with torch.inference_mode(), capture_attention(model) as recorder:
        model(*inputs)
    recorder.input_description = f"the factory's example_inputs(1, {sample.image.shape[-1]})" if own else sample.description
    return recorder


def sites_heatmap(sites: list[dict[str, Any]], title: str):
    """The site-by-metric grid (seaborn): normalised entropy and row diversity per attention call,
    dissipated calls in red with their reason."""
    import pandas as pd
    import seaborn as sns

    plt = pyplot()
    rows = [f"{s['site'] or '(top level)'} #{s.get('call', 0)} ({s['kind']}, {s['n_queries']}x{s['n_keys']})" for s in sites]
    grid = pd.DataFrame({"normalised entropy": [s["entropy_norm"] for s in sites],
                         "row diversity": [s["row_diversity"] for s in sites]}, index=rows, dtype=float)
    label_inches = 0.065 * max((len(r) for r in rows), default=10)  # room for the longest site name
    # the colour bar gets an axes of its own, so tight_layout leaves room for long site names
    fig, (ax, bar) = plt.subplots(1, 2, figsize=(5.5 + label_inches, 2.4 + 0.28 * max(1, len(rows))),
                                  gridspec_kw={"width_ratios": (14, 1)}, dpi=110)  # laid out at the dpi it is saved at
    if rows:
        sns.heatmap(grid, ax=ax, cbar_ax=bar, vmin=0, vmax=1, cmap="viridis", annot=True, fmt=".2f", annot_kws={"fontsize": 7},
                    cbar_kws={"label": "0 collapsed, 1 diverse"}, linewidths=0.5, linecolor="white")
        ax.set_yticks([i + 0.5 for i in range(len(rows))], rows, fontsize=7)
        for tick, s in zip(ax.yaxis.get_major_ticks(), sites, strict=False):
            tick.label1.set_color("tab:red" if s["dissipated"] else "black")
        ax.tick_params(axis="x", labelsize=8)
    else:
        ax.text(0.5, 0.5, "no attention call recorded", ha="center", va="center", transform=ax.transAxes, color="0.4")
        ax.set_axis_off()
        bar.set_axis_off()
    flagged = sum(bool(s["dissipated"]) for s in sites)
    ax.set_title(f"{title}\n{flagged} of {len(sites)} attention calls dissipated (red); blank: not defined (one key or one query)",
                 fontsize=9)
    return fig


def site_table(spec: ModelSpec, sample: Sample) -> list[dict[str, Any]]:
    """One row per attention call: site, call, kind, n_queries, n_keys, entropy_norm, row_diversity, dissipated, reason."""
    return probe_sites(spec, sample)[0]


def probe_sites(spec: ModelSpec, sample: Sample) -> tuple[list[dict[str, Any]], str]:
    """The site table and, in words, the input the probed forward ran on."""
    recorder = capture(spec, sample)
    table = recorder.summary()
    rows = [{k: (None if isinstance(v, float) and math.isnan(v) else v.item() if hasattr(v, "item") else v) for k, v in row.items()}
            for row in table.to_dict(orient="records")]
    return rows, recorder.input_description


# ---- maps ---------------------------------------------------------------------------------------

def pixel_map(record: AttentionRecord, hw: tuple[int, int], key: int | None = None) -> np.ndarray:
    """``[h, w]`` map over the first level's pixels: attention columns normalised over the pixels,
    averaged over heads and keys (or one key). Channel attention (one audio query over the pixels)
    gives its row instead."""
    h, w = hw
    weights = record.weights[0].float()  # [heads, rows, keys]
    if record.kind == "cha":
        column = weights[:, 0, : h * w]
        return (column / column.abs().sum(-1, keepdim=True).clamp_min(1e-12)).mean(0).view(h, w).numpy()
    pixels = weights[:, : h * w, :]
    if key is not None:
        pixels = pixels[:, :, key : key + 1]
    columns = pixels / pixels.abs().sum(1, keepdim=True).clamp_min(1e-12)
    return columns.mean((0, 2)).view(h, w).numpy()


def _first_level(size: int) -> tuple[int, int]:
    return (size // 8, size // 8)


def _fusion_record(recorder: AttentionRecorder, prefix: str) -> AttentionRecord:
    found = [r for r in recorder.records if r.site.startswith(prefix) and r.kind != "deformable"]
    if not found:
        raise RuntimeError(f"no attention recorded under {prefix}")
    return found[0]  # TPAVI records one call per level: the first is stride 8


# ---- figures: data first (a record), then drawing (a pure function of it) -----------------------

def _figure_base(spec: ModelSpec) -> ModelSpec:
    """AVESFormer variants are drawn from the given model when it is one, else from avesformer-r18."""
    return spec if spec.family == "avesformer" else make_spec("avesformer-r18")


def _rounded(array: np.ndarray) -> list:
    """A map as nested lists of 4 significant digits: small in a record, plenty for a heat map."""
    return np.vectorize(lambda v: float(f"{v:.4g}"))(np.asarray(array, dtype=np.float64)).tolist()


def _verdict(record: AttentionRecord) -> str:
    m = record.metrics
    div = "n/a" if math.isnan(m.row_diversity) else f"{m.row_diversity:.3f}"
    return f"diversity {div}" + (" - DISSIPATED" if m.dissipated else "")


def weights_note(spec) -> str:
    """What a figure's weights were, for its title and provenance: the file and its SHA-256 when the
    model was given ``weights``; else pretrained backbones or random."""
    if getattr(spec, "weights", None):
        from avsbench_kit.files import file_sha256

        return f"{spec.weights} (sha256 {file_sha256(spec.weights)})"
    return "pretrained backbones" if spec.vggish_weights and spec.backbone_weights else "random (untrained)"


def _variant(base: ModelSpec, **changes) -> ModelSpec:
    """``base`` with ``changes``; a variant that is another architecture cannot use base's weights file."""
    return weights_for(dataclasses.replace(base, **changes), base)


# Where a weighted baseline's own maps come from: (site, stride of its map)
OWN_FUSION_SITES = {"avsbench": ("tpavi.1", 8), "avsegformer": ("mask_head.mixer", 4)}


def collect_maps(spec: ModelSpec, sample: Sample, progress: Callable[[str], None] | None = None,
                 checkpoints: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Everything the attention figures show, as plain JSON data (maps over the stride-8 pixels).

    With ``weights``, every panel the given model can supply comes from it (an AVESFormer checkpoint:
    all panels of its own configuration; AVSegFormer: its QG in Figure 4a and its CHA map in
    Figure 8; AVSBench: its TPAVI map in Figure 8); each panel says where its weights came from.
    ``checkpoints`` (variant label -> {"path", "sha256", "steps", "seed", "jaccard"}): each panel's
    variant drawn from its own trained checkpoint where there is one (Figure 8: each fusion's own),
    the others random and marked so. When the sample has a mask, each map carries its localisation
    scores (:func:`avsbench_kit.probes.localisation.score_map`)."""
    say = progress or (lambda message: None)
    checkpoints = checkpoints or {}
    base = _figure_base(spec)
    hw = _first_level(sample.image.shape[-1])
    weighted = spec.family != "avesformer" and bool(getattr(spec, "weights", None))
    own = capture(spec, sample) if weighted else None
    used: dict[str, list[str]] = {}

    def pick(variant: ModelSpec, figure: str) -> ModelSpec:
        """The variant with its trained checkpoint, when the store has one."""
        found = checkpoints.get(variant.label)
        if found is None:
            return variant
        used.setdefault(figure, [])
        if variant.label not in used[figure]:
            used[figure].append(variant.label)
        return dataclasses.replace(variant, weights=found["path"])

    def source(variant: ModelSpec) -> str:
        if dataclasses.replace(variant, weights=None).label in checkpoints and variant.weights:
            return "trained"
        return "weights" if variant.weights else "untrained" if checkpoints else "random"

    def scored(shown: list) -> dict[str, Any] | None:
        """The scores of the map as the record stores it and the panel draws it (``_rounded``, 4 significant digits):
        scored at full precision, a nearly flat map's median threshold fell between values that the
        stored map rounds to one, and the title disagreed with its own panel (cIoU 0.038 against 0.036)."""
        if sample.mask is None:
            return None
        from avsbench_kit.probes.localisation import score_map

        scores = score_map(torch.tensor(shown, dtype=torch.float64), torch.as_tensor(sample.mask))
        return {k: (None if isinstance(v, float) and math.isnan(v) else round(v, 4) if isinstance(v, float) else v) for k, v in scores.items()}

    say("fig4a: QG vs PQG query probabilities")
    qg_spec, pqg_spec = pick(_variant(base, qg="qg", queries=300), "fig4a"), pick(_variant(base, qg="pqg", queries=16), "fig4a")
    qg_from = own if weighted and spec.family == "avsegformer" else capture(qg_spec, sample)
    qg_rec = [r for r in qg_from.records if ".cross_attn" in r.site and r.site.startswith("query_generator")][-1]
    pqg_rec = [r for r in capture(pqg_spec, sample).records if r.site.startswith("query_generator")][-1]
    fig4a = {"qg": {"probs": _rounded(qg_rec.weights[0].mean(0).T.numpy()), "verdict": _verdict(qg_rec),
                    "source": f"{spec.label}, weights" if qg_from is own else f"{qg_spec.label}, {source(qg_spec)}"},  # [1 key, 300 queries]
             "pqg": {"probs": _rounded(pqg_rec.weights[0].mean(0)[1:].numpy()), "verdict": _verdict(pqg_rec),
                     "source": f"{pqg_spec.label}, {source(pqg_spec)}"}}  # [16, 1 + 16]
    say("fig8: fusion strategies")
    last = f"decoder.stages.{len(base.stages) - 1}.layers.1.fusion"
    stages = base.stages if base.stages.endswith("T") else base.stages[:-1] + "T"
    fig8 = []
    for fusion in FUSIONS_SHOWN:
        variant = pick(_variant(base, fusion=fusion, stages=stages), "fig8")
        record = _fusion_record(capture(variant, sample), last)
        shown = _rounded(pixel_map(record, hw))
        fig8.append({"fusion": fusion, "kind": record.kind, "map": shown, "verdict": _verdict(record),
                     "source": source(variant), "scores": None if record.kind == "cha" else scored(shown)})
    if weighted and spec.family in OWN_FUSION_SITES:
        site, stride = OWN_FUSION_SITES[spec.family]
        record = _fusion_record(own, site)
        size = sample.image.shape[-1] // stride
        shown = _rounded(pixel_map(record, (size, size)))
        fig8.append({"fusion": spec.name, "kind": record.kind, "map": shown,
                     "verdict": _verdict(record), "source": "weights", "scores": None if record.kind == "cha" else scored(shown)})
    say("fig9: PQG queries")
    spec9 = pick(_variant(base, qg="pqg", fusion="cross_attention", queries=16, stages=stages), "fig9")
    record = _fusion_record(capture(spec9, sample), f"decoder.stages.{len(spec9.stages) - 1}.layers.1.fusion")
    fig9 = [_rounded(pixel_map(record, hw, key=i)) for i in range(record.n_keys)]
    say("fig7: decoder layers")
    spec7 = pick(_variant(base, stages="TTT", fusion="cross_attention"), "fig7")
    recorder = capture(spec7, sample)
    fig7 = []
    for prefix in [f"decoder.stages.{s}.layers.{layer}.fusion" for s in range(3) for layer in range(2)]:
        record = _fusion_record(recorder, prefix)
        shown = _rounded(pixel_map(record, hw))
        fig7.append({"map": shown, "verdict": _verdict(record), "scores": scored(shown)})
    data = {"base_model": base.label, "input": sample.description, "size": sample.image.shape[-1],
            "weights": (weights_note(spec) + " in the panels marked [weights], the others random") if weighted else weights_note(base),
            "sources": {"fig4a": [fig4a["qg"]["source"], fig4a["pqg"]["source"]], "fig8": [e["source"] for e in fig8],
                        "fig9": source(spec9), "fig7": source(spec7)},
            "fig4a": fig4a, "fig8": fig8, "fig9": fig9, "fig7": fig7}
    if sample.mask is not None:
        data["fig9_scores"] = [scored(shown) for shown in fig9]
    if checkpoints:
        data["weights"] = "trained checkpoints in the panels marked [trained], random weights in those marked [untrained]"
        data["checkpoints"] = {figure: [{"label": label, **checkpoints[label]} for label in labels] for figure, labels in used.items()}
    return data


def draw_sites(spec, sites: list[dict[str, Any]], input_description: str, out: Path) -> list[str]:
    """The site-by-metric heatmap of one probed forward (any model, foreign ones included)."""
    env = environment(torch.device("cpu"))
    provenance = {"tool": "avskit", "base_model": spec.label, "input": input_description, "commit": env["commit"],
                  "torch": env["torch"], "spec": spec.to_dict()}
    if spec.family != "foreign":
        provenance["weights"] = weights_note(spec)
    fig = sites_heatmap(sites, f"Attention sites of {spec.label}")
    return save_figure(fig, out / "attention_sites", provenance)


def draw_figures(spec: ModelSpec, sample: Sample, out: Path, progress: Callable[[str], None] | None = None) -> list[str]:
    """Capture the maps of ``spec`` on ``sample`` and draw the four attention figures into ``out``."""
    ensure_writable_folder(out, "--out", "figures")
    data = collect_maps(spec, sample, progress)
    env = environment(torch.device("cpu"))
    return render_maps(data, sample.rgb, out, {"commit": env["commit"], "torch": env["torch"], "time": env["time"]}, mask=sample.mask)


def probe_dataset(spec: ModelSpec, data: str, subset: str | None, frames: int, size: int, videos: int, store: Path,
                  on_start: Callable[[int], None] | None = None, on_frame: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """`avskit dissipation MODEL --data ...`: the probe over ``frames`` test frames, with localisation,
    kept as an ``attention_frames`` record in ``store``."""
    from avsbench_kit.profiling.env import command_line
    from avsbench_kit.results import append_records, make_record
    from avskit.analyses.attention_frames import probe_frames
    from avskit.analyses.training import DataOptions, zoo_only

    zoo_only(spec)
    options = DataOptions(data, subset, size, videos)
    name = options.resolve_subset()
    front_end = front_end_of(spec)
    dataset = options.dataset("test", front_end)  # a bad root or size is an error before any model is built
    ensure_writable_folder(store.parent, "--results", "records")
    if on_start:
        on_start(min(frames, len(dataset)))
    report = probe_frames(spec, dataset, name, frames, on_frame=on_frame, select_on=options.dataset("val", front_end))
    report = {**report, "data": data, "subset": name, "size": size, "audio_front_end": front_end}
    prov = {**environment(torch.device("cpu")), "command": command_line(), "data": data, "subset": name, "split": "test", "size": size,
            "frames": report["frames"], "videos": videos if data.startswith("synthetic:") else None}
    append_records([make_record("attention_frames", spec.label, spec.to_dict(), "frames", report["frames"], "frames", prov,
                                sites=report["sites"], frame_indices=report["frame_indices"])], store)
    return report
