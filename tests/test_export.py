"""alertlib export: every study architecture as ONNX, scored by onnxruntime as torch scores it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from alertlib.cli import main

ARCHS = ("btsbot_cnn", "braai_vgg", "resnet18", "convnext_pico", "mobilenetv3_small_100", "maxvit_tiny_rw_224")
SLOW_ARCH = "maxvit_tiny_rw_224"  # 224x224 input: small batches
TOLERANCE = 1e-4  # max absolute difference, float32


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    torch.set_num_threads(1)


def _calibrate_batch_norm(model, config: dict, triplets: np.ndarray) -> None:
    """Batch-norm statistics from ``triplets`` (no gradients; the weights stay untrained).

    With fresh statistics (mean 0, variance 1) the small L2-normalised inputs fade through some
    networks (ResNet, MobileNet) until the logit barely depends on the input, and a comparison of
    logits would prove little. Variances are floored at a tenth of their layer's mean, so that a
    channel that hardly varies over a few stamps does not blow up on others.
    """
    import torch

    from alertlib.learn.inference import triplet_batches

    norms = [module for module in model.modules() if isinstance(module, torch.nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.momentum = None  # a plain average over the calibration batch
    with torch.no_grad():
        model.train()(torch.from_numpy(next(triplet_batches(triplets, config, len(triplets)))))
        for norm in norms:
            norm.running_var.clamp_(min=0.1 * float(norm.running_var.mean()))
    model.eval()


def _checkpoint(folder, arch: str, seed: int = 3, class_names=None, calibration=None):
    """An untrained, seeded model saved as fine-tuning saves one (as tests/test_scoring.py does)."""
    import torch

    from alertlib.learn.finetune import full_config, save_model
    from alertlib.learn.models import create_model

    torch.manual_seed(seed)
    crop = None if arch == SLOW_ARCH else 33  # MaxViT sees the whole stamp, resized to 224x224
    model = create_model(arch, "scratch", num_outputs=len(class_names) if class_names else 1)
    path = folder / "model.pt"
    config = full_config({"data": str(folder), "arch": arch, "crop": crop, "seed": seed})
    _calibrate_batch_norm(model, config, _random_triplets(6, seed=9) if calibration is None else calibration)
    save_model(path, model, config, {"run_id": f"test-{arch}", "class_names": class_names, "pretrain_provenance": {}})
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(arch, triplets for batch norm, their kind) -> (checkpoint, ONNX file), made once per arch and kind."""
    from alertlib.learn.export import export_onnx

    made = {}

    def get(arch: str, calibration: np.ndarray | None = None, kind: str = "random"):
        if (arch, kind) not in made:
            folder = tmp_path_factory.mktemp(f"{arch}-{kind}")
            checkpoint = _checkpoint(folder, arch, calibration=calibration)
            made[arch, kind] = (checkpoint, export_onnx(checkpoint, folder / "model.onnx"))
        return made[arch, kind]

    return get


def _random_triplets(n: int, seed: int = 0) -> np.ndarray:
    """Random stamps (n, 63, 63, 3), each channel L2-normalised as the release layout stores them."""
    triplets = np.random.default_rng(seed).normal(size=(n, 63, 63, 3)).astype(np.float32)
    return triplets / np.sqrt((triplets**2).sum(axis=(1, 2), keepdims=True))


def _compare(checkpoint, onnx_path, triplets) -> float:
    """Max |onnxruntime - torch| over the logits of all triplets at once and of the first one alone.

    Checks it against :data:`TOLERANCE` and against the spread of the logits over the triplets (an
    output that ignored its input would match trivially).
    """
    import torch

    from alertlib.learn.export import load_onnx
    from alertlib.learn.inference import load_model, triplet_batches

    model, session = load_model(checkpoint), load_onnx(onnx_path).session
    batch = next(triplet_batches(triplets, model.config, len(triplets)))
    with torch.inference_mode():
        expected = model(torch.from_numpy(batch)).numpy()
    whole = session.run(["logits"], {"images": batch})[0]
    one = session.run(["logits"], {"images": batch[:1]})[0]
    assert whole.shape == expected.shape and one.shape == (1, expected.shape[1])
    difference = float(max(np.abs(whole - expected).max(), np.abs(one - expected[:1]).max()))
    spread = float(np.ptp(expected[:, 0]))
    print(f"{checkpoint.parent.name}: max abs difference {difference:.2e}, logits spread {spread:.2e}")
    assert difference <= TOLERANCE and spread > 1e-4 and difference <= 0.01 * spread, (difference, spread)
    return difference


@pytest.mark.parametrize("arch", ARCHS)
def test_onnx_matches_torch_at_batch_1_and_5(exported, arch):
    checkpoint, onnx_path = exported(arch)
    triplets = _random_triplets(2 if arch == SLOW_ARCH else 5)
    _compare(checkpoint, onnx_path, triplets)


@pytest.mark.realdata
@pytest.mark.parametrize("arch", ARCHS)
def test_onnx_matches_torch_on_real_triplets(exported, real_folder, arch):
    from alertlib.core.vocab import SPLITS
    from alertlib.io.release import read_split

    folder = real_folder("bts_release_sample")
    splits = [np.asarray(read_split(folder, split, mmap=False).triplets, dtype=np.float32) for split in SPLITS]
    checkpoint, onnx_path = exported(arch, np.concatenate(splits), kind="real")
    triplets = splits[-1]  # the test split
    _compare(checkpoint, onnx_path, triplets[: 2 if arch == SLOW_ARCH else 5])


def test_batch_dimension_is_dynamic_and_the_metadata_says_how_to_feed_it(exported):
    from alertlib.learn.export import load_onnx

    for arch in ARCHS:
        model = load_onnx(exported(arch)[1])
        assert isinstance(model.session.get_inputs()[0].shape[0], str), arch  # a named, free dimension
        meta = model.metadata
        assert meta["input_layout"] == "NCHW" and meta["normalisation"] == "l2" and meta["stamp_size"] == "63"
        assert json.loads(meta["channels"]) == ["science", "reference", "difference"]
        assert meta["output"] == "logits" and meta["output_activation"] == "sigmoid"
        assert meta["crop"] == ("" if arch == SLOW_ARCH else "33") and meta["arch"] == arch
        assert meta["run_id"] == f"test-{arch}" and len(meta["checkpoint_sha256"]) == 64
    assert load_onnx(exported(SLOW_ARCH)[1]).metadata["encoder_input_size"] == "224"


@pytest.mark.parametrize("class_names", [None, ["SN Ia", "SN II", "other"]])
def test_score_onnx_gives_the_scores_of_the_checkpoint(tmp_path, class_names, capsys):
    from alertlib.io.release import write_split

    data = tmp_path / "alerts"
    candidates = pd.DataFrame({"objectId": [f"ZTF{i}" for i in range(7)], "candid": range(7), "label": 0})
    write_split(data, "test", "v1", _random_triplets(7, seed=1), candidates)
    checkpoint = _checkpoint(tmp_path, "btsbot_cnn", class_names=class_names)
    onnx_path = tmp_path / "model.onnx"
    assert main(["export", "--checkpoint", str(checkpoint), "--out", str(onnx_path)]) == 0
    assert "btsbot_cnn" in capsys.readouterr().out
    tables = {}
    for flag, model in (("--checkpoint", checkpoint), ("--onnx", onnx_path)):
        out = tmp_path / f"scores{flag}.parquet"
        assert main(["score", str(data), flag, str(model), "--out", str(out), "--workers", "1"]) == 0
        tables[flag] = pd.read_parquet(out)
    torch_table, onnx_table = tables["--checkpoint"], tables["--onnx"]
    assert list(torch_table.columns) == list(onnx_table.columns) and len(onnx_table) == 7
    scores = [c for c in torch_table.columns if c == "score" or c.startswith("prob_")]
    assert len(scores) == (len(class_names) if class_names else 1)
    assert np.abs(torch_table[scores].to_numpy() - onnx_table[scores].to_numpy()).max() <= TOLERANCE
    same = ["objectId", "candid", "arch", "init", "seed"] + (["predicted"] if class_names else [])
    pd.testing.assert_frame_equal(torch_table[same], onnx_table[same])


def test_a_missing_checkpoint_exits_2_with_one_line(tmp_path, capsys):
    missing = tmp_path / "nowhere" / "model.pt"
    assert main(["export", "--checkpoint", str(missing), "--out", str(tmp_path / "model.onnx")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and str(missing) in error and "alertlib finetune" in error
    assert main(["score", str(tmp_path), "--onnx", str(tmp_path / "none.onnx"), "--out", str(tmp_path / "s.csv")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "alertlib export" in error


def test_a_missing_onnx_package_is_named_with_the_fix(exported, tmp_path, monkeypatch):
    import sys

    from alertlib.core.errors import UserError
    from alertlib.learn.export import export_onnx

    checkpoint, _ = exported("btsbot_cnn")
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(UserError, match="pip install onnx=="):
        export_onnx(checkpoint, tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()
