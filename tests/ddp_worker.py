"""Run under torchrun by tests/test_ddp.py: a few DDP training steps, then each rank writes what it holds."""

import json
import sys

import torch

from avsbench_kit import build_model
from avsbench_kit.data.frames import SyntheticFrames
from avsbench_kit.engine import TrainConfig, train


def run(out_prefix: str, steps: int = 3) -> None:
    torch.manual_seed(0)
    model = build_model("avesformer-r18")
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0  # no random masks: the same computation in one or two processes
    data = SyntheticFrames("s4", "train", videos=10, size=64)
    losses = []
    train(model, data, TrainConfig(steps=steps, batch=4, freeze_batchnorm=True), None, lambda step, loss: losses.append(loss))
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    params = {name: p.detach().double().sum().item() for name, p in model.named_parameters()}
    with open(f"{out_prefix}.{rank}.json", "w") as f:
        json.dump({"losses": losses, "params": params}, f)


if __name__ == "__main__":
    run(sys.argv[1])
