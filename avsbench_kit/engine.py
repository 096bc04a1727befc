"""Training and evaluation, one frame at a time (T=1).

The paper's recipe (appendix A.2.1): AdamW, polynomial learning-rate decay (power 0.9), VGGish
frozen, horizontal flips; losses IoU (weight 1.8 on S4/MS3, 1.0 on AVSS) + Dice (1.0) on the
sigmoid mask, plus the auxiliary "mix" loss (0.1): the same loss on the channel mean of the mask
feature, upsampled; AVSS uses cross-entropy as its main loss. Checkpoints are written atomically
(temporary file, then rename) and a run resumes from its last one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avsbench_kit.audio import SAMPLE_RATE, waveform_to_examples
from avsbench_kit.data.avsbench import normalise_rgb
from avsbench_kit.errors import UserError
from avsbench_kit.metrics import BinaryMeter, SemanticMeter

DICE_EPS = 0.002
LAMBDA_IOU = {"s4": 1.8, "ms3": 1.8, "avss": 1.0}
LAMBDA_DICE = 1.0
LAMBDA_AUX = 0.1


def dice_loss(probs: Tensor, target: Tensor) -> Tensor:
    """``1 - 2 sum(p g) / (sum(p^2) + sum(g^2) + 0.002)`` per frame, averaged."""
    inter = (probs * target).flatten(1).sum(1)
    denominator = (probs * probs).flatten(1).sum(1) + (target * target).flatten(1).sum(1) + DICE_EPS
    return (1 - 2 * inter / denominator).mean()


def iou_loss(probs: Tensor, target: Tensor) -> Tensor:
    """Soft IoU: ``1 - sum(p g) / sum(p + g - p g)`` per frame, averaged (1 for an empty frame predicted empty is 0 loss)."""
    inter = (probs * target).flatten(1).sum(1)
    union = (probs + target - probs * target).flatten(1).sum(1)
    return (1 - (inter + 1.0) / (union + 1.0)).mean()


def binary_loss(logits: Tensor, target: Tensor, subset: str) -> Tensor:
    probs = torch.sigmoid(logits)
    return LAMBDA_IOU[subset] * iou_loss(probs, target) + LAMBDA_DICE * dice_loss(probs, target)


def segmentation_loss(logits: Tensor, target: Tensor, subset: str, mask_feature: Tensor | None = None) -> Tensor:
    """The paper's loss for ``logits [B, C, H, W]`` and ``target [B, H, W]`` (binary float or class indices)."""
    if subset == "avss":
        main = F.cross_entropy(logits, target.long(), ignore_index=255)
        binary_target = (target > 0).float()
    else:
        main = binary_loss(logits[:, 0], target, subset)
        binary_target = target
    if mask_feature is None:
        return main
    aux_logits = F.interpolate(mask_feature.mean(1, keepdim=True), size=target.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    return main + LAMBDA_AUX * binary_loss(aux_logits, binary_target, "s4" if subset != "avss" else "avss")


class SyntheticFrames(torch.utils.data.Dataset):
    """The synthetic benchmark in memory: every frame of ``videos`` videos of one split, made on the
    fly; ``limit`` keeps only the split's first ``limit`` videos (a smaller test split for quick runs)."""

    def __init__(self, subset: str, split: str, videos: int, size: int = 224, seed: int = 0, limit: int | None = None):
        from avsbench_kit.data.synthetic import FRAMES_PER_VIDEO, split_of

        self.subset, self.size, self.seed = subset, size, seed
        frames = [1] if subset == "s4" and split == "train" else range(FRAMES_PER_VIDEO)  # S4 train: frame 1 only
        chosen = [v for v in range(videos) if split_of(v, videos) == split][:limit]
        self.items = [(v, f) for v in chosen for f in frames]

    def __len__(self) -> int:
        return len(self.items)

    def _frame(self, n: int):
        from avsbench_kit.data.synthetic import synthetic_frame

        video, frame = self.items[n]
        return synthetic_frame(self.subset, self.seed, video, frame, self.size)

    def audio(self, n: int) -> Tensor:
        """Frame ``n``'s log-mel example ``[1, 96, 64]``."""
        return waveform_to_examples(self._frame(n).waveform, SAMPLE_RATE)[:1]

    def __getitem__(self, n: int) -> tuple[Tensor, Tensor, Tensor, dict]:
        f = self._frame(n)
        image = normalise_rgb(f.image)
        audio = waveform_to_examples(f.waveform, SAMPLE_RATE)[:1]
        mask = torch.from_numpy(f.mask.astype(np.int64)) if self.subset == "avss" else torch.from_numpy(f.mask.astype(np.float32))
        video, frame = self.items[n]
        return image, audio, mask, {"video": video, "frame": frame}


def collate(batch: list) -> tuple[Tensor, Tensor, Tensor]:
    images, audios, masks, _ = zip(*batch, strict=True)
    return torch.stack(images), torch.stack(audios), torch.stack(masks)


CHECKPOINT_FORMAT = "avskit-checkpoint/2"


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically: a reader never sees a half-written checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    torch.save(state, tmp)
    os.replace(tmp, path)


def frozen_parameters(model: nn.Module) -> set[str]:
    """Parameters training never changes (VGGish): a rebuilt model gets them back from their
    weights file, or from the run's seed when they are random, so checkpoints leave them out."""
    return {name for name, p in model.named_parameters() if not p.requires_grad}


def frozen_fingerprint(model: nn.Module) -> str:
    """SHA-256 of the frozen parameters (names, shapes, bytes): proves a rebuilt model got them back."""
    digest = hashlib.sha256()
    for name, p in sorted(model.named_parameters()):
        if not p.requires_grad:
            tensor = p.detach().cpu().contiguous()
            digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
            digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def trainable_state(model: nn.Module) -> dict[str, Tensor]:
    """The state dict without the frozen parameters (VGGish's 72M): only what training changes."""
    skip = frozen_parameters(model)
    return {k: v for k, v in model.state_dict().items() if k not in skip}


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint at ``path`` as a dict (``torch.load(weights_only=True)``: reading runs no code)."""
    if not Path(path).is_file():
        raise UserError(f"checkpoint {path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(f"checkpoint {path}: not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise UserError(f"checkpoint {path}: not an avskit checkpoint (no 'model' entry)")
    return state


def load_checkpoint(path: Path, model: nn.Module, state: dict[str, Any] | None = None) -> dict[str, Any]:
    """Load a checkpoint into ``model``; UserError if the file is unreadable or made for another model."""
    state = state if state is not None else read_checkpoint(path)
    frozen = frozen_parameters(model)
    try:
        result = model.load_state_dict(state["model"], strict=False)
    except RuntimeError as exc:
        first = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line), "shapes differ")
        raise UserError(f"checkpoint {path}: does not fit this model ({first}); was it trained with other --set values?") from None
    missing = [k for k in result.missing_keys if k not in frozen]
    if missing or result.unexpected_keys:
        keys = (missing or result.unexpected_keys)[:2]
        raise UserError(f"checkpoint {path}: does not fit this model (keys {keys} differ); was it trained with other --set values?")
    expected = state.get("frozen", {}).get("sha256")
    if expected and not set(state["model"]) & frozen and frozen_fingerprint(model) != expected:
        source = state["frozen"].get("source", "its weights file or seed")
        raise UserError(f"checkpoint {path}: the frozen weights rebuilt here differ from the run's ({source}); "
                        "give the same --set vggish_weights / seed the run had")
    return state


def run_differences(saved: dict[str, Any] | None, run: dict[str, Any]) -> list[str]:
    """What differs between the run a checkpoint was made by and this one, as ``key: saved -> now``."""
    if saved is None:
        return ["the checkpoint does not say which run made it (an older avskit)"]
    from avsbench_kit.results import same_spec

    def same(k: str) -> bool:
        a, b = saved.get(k), run.get(k)
        return same_spec(a, b) if k == "spec" and isinstance(a, dict) and isinstance(b, dict) else a == b

    return [f"{k}: {saved.get(k)!r} there, {run.get(k)!r} here" for k in sorted(set(saved) | set(run)) if not same(k)]


class FrozenAudioFeatures:
    """The frozen audio backbone's embedding of every training clip, computed once before training.

    VGGish is frozen, so its output for a clip never changes: computing it at every step (about a
    tenth of a CPU step at 64x64) is waste. The embeddings are computed in dataset order, in fixed
    chunks, so a resumed run uses exactly the numbers a straight run uses. While ``serving``, the
    backbone's forward returns the rows of the clips named by ``keys``; outside it, it is untouched.
    """

    def __init__(self, backbone: nn.Module, table: Tensor):
        self.backbone, self.table, self.keys = backbone, table, None

    @classmethod
    def of(cls, model: nn.Module, dataset, audio_blind: bool = False, chunk: int = 32,
           progress: Callable[[int, int], None] | None = None) -> "FrozenAudioFeatures | None":
        backbone = getattr(model, "audio_backbone", None)
        if backbone is None or any(p.requires_grad for p in backbone.parameters()):
            return None  # nothing frozen to cache: the forward runs as it is
        device = next(backbone.parameters()).device
        rows = []
        with torch.no_grad():
            for start in range(0, len(dataset), chunk):
                batch = [dataset.audio(i) if hasattr(dataset, "audio") else dataset[i][1] for i in range(start, min(start + chunk, len(dataset)))]
                audio = torch.stack(batch).to(device)
                rows.append(backbone(torch.zeros_like(audio) if audio_blind else audio).cpu())
                if progress:
                    progress(min(start + chunk, len(dataset)), len(dataset))
        return cls(backbone, torch.cat(rows))

    @contextlib.contextmanager
    def serving(self):
        table = self.table.to(next(self.backbone.parameters()).device)

        def forward(log_mel: Tensor) -> Tensor:
            if self.keys is None or len(self.keys) != log_mel.shape[0]:
                return type(self.backbone).forward(self.backbone, log_mel)
            return table[self.keys]

        self.backbone.forward = forward  # an instance attribute: the state dict and the class stay as they are
        try:
            yield self
        finally:
            del self.backbone.forward
            self.keys = None

    @contextlib.contextmanager
    def paused(self):
        """The backbone's own forward meanwhile (validation clips are not in the table)."""
        keys, self.keys = self.keys, None
        try:
            yield
        finally:
            self.keys = keys


def capture_mask_feature(model: nn.Module) -> tuple[dict, Callable[[], None]]:
    """Hook the mask head to get the mask feature for the auxiliary loss, without changing forward:
    the audio mixer's output where there is one (AVSegFormer's head returns the gated map), else ``out_conv``'s."""
    store: dict[str, Tensor] = {}
    head = getattr(model, "mask_head", None)
    if head is None or not hasattr(head, "out_conv"):
        return store, lambda: None
    source = head.mixer if getattr(head, "mixer", None) is not None else head.out_conv
    handle = source.register_forward_hook(lambda module, args, output: store.__setitem__("mask_feature", output))
    return store, handle.remove


def evaluate(model: nn.Module, dataset, subset: str, batch: int = 4, num_classes: int = 71,
             audio_blind: bool = False, progress: Callable[[int, int], None] | None = None,
             device: str = "cpu") -> dict[str, float]:
    """The official evaluation: per-batch J and F averaged (S4/MS3, batch 4), or AVSS mIoU and F."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=False, collate_fn=collate)
    meter: BinaryMeter | SemanticMeter = SemanticMeter(num_classes) if subset == "avss" else BinaryMeter()
    was_training = model.training
    target = training_device(device)
    model.eval().to(target)
    with torch.inference_mode():
        for i, (images, audios, masks) in enumerate(loader):
            if audio_blind:
                audios = torch.zeros_like(audios)
            logits = model(images.to(target), audios.to(target)).cpu()
            meter.update(logits if subset == "avss" else logits[:, 0], masks)
            if progress:
                progress(i + 1, len(loader))
    model.train(was_training)
    out = meter.compute()
    return {"jaccard": out["miou"], "f_score": out["f_score"]} if subset == "avss" else {"jaccard": out["jaccard"], "f_score": out["f_score"]}


@dataclass
class TrainConfig:
    subset: str = "s4"
    steps: int = 300
    batch: int = 8
    lr: float = 1e-4
    weight_decay: float = 0.01
    seed: int = 0
    audio_blind: bool = False
    checkpoint_every: int = 50
    freeze_batchnorm: bool = False  # keep BatchNorm statistics fixed (eval mode) while training
    device: str = "cpu"
    warmup: int = 0  # linear learning-rate warmup over the first steps, then the polynomial decay
    val_every: int = 0  # validate every N steps (and at the end): the run's validation curve; 0 = never


def distributed_rank_and_size() -> tuple[int, int]:
    """(rank, world size); under torchrun the process group is started here (NCCL on CUDA, gloo on CPU)."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


def training_device(name: str) -> torch.device:
    """The device to train on; under torchrun on CUDA, this process's GPU (LOCAL_RANK)."""
    if name == "cuda":
        if not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA device is available on this machine")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if name != "cpu":
        raise UserError(f"--device {name!r} is not accepted; choose cpu or cuda")
    return torch.device("cpu")


def global_mean(value: Tensor) -> float:
    import torch.distributed as dist

    total = value.clone()
    dist.all_reduce(total)
    return total.item() / dist.get_world_size()


def run_identity(cfg: TrainConfig, world: int, **described: Any) -> dict[str, Any]:
    """Everything a run's result depends on: a checkpoint resumes only a run with the same identity."""
    keys = ("subset", "steps", "batch", "lr", "weight_decay", "seed", "audio_blind", "freeze_batchnorm")
    identity = {**described, **{k: getattr(cfg, k) for k in keys}, "world_size": world}
    if cfg.warmup:  # named only when used, so the runs made before it existed resume as they were
        identity["warmup"] = cfg.warmup
    return identity


def lr_schedule(optimizer: torch.optim.Optimizer, cfg: TrainConfig):
    """Polynomial decay (power 0.9) over ``cfg.steps``, after a linear warmup of ``cfg.warmup`` steps if any."""
    if not cfg.warmup:
        return torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=cfg.steps, power=0.9)

    def factor(step: int) -> float:
        return min(1.0, (step + 1) / cfg.warmup) * max(0.0, 1 - step / cfg.steps) ** 0.9

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def train(model: nn.Module, dataset, cfg: TrainConfig, checkpoint: Path | None = None,
          progress: Callable[[int, float], None] | None = None, run: dict[str, Any] | None = None,
          on_features: Callable[[int, int], None] | None = None,
          validate: Callable[[nn.Module], dict[str, float]] | None = None) -> dict[str, Any]:
    """Train ``model`` for ``cfg.steps`` steps; returns the steps, the last loss, the step it resumed
    from and, with ``validate`` and ``cfg.val_every``, the validation curve (``validate(model)`` every
    ``val_every`` steps and at the end; it must leave the model's weights and the RNG as they were).

    With ``checkpoint``, a run resumes from it only if the checkpoint was made by the same run
    (``run`` plus the config and world size); otherwise UserError says what differs. Checkpoints
    hold only what training changes (trainable weights, optimizer, schedule, RNG), plus the hash
    of the frozen weights the run had; the last one, of a finished run, drops the optimizer.
    """
    torch.manual_seed(cfg.seed)
    rank, world = distributed_rank_and_size()
    if cfg.batch % world:
        raise UserError(f"--batch {cfg.batch} must be divisible by the {world} processes")
    identity = run_identity(cfg, world, **(run or {}))
    model.train()
    if cfg.freeze_batchnorm:
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
    device = training_device(cfg.device)
    model.to(device)
    # Under DDP on CPU each process normalises its BatchNorm layers with its own share's statistics
    # (SyncBatchNorm is CUDA-only); on CUDA they are synchronised. With freeze_batchnorm the
    # processes compute exactly what one process computes on the whole batch.
    net = model
    if world > 1:
        if device.type == "cuda":
            if not cfg.freeze_batchnorm:
                model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index])
        else:
            net = nn.parallel.DistributedDataParallel(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = lr_schedule(optimizer, cfg)
    step = 0
    resumed_from = 0
    curve: list[dict[str, float]] = []
    frozen = {"sha256": frozen_fingerprint(model), "parameters": sum(p.numel() for p in model.parameters() if not p.requires_grad),
              "source": (run or {}).get("frozen_source", f"random, seed {cfg.seed}")}
    if checkpoint is not None and checkpoint.is_file():
        state = read_checkpoint(checkpoint)
        differences = run_differences(state.get("run"), identity)
        if differences:
            raise UserError(f"checkpoint {checkpoint} belongs to another run ({'; '.join(differences[:3])}): "
                            "give --out another folder for a new run, or --restart to start this one afresh")
        load_checkpoint(checkpoint, model, state)
        model.to(device)
        step = resumed_from = state["step"]
        curve = list(state.get("curve", []))
        if step < cfg.steps:
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["rng"])  # dropout continues where it stopped
    generator = torch.Generator().manual_seed(cfg.seed)
    order = torch.randperm(len(dataset), generator=generator)
    store, unhook = capture_mask_feature(model)
    features = FrozenAudioFeatures.of(model, dataset, cfg.audio_blind, progress=on_features) if step < cfg.steps else None
    loss_value = float("nan")
    try:
        with features.serving() if features else contextlib.nullcontext():
            while step < cfg.steps:
                # the batch of step s is fixed by (seed, s), so a resumed run sees the same data
                start = (step * cfg.batch) % len(dataset)
                idx = [int(order[(start + k) % len(dataset)]) for k in range(cfg.batch)]
                flip = torch.rand(len(idx), generator=torch.Generator().manual_seed(cfg.seed * 100003 + step)) < 0.5
                idx, flip = idx[rank::world], flip[rank::world]  # this process's share of the global batch
                images, audios, masks = (t.to(device) for t in collate([dataset[i] for i in idx]))
                flip = flip.to(device)
                images = torch.where(flip[:, None, None, None], images.flip(-1), images)
                masks = torch.where(flip.view(-1, *[1] * (masks.dim() - 1)), masks.flip(-1), masks)
                if cfg.audio_blind:
                    audios = torch.zeros_like(audios)
                if features:
                    features.keys = idx
                logits = net(images, audios)
                loss = segmentation_loss(logits, masks, cfg.subset, store.get("mask_feature"))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()  # DDP averages the gradients of equal shares: the global batch's mean
                optimizer.step()
                scheduler.step()
                step += 1
                loss_value = global_mean(loss.detach()) if world > 1 else loss.item()
                if validate is not None and cfg.val_every and rank == 0 and (step % cfg.val_every == 0 or step == cfg.steps):
                    rng = torch.get_rng_state()
                    with features.paused() if features else contextlib.nullcontext():
                        curve.append({"step": step, **validate(model)})
                    torch.set_rng_state(rng)
                    model.train()
                    if cfg.freeze_batchnorm:
                        for module in model.modules():
                            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                                module.eval()
                if rank == 0 and checkpoint is not None and (step % cfg.checkpoint_every == 0 or step == cfg.steps):
                    state = {"format": CHECKPOINT_FORMAT, "model": trainable_state(model), "step": step, "run": identity,
                             "frozen": frozen, "config": vars(cfg), "curve": curve}
                    if step < cfg.steps:  # a finished run resumes nothing: its last checkpoint is the weights alone
                        state.update(optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(), rng=torch.get_rng_state())
                    save_checkpoint(checkpoint, state)
                if progress:
                    progress(step, loss_value)
    finally:
        unhook()
    return {"steps": step, "loss": loss_value, "resumed_from": resumed_from, **({"val_curve": curve} if curve else {})}
