"""The model factory: architectures, heads, initialisations, checkpoints and costs."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from alertlib.learn.models import (
    BTSBOT_CNN_CONFIG,
    AuthorsHead,
    BraaiVGG,
    BtsbotCNN,
    CheckpointError,
    count_parameters,
    create_model,
    model_cost,
    read_checkpoint_provenance,
    save_encoder_checkpoint,
)
from alertlib.learn.weights import WeightsNotAvailable

BTSBOT_ARCHITECTURES = Path(sys.prefix) / "lib" / "python3.11" / "site-packages" / "btsbot" / "architectures.py"


def _btsbot_architectures():
    """The btsbot package's architectures module, loaded alone (its package import needs heavy extras)."""
    if not BTSBOT_ARCHITECTURES.is_file():
        pytest.skip(f"btsbot reference not installed ({BTSBOT_ARCHITECTURES}); pip install --no-deps btsbot==2.0.7")
    spec = importlib.util.spec_from_file_location("btsbot_architectures", BTSBOT_ARCHITECTURES)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_btsbot_cnn_matches_the_packages_um_cnn():
    reference = _btsbot_architectures().um_cnn(dict(BTSBOT_CNN_CONFIG))
    ours = BtsbotCNN()
    assert count_parameters(ours) == count_parameters(reference)
    # Layer by layer, the same shapes in the same order.
    assert [p.shape for p in ours.parameters()] == [p.shape for p in reference.parameters()]
    # The convolutional part is the one the paper fixes: about 182k parameters, 3136 features at 63x63.
    assert count_parameters(ours.encoder) == 181_792
    assert ours.num_features == 3136
    # Same function once the weights agree.
    ours.load_state_dict(
        dict(zip(ours.state_dict().keys(), reference.state_dict().values(), strict=True)),
    )
    images = torch.randn(2, 3, 63, 63)
    assert torch.allclose(ours.eval()(images), reference.eval()(images), atol=1e-5)


def test_braai_vgg_shapes():
    model = BraaiVGG(num_outputs=1)
    assert model.num_features == 32 * 7 * 7
    assert model(torch.randn(4, 3, 63, 63)).shape == (4, 1)


@pytest.mark.parametrize("arch", ["convnext_pico", "resnet18", "btsbot_cnn", "braai_vgg"])
@pytest.mark.parametrize("num_outputs", [1, 4])
def test_factory_outputs(arch, num_outputs):
    model = create_model(arch, num_outputs=num_outputs)
    assert model.weights_source == "none" and model.init == "scratch" and model.input_size == 63
    assert model(torch.randn(2, 3, 63, 63)).shape == (2, num_outputs)


def test_timm_models_get_the_authors_head():
    model = create_model("convnext_pico", num_outputs=3)
    assert isinstance(model.head, AuthorsHead)
    linears = [m for m in model.head if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(512, 256), (256, 8), (8, 3)]
    dropout = [m for m in model.head if isinstance(m, torch.nn.Dropout)]
    assert dropout[0].p == 0.7
    # ConvNeXt keeps timm's pooled LayerNorm in the encoder.
    assert "head.norm.weight" in dict(model.encoder.named_parameters())


def test_input_resize_for_maxvit():
    model = create_model("resnet18", input_size=96)
    seen = []
    model.encoder.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape))
    model(torch.randn(1, 3, 63, 63))
    assert seen[0] == (1, 3, 96, 96)
    assert model_cost("maxvit_tiny_rw_224")["input_size"] == 224


def test_channels_last():
    model = create_model("resnet18", channels_last=True)
    conv = model.encoder.conv1.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()


def test_imagenet_weights_offline_fail_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("ALERTLIB_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(WeightsNotAvailable, match="--online"):
        create_model("resnet18.a1_in1k", init="imagenet")
    with pytest.raises(ValueError, match="no imagenet weights"):
        create_model("btsbot_cnn", init="imagenet")


def test_imagenet_weights_from_local_file(tmp_path, monkeypatch):
    """A local timm-format file (with its 1000-way classifier) is loaded into the encoder."""
    import timm
    from safetensors.torch import save_file

    monkeypatch.setenv("ALERTLIB_WEIGHTS", str(tmp_path))
    torch.manual_seed(1)
    donor = timm.create_model("resnet18", num_classes=1000)
    target = tmp_path / "imagenet" / "resnet18.safetensors"
    target.parent.mkdir()
    save_file(donor.state_dict(), str(target))
    model = create_model("resnet18", init="imagenet")
    assert model.weights_source == f"file:{target}"
    assert torch.equal(model.encoder.conv1.weight, donor.conv1.weight)
    # Zoobot encoders come without classifier; an explicit file works the same way.
    zoobot_file = tmp_path / "zoobot_resnet18.safetensors"
    save_file({k: v for k, v in donor.state_dict().items() if not k.startswith("fc.")}, str(zoobot_file))
    model = create_model("resnet18", init="galaxyzoo", weights_file=zoobot_file)
    assert model.init == "galaxyzoo" and torch.equal(model.encoder.layer4[1].conv2.weight, donor.layer4[1].conv2.weight)
    # A file for another architecture is refused with a clear message.
    with pytest.raises(CheckpointError, match="does not fit"):
        create_model("convnext_pico", init="imagenet", weights_file=target)


def test_own_checkpoint_round_trip_and_provenance(tmp_path):
    torch.manual_seed(0)
    pretrained = create_model("convnext_pico", num_outputs=34)
    path = save_encoder_checkpoint(pretrained, tmp_path / "encoder.pt", {"pretrain_init": "galaxy_sim", "epochs": 3})
    model = create_model("convnext_pico", init="galaxy_sim", checkpoint=path)
    assert model.weights_source == f"checkpoint:{path.resolve()}"
    assert model.pretrain_provenance["epochs"] == 3
    for name, tensor in pretrained.encoder.state_dict().items():
        assert torch.equal(model.encoder.state_dict()[name], tensor)
    assert read_checkpoint_provenance(path)["arch"] == "convnext_pico"
    # A checkpoint can never be labelled as another pre-training, nor loaded into another architecture.
    with pytest.raises(CheckpointError, match="pre-trained as 'galaxy_sim'"):
        create_model("convnext_pico", init="synthetic", checkpoint=path)
    with pytest.raises(CheckpointError, match="convnext_pico encoder"):
        create_model("resnet18", init="galaxy_sim", checkpoint=path)
    with pytest.raises(CheckpointError, match="needs checkpoint"):
        create_model("convnext_pico", init="synthetic")


def test_model_cost_counts():
    cost = model_cost("btsbot_cnn")
    assert cost["params"] == count_parameters(BtsbotCNN())
    # Full-resolution 5x5 convolutions: about 0.26 GMAC per alert (STUDY_NOTES.md).
    assert 0.25e9 < cost["macs"] < 0.27e9
    # The standard ConvNeXt-pico at 63x63 needs fewer multiply-adds than the custom CNN.
    assert model_cost("convnext_pico")["macs"] < cost["macs"]


def test_models_cli_json():
    result = subprocess.run(
        [sys.executable, "-m", "alertlib", "models", "--json", "resnet34"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    rows = {row["arch"]: row for row in json.loads(result.stdout)}
    assert {"btsbot_cnn", "braai_vgg", "convnext_pico", "maxvit_tiny_rw_224", "resnet34"} <= rows.keys()
    assert rows["resnet34"]["params"] > rows["btsbot_cnn"]["params"] > 0
