"""The localisation's positive control: one attention site's map trained toward the sounding object's
mask (avsbench_kit/probes/supervise.py), part of the run's identity."""

import pytest
import torch

from avsbench_kit import UserError, build_model
from avsbench_kit.probes.supervise import SupervisedSite, Supervision
from avsbench_kit.recipe import DEFAULT, Recipe, run_identity, same_run

from helpers import run

SITE = "decoder.stages.2.layers.1.fusion*"


def test_the_option_parses_and_refuses_what_it_cannot_use():
    assert Supervision.parse(SITE) == Supervision(SITE, 1.0, 0)
    assert Supervision.parse(f"{SITE}:0.5:3") == Supervision(SITE, 0.5, 3)
    for bad in ("", f"{SITE}:heavy", f"{SITE}:-1", f"{SITE}:1:2:3"):
        with pytest.raises(UserError, match="SITE\\[:WEIGHT\\[:QUERY\\]\\]"):
            Supervision.parse(bad)
    with pytest.raises(UserError, match="not one of the model's audio-to-visual sites"):
        SupervisedSite(build_model("avesformer-r18", stages="TTT"), Supervision("visual_backbone.layer1*"))


def test_the_supervised_map_is_in_the_graph_and_its_loss_moves_the_fusion(small_inputs):
    torch.manual_seed(0)
    model = build_model("avesformer-r18").train()
    image, audio = small_inputs
    masks = torch.zeros(2, 64, 64)
    masks[:, 16:40, 8:30] = 1
    with SupervisedSite(model, Supervision(SITE, 2.0)) as supervised:
        model(image, audio)
    loss = supervised.loss(masks)
    assert 0 < loss.item() <= 2.0  # Dice in [0, 1], times the weight
    loss.backward()
    moved = {name for name, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert any("stages.2.layers.1.fusion" in name for name in moved)  # the supervised attention's projections get a gradient
    assert not any(name.startswith("mask_head") for name in moved)  # nothing after the map


def test_supervision_is_part_of_the_run_and_a_bad_option_is_one_line(capsys, tmp_path):
    plain, supervised = run_identity("synthetic:s4", DEFAULT, 0), run_identity("synthetic:s4", Recipe(supervise_attention=SITE), 0)
    assert not same_run(plain, supervised) and "supervise_attention" not in plain  # records made before it: unsupervised
    code, out, err = run(capsys, "train", "avesformer-r18", "--supervise-attention", f"{SITE}:x", "--out", str(tmp_path / "run"))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "SITE[:WEIGHT[:QUERY]]" in err
    assert not (tmp_path / "run").exists()
