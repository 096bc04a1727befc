"""Training and evaluation, one frame at a time (T=1).

The paper's recipe (appendix A.2.1): AdamW, polynomial learning-rate decay (power 0.9), VGGish
frozen, horizontal flips, the losses of ``avsbench_kit.losses``. Checkpoints
(``avsbench_kit.checkpoints``) are written every few steps and a run resumes from its last one.
The defaults of a run live in ``avsbench_kit.recipe``.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

from avsbench_kit.checkpoints import (
    CHECKPOINT_FORMAT,
    frozen_fingerprint,
    load_checkpoint,
    read_checkpoint,
    run_differences,
    save_checkpoint,
    trainable_state,
)
from avsbench_kit.data.frames import collate
from avsbench_kit.errors import UserError
from avsbench_kit.losses import segmentation_loss
from avsbench_kit.metrics import BinaryMeter, SemanticMeter
from avsbench_kit.probes.supervise import SupervisedSite, Supervision
from avsbench_kit.recipe import DEFAULT


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
    """One run as the engine sees it; the defaults are the recipe's (``avsbench_kit.recipe.DEFAULT``)."""

    subset: str = "s4"
    steps: int = DEFAULT.steps
    batch: int = DEFAULT.batch
    lr: float = DEFAULT.lr
    weight_decay: float = DEFAULT.weight_decay
    seed: int = 0
    audio_blind: bool = False
    checkpoint_every: int = DEFAULT.checkpoint_every
    freeze_batchnorm: bool = False  # keep BatchNorm statistics fixed (eval mode) while training
    device: str = "cpu"
    warmup: int = DEFAULT.warmup  # linear learning-rate warmup over the first steps, then the polynomial decay
    val_every: int = DEFAULT.val_every  # validate every N steps (and at the end): the run's validation curve; 0 = never
    supervise_attention: str | None = None  # SITE[:WEIGHT[:QUERY]]: that site's map trained toward the mask (avsbench_kit.probes.supervise)


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
    """A checkpoint's identity: the run's (``described``: ``avsbench_kit.recipe.run_identity``, the spec,
    where the frozen weights come from) and what only the engine knows. A checkpoint resumes only a run
    with the same identity (``checkpoints.run_differences``)."""
    keys = ("subset", "steps", "batch", "lr", "weight_decay", "seed", "audio_blind", "freeze_batchnorm", "warmup", "supervise_attention")
    return {**described, **{k: getattr(cfg, k) for k in keys}, "world_size": world}


def training_mode(model: nn.Module, freeze_batchnorm: bool) -> None:
    """``model.train()``, with the BatchNorm layers kept in eval mode (fixed statistics) if asked."""
    model.train()
    if freeze_batchnorm:
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()


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
    training_mode(model, cfg.freeze_batchnorm)
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
    segments = [{"from_step": 0, "threads": torch.get_num_threads()}]  # the thread count of each stretch of the run
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
        segments = [*state.get("segments", [{"from_step": 0, "threads": None}]), {"from_step": step, "threads": torch.get_num_threads()}]
        if step < cfg.steps:
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["rng"])  # dropout continues where it stopped
    generator = torch.Generator().manual_seed(cfg.seed)
    order = torch.randperm(len(dataset), generator=generator)
    store, unhook = capture_mask_feature(model)
    supervised = SupervisedSite(model, Supervision.parse(cfg.supervise_attention)) if cfg.supervise_attention else None
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
                with supervised if supervised else contextlib.nullcontext():
                    logits = net(images, audios)
                loss = segmentation_loss(logits, masks, cfg.subset, store.get("mask_feature"))
                if supervised:
                    loss = loss + supervised.loss(masks)
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
                    training_mode(model, cfg.freeze_batchnorm)
                if rank == 0 and checkpoint is not None and (step % cfg.checkpoint_every == 0 or step == cfg.steps):
                    state = {"format": CHECKPOINT_FORMAT, "model": trainable_state(model), "step": step, "run": identity, "segments": segments,
                             "frozen": frozen, "config": vars(cfg), "curve": curve}
                    if step < cfg.steps:  # a finished run resumes nothing: its last checkpoint is the weights alone
                        state.update(optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(), rng=torch.get_rng_state())
                    save_checkpoint(checkpoint, state)
                if progress:
                    progress(step, loss_value)
    finally:
        unhook()
    return {"steps": step, "loss": loss_value, "resumed_from": resumed_from, "segments": segments, **({"val_curve": curve} if curve else {})}
