"""Weight loading on files the tests make: VGGish from a .pth path, ResNets from a path or the torch cache."""

import warnings

import pytest
import torch
import torchvision

from avsbench_kit import UserError, build_model
from avsbench_kit.models.backbones import ResNetPyramid
from avsbench_kit.models.vggish import RandomWeightsWarning, VGGish

# Key names of the usual vggish-10086976.pth (torchvggish layout)
VGGISH_KEYS = [f"features.{i}.{k}" for i in (0, 3, 6, 8, 11, 13) for k in ("weight", "bias")] + [
    f"embeddings.{i}.{k}" for i in (0, 2, 4) for k in ("weight", "bias")
]


@pytest.fixture
def vggish_file(tmp_path):
    torch.manual_seed(3)
    state = {k: v.clone().normal_() for k, v in VGGish().state_dict().items()}
    assert sorted(state) == sorted(VGGISH_KEYS)
    state["pproc._pca_matrix"] = torch.zeros(128, 128)  # present in some exports; PCA stays off
    path = tmp_path / "vggish-10086976.pth"
    torch.save(state, path)
    return path, state


def test_vggish_loads_a_state_dict_and_is_frozen(vggish_file):
    path, state = vggish_file
    with warnings.catch_warnings():
        warnings.simplefilter("error", RandomWeightsWarning)  # no random-weights notice with weights
        net = VGGish(str(path))
    assert net.pretrained
    torch.testing.assert_close(net.embeddings[4].weight, state["embeddings.4.weight"])
    assert not any(p.requires_grad for p in net.parameters())


def test_vggish_flattens_channels_last():
    """The 12288-vector is [6, 4, 512] channels-last, as the TF original."""
    net = VGGish()
    x = torch.randn(1, 1, 96, 64)
    feats = net.features(x)
    expected = net.embeddings(feats.permute(0, 2, 3, 1).reshape(1, -1))
    torch.testing.assert_close(net(x), expected)
    assert feats.shape == (1, 512, 6, 4)


def test_random_vggish_says_so():
    with pytest.warns(RandomWeightsWarning, match="RANDOM weights"):
        VGGish()


def test_model_uses_the_vggish_file(vggish_file):
    path, state = vggish_file
    model = build_model("avesformer-r18", vggish_weights=str(path))
    torch.testing.assert_close(model.audio_backbone.features[0].weight, state["features.0.weight"])


@pytest.mark.parametrize(
    "content,message",
    [
        (b"not a checkpoint", "not a readable PyTorch state dict"),
        ({"features.0.weight": torch.zeros(64, 1, 3, 3)}, "keys do not match"),
        ("shape", "does not fit the network"),
    ],
)
def test_bad_vggish_files(tmp_path, vggish_file, content, message):
    path = tmp_path / "bad.pth"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "shape":
        state = dict(vggish_file[1])
        state["embeddings.4.weight"] = torch.zeros(64, 4096)
        torch.save(state, path)
    else:
        torch.save(content, path)
    with pytest.raises(UserError, match=message):
        VGGish(str(path))


def test_missing_weight_file():
    with pytest.raises(UserError, match="no such file"):
        build_model("avesformer-r18", vggish_weights="/nonexistent/vggish.pth")


def test_resnet_from_state_dict_path(tmp_path):
    ref = torchvision.models.resnet18()
    torch.save(ref.state_dict(), tmp_path / "r18.pth")
    pyramid = ResNetPyramid("resnet18", str(tmp_path / "r18.pth"))
    torch.testing.assert_close(pyramid.layer4[1].conv2.weight, ref.layer4[1].conv2.weight)
    x = torch.randn(1, 3, 64, 64)
    ref.eval(), pyramid.eval()
    with torch.no_grad():
        expected = ref.layer4(ref.layer3(ref.layer2(ref.layer1(ref.maxpool(ref.relu(ref.bn1(ref.conv1(x))))))))
        torch.testing.assert_close(pyramid(x)[3], expected)
    assert [f.shape[1] for f in pyramid(x)] == [64, 128, 256, 512]
    assert [f.shape[-1] for f in pyramid(x)] == [16, 8, 4, 2]  # strides 4, 8, 16, 32


def test_imagenet_weights_come_from_the_torch_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(UserError, match="not in the torch cache"):
        ResNetPyramid("resnet18", "imagenet")
    cached = torchvision.models.resnet18()
    url = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True, exist_ok=True)
    torch.save(cached.state_dict(), tmp_path / "hub" / "checkpoints" / url.rsplit("/", 1)[-1])
    pyramid = ResNetPyramid("resnet18", "imagenet")
    torch.testing.assert_close(pyramid.stem[0].weight, cached.conv1.weight)


def test_random_vggish_keeps_its_scale():
    """He-initialised random features are usable: the embedding of log-mel input is not vanishingly small."""
    torch.manual_seed(0)
    with pytest.warns(RandomWeightsWarning):
        net = VGGish()
    emb = net(torch.randn(4, 1, 96, 64))
    assert emb.norm(dim=1).mean() > 1.0
