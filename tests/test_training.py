"""Training: losses, schedule, synthetic corpus, determinism, resumable jobs, end to end."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.special import gammaln

from alertlib.io.preprocess import l2_normalise_stack
from alertlib.io.release import write_split
from alertlib.io.schema import load_schema
from alertlib.learn.losses import DirichletMultinomialLoss, dirichlet_multinomial_nll
from alertlib.learn.synthetic import FractalDataset
from alertlib.learn.training import warmup_cosine_schedule

FAST = {"progress": False, "batch_size": 32}


def make_alerts(folder, n_sources=60, alerts_per_source=3, seed=0, version="t1"):
    """A tiny alert dataset in the release layout: positives have a compact source in the difference."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:63, :63]
    for split, count in (("train", n_sources), ("val", n_sources // 3), ("test", n_sources // 3)):
        rows, images = [], []
        for source in range(count):
            label = int(rng.random() < 0.4)
            peak = rng.uniform(17.0, 18.4) if label else rng.uniform(18.6, 20.0)
            width = 1.5 if label else 6.0
            for _ in range(alerts_per_source):
                image = rng.normal(0.0, 1.0, (63, 63, 3)).astype(np.float32)
                image[..., 2] += 8.0 * np.exp(-((yy - 31) ** 2 + (xx - 31) ** 2) / (2 * width**2))
                images.append(image)
                rows.append(
                    {
                        "objectId": f"ZTF{split}{source:04d}",
                        "candid": len(rows) + 10_000 * source,
                        "label": label,
                        "source_set": ("dims", "trues")[label] if source % 3 else "vars",
                        "magpsf": peak + rng.uniform(0.0, 0.8),
                        "peakmag": peak,
                    }
                )
        triplets = np.moveaxis(l2_normalise_stack(np.moveaxis(np.asarray(images), -1, 1)), 1, -1)
        write_split(folder, split, version, triplets, pd.DataFrame(rows))
    return folder


def make_galaxy_catalog(folder, n=48, size=48, seed=0):
    """PNG galaxies and a DECaLS-DR5 vote catalog: round blobs vote 'smooth', elongated ones 'featured'."""
    from PIL import Image

    schema = load_schema()
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[:size, :size] - size / 2
    rows = []
    for index in range(n):
        smooth = index % 2 == 0
        ratio = 1.0 if smooth else 0.3
        image = np.exp(-(xx**2 + (yy / ratio) ** 2) / 40.0)
        pixels = 255 * np.clip(image[..., None] * [1.0, 0.8, 0.6] + rng.normal(0, 0.02, (size, size, 3)), 0, 1)
        path = folder / f"g{index}.png"
        Image.fromarray(pixels.astype(np.uint8)).save(path)
        votes = dict.fromkeys(schema.answer_columns, 0)
        first = schema.question("smooth-or-featured")
        votes[schema.column(first.name, "smooth")] = 30 if smooth else 5
        votes[schema.column(first.name, "featured-or-disk")] = 5 if smooth else 30
        votes[schema.column("merging", "none")] = 35
        if not smooth:
            votes[schema.column("disk-edge-on", "yes")] = 25
            votes[schema.column("disk-edge-on", "no")] = 5
        rows.append({"id_str": f"g{index}", "file_loc": path.name, **votes})
    pd.DataFrame(rows).to_csv(folder / "catalog.csv", index=False)
    return folder / "catalog.csv"


def test_dirichlet_multinomial_matches_the_formula():
    counts = torch.tensor([[3.0, 1.0, 0.0]])
    alpha = torch.tensor([[2.0, 1.5, 4.0]])
    n, a = 4.0, 7.5
    expected = -(
        gammaln(n + 1)
        - sum(gammaln(k + 1) for k in (3, 1, 0))
        + gammaln(a)
        - gammaln(n + a)
        + sum(gammaln(k + al) - gammaln(al) for k, al in ((3, 2.0), (1, 1.5), (0, 4.0)))
    )
    assert float(dirichlet_multinomial_nll(counts, alpha)) == pytest.approx(expected, rel=1e-5)


def test_questions_without_votes_contribute_nothing():
    loss = DirichletMultinomialLoss()
    schema = loss.schema
    counts = torch.zeros(2, loss.num_outputs)
    counts[:, schema.question_slices[0]] = torch.tensor([20.0, 10.0, 2.0])
    logits = torch.randn(2, loss.num_outputs)
    per_question = loss.per_question(logits, counts)
    assert torch.all(per_question[:, 1:] == 0) and torch.all(per_question[:, 0] > 0)
    # Changing the outputs of unasked questions changes nothing.
    other = logits.clone()
    other[:, 3:] += 5.0
    assert torch.equal(loss(logits, counts), loss(other, counts))
    # Matching the vote fractions lowers the loss.
    aligned = torch.zeros(2, loss.num_outputs)
    aligned[:, 0:3] = torch.tensor([3.0, 0.0, -3.0])
    assert loss(aligned, counts) < loss(-aligned, counts)


def _schedule_factors(warmup: int, total: int) -> list[float]:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    schedule = warmup_cosine_schedule(optimizer, warmup, total)
    factors = []
    for _ in range(total + 1):
        factors.append(optimizer.param_groups[0]["lr"] / 2.0)
        optimizer.step()
        schedule.step()
    return factors


def test_warmup_cosine_schedule():
    factors = _schedule_factors(20, 100)
    assert factors[0] == pytest.approx(0.01) and factors[20] == pytest.approx(1.0)
    assert factors[10] == pytest.approx(0.505)
    assert factors[100] == pytest.approx(0.01)
    assert factors[60] == pytest.approx(0.01 + 0.99 * 0.5)
    assert all(a <= b for a, b in zip(factors[:20], factors[1:21], strict=True))


def test_fractal_corpus_is_seeded_and_labelled():
    first, again = FractalDataset(4, 3, seed=1), FractalDataset(4, 3, seed=1)
    image, label = first[5]
    assert image.shape == (3, 63, 63) and int(label) == 1
    assert torch.equal(image, again[5][0])
    assert torch.allclose(image.flatten(1).norm(dim=1), torch.ones(3))
    assert not torch.equal(image, FractalDataset(4, 3, seed=2)[5][0])
    first.set_epoch(1)
    assert not torch.equal(image, first[5][0])  # a fresh draw each epoch
    assert FractalDataset.label == "synthetic"


def test_finetune_is_deterministic_and_resumable(tmp_path):
    from alertlib.learn.finetune import run_finetune

    data = make_alerts(tmp_path / "alerts")
    config = {"data": str(data), "arch": "braai_vgg", "epochs": 2, **FAST}
    first = run_finetune(config, tmp_path / "a")
    second = run_finetune(config, tmp_path / "b")
    assert np.allclose(first["value"].to_numpy(), second["value"].to_numpy(), equal_nan=True) or (
        first.drop(columns=["wall_time_s", "value"]).equals(second.drop(columns=["wall_time_s", "value"]))
        and np.allclose(
            first[~first.metric.str.contains("per_s")]["value"],
            second[~second.metric.str.contains("per_s")]["value"],
            equal_nan=True,
        )
    )
    for name in ("results.parquet", "model.pt", "predictions_test.parquet", "curves.csv"):
        assert (tmp_path / "a" / name).is_file()
    predictions = pd.read_parquet(tmp_path / "a" / "predictions_test.parquet")
    assert list(predictions.columns[:4]) == ["objectId", "candid", "label", "score"] and len(predictions) == 60
    curves = pd.read_csv(tmp_path / "a" / "curves.csv")
    assert list(curves["epoch"]) == [0, 1] and curves["val_loss"].notna().all()
    row = first.iloc[0]
    assert row["arch"] == "braai_vgg" and row["init"] == "scratch" and row["weights_source"] == "none"
    assert {"roc_auc", "bts_p1_completeness", "prod_p2_purity_18.25-18.50"} <= set(first["metric"])
    # Resumable: the same run is read back, not retrained.
    mtime = (tmp_path / "a" / "model.pt").stat().st_mtime_ns
    again = run_finetune(config, tmp_path / "a")
    assert again.equals(first) and (tmp_path / "a" / "model.pt").stat().st_mtime_ns == mtime


def test_multiclass_finetune(tmp_path):
    from alertlib.learn.finetune import run_finetune

    data = make_alerts(tmp_path / "alerts", n_sources=30)
    table = run_finetune({"data": str(data), "arch": "braai_vgg", "task": "multiclass", "epochs": 1, **FAST}, tmp_path)
    metrics = set(table["metric"])
    assert {"macro_f1", "accuracy_trues", "accuracy_dims", "accuracy_vars"} <= metrics
    assert table.iloc[0]["task"] == "multiclass"


def test_early_stopping_with_relative_improvement(tmp_path):
    """A learning rate of zero cannot improve the validation loss: training stops after the patience."""
    from alertlib.learn.finetune import run_finetune

    data = make_alerts(tmp_path / "alerts", n_sources=15)
    config = {"data": str(data), "arch": "braai_vgg", "epochs": 20, "lr": 0.0, "patience": 2, **FAST}
    table = run_finetune(config, tmp_path / "out").set_index("metric")["value"]
    assert table["epochs_trained"] == 3  # epoch 0 sets the reference, then 2 epochs without improvement
    assert table["best_epoch"] == 0


def test_pretrain_on_galaxy_votes_then_finetune_end_to_end(tmp_path):
    """Pre-train on a tiny galaxy vote catalog, fine-tune on tiny alerts: the model learns (AUC well above 0.5)."""
    from alertlib.learn.finetune import run_finetune
    from alertlib.learn.models import read_checkpoint_provenance
    from alertlib.learn.pretrain import run_pretrain

    catalog = make_galaxy_catalog(tmp_path / "galaxies")
    pre = run_pretrain(
        {"corpus": "galaxy", "catalog": str(catalog), "arch": "braai_vgg", "epochs": 3, "lr": 1e-3, **FAST},
        tmp_path / "pre",
    ).set_index("metric")["value"]
    assert pre["epochs_trained"] == 3 and 0.0 <= pre["val_vote_fraction_mae"] < 0.5
    provenance = read_checkpoint_provenance(tmp_path / "pre" / "encoder.pt")
    assert provenance["pretrain_init"] == "galaxy_votes" and provenance["corpus"] == "galaxy"
    data = make_alerts(tmp_path / "alerts", n_sources=80, alerts_per_source=2)
    config = {
        "data": str(data),
        "arch": "braai_vgg",
        "init": "galaxy_votes",
        "checkpoint": str(tmp_path / "pre" / "encoder.pt"),
        "epochs": 8,
        "lr": 3e-3,
        **FAST,
    }
    table = run_finetune(config, tmp_path / "ft")
    values = table.set_index("metric")["value"]
    assert table.iloc[0]["weights_source"].startswith("checkpoint:")
    assert values["roc_auc"] > 0.8, values["roc_auc"]


def test_synthetic_pretraining_writes_a_synthetic_checkpoint(tmp_path):
    """The fractal corpus pre-trains and its checkpoint is labelled synthetic, never ImageNet.

    (Whether it *learns* the fractal classes at these tiny sizes is not asserted: at 4 classes x 24
    images and a few epochs a scratch network stays at chance; see the issue report.)
    """
    from alertlib.learn.models import create_model, read_checkpoint_provenance
    from alertlib.learn.pretrain import run_pretrain

    config = {"corpus": "synthetic", "arch": "braai_vgg", "n_classes": 4, "n_per_class": 8, "epochs": 1, **FAST}
    table = run_pretrain(config, tmp_path).set_index("metric")["value"]
    assert math.isfinite(table["best_val_loss"]) and table["train_images"] == 32
    assert read_checkpoint_provenance(tmp_path / "encoder.pt")["pretrain_init"] == "synthetic"
    model = create_model("braai_vgg", init="synthetic", checkpoint=tmp_path / "encoder.pt")
    assert model.init == "synthetic" and "imagenet" not in model.weights_source
