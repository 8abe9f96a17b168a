"""The training-side datasets: BTS release loader, training-set choices, PyTorch datasets, galaxy catalogs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from alertlib.io.catalogs import GZ1_CLASSES, read_galaxy_catalog, read_gz1_catalog, vote_columns
from alertlib.io.release import LayoutError, write_split
from alertlib.io.schema import load_schema
from alertlib.learn.datasets import (
    GalaxyDataset,
    TripletDataset,
    input_normalisation,
    load_bts,
    normalise_image,
    select_training_rows,
)


def _tiny_release(folder, n_sources=20, alerts_per_source=(1, 7), seed=0):
    """A small dataset in the release layout: sources with a varying number of alerts each."""
    rng = np.random.default_rng(seed)
    for split_index, split in enumerate(("train", "val", "test")):
        counts = rng.integers(*alerts_per_source, n_sources)
        object_ids = np.repeat([f"ZTF{split}{i:04d}" for i in range(n_sources)], counts)
        n = len(object_ids)
        candidates = pd.DataFrame(
            {
                "objectId": object_ids,
                "candid": np.arange(n) + 1000 * split_index,
                "label": rng.integers(0, 2, n),
                "magpsf": rng.uniform(16, 20, n),
            }
        )
        triplets = rng.normal(size=(n, 63, 63, 3)).astype(np.float32)
        write_split(folder, split, "vtest", triplets, candidates)
    return folder


@pytest.mark.realdata
def test_load_bts_real_release_sample(real_folder):
    splits = load_bts(real_folder("bts_release_sample"))
    assert {k: len(v) for k, v in splits.items()} == {"train": 3, "val": 3, "test": 3}
    train = splits["train"]
    assert train.version == "v10_N100_programid1"
    assert train.triplets.shape == (3, 63, 63, 3)
    # Each cutout of the release is L2-normalised.
    norms = np.sqrt((np.asarray(train.triplets, dtype=np.float64) ** 2).sum(axis=(1, 2)))
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)
    dataset = TripletDataset.from_split(train)
    image, label = dataset[0]
    assert image.shape == (3, 63, 63) and image.dtype == torch.float32
    assert label.dtype == torch.float32 and float(label) == float(train.candidates["label"].iloc[0])
    np.testing.assert_array_equal(image.numpy(), np.moveaxis(np.asarray(train.triplets[0], np.float32), -1, 0))


def test_load_bts_caps_and_fractions_only_training(tmp_path):
    folder = _tiny_release(tmp_path)
    whole = load_bts(folder)
    capped = load_bts(folder, n_max=2, train_fraction=0.5, seed=3)
    assert len(capped["val"]) == len(whole["val"]) and len(capped["test"]) == len(whole["test"])
    train = capped["train"]
    per_source = train.candidates.groupby("objectId").size()
    assert per_source.max() <= 2
    assert len(per_source) == 10  # half of 20 sources
    # Rows keep their triplets: the candid of each kept row points at the same triplet as before.
    original = whole["train"]
    positions = original.candidates.reset_index().set_index("candid").loc[train.candidates["candid"], "index"]
    np.testing.assert_array_equal(train.triplets, np.asarray(original.triplets)[positions.to_numpy()])
    again = load_bts(folder, n_max=2, train_fraction=0.5, seed=3)
    assert again["train"].candidates["candid"].tolist() == train.candidates["candid"].tolist()
    other = load_bts(folder, n_max=2, train_fraction=0.5, seed=4)
    assert other["train"].candidates["candid"].tolist() != train.candidates["candid"].tolist()


def test_training_fractions_nest_and_cap_is_per_source():
    object_ids = np.repeat([f"S{i}" for i in range(200)], np.arange(200) % 9 + 1)
    rows = {f: select_training_rows(object_ids, n_max=3, train_fraction=f, seed=1) for f in (0.1, 0.5, 1.0)}
    sources = {f: set(object_ids[r]) for f, r in rows.items()}
    assert [len(sources[f]) for f in (0.1, 0.5, 1.0)] == [20, 100, 200]
    assert sources[0.1] <= sources[0.5] <= sources[1.0]
    # A source keeps the same alerts whatever the fraction.
    assert set(rows[0.1]) <= set(rows[0.5]) <= set(rows[1.0])
    counts = pd.Series(object_ids[rows[1.0]]).value_counts()
    expected = pd.Series(object_ids).value_counts().clip(upper=3)
    pd.testing.assert_series_equal(counts.sort_index(), expected.sort_index(), check_names=False)
    with pytest.raises(ValueError, match="train_fraction"):
        select_training_rows(object_ids, train_fraction=0.0)
    with pytest.raises(ValueError, match="n_max"):
        select_training_rows(object_ids, n_max=0)


def test_load_bts_bad_folder_says_what_is_wrong(tmp_path):
    with pytest.raises(LayoutError, match="not the BTS release layout"):
        load_bts(tmp_path)


def _dihedral_images(image):
    """The 8 images of the square's symmetry group applied to a (C, H, W) image."""
    return [np.rot90(flipped, k, axes=(1, 2)) for flipped in (image, image[:, :, ::-1]) for k in range(4)]


def test_triplet_augmentation_is_btsbot_and_deterministic():
    rng = np.random.default_rng(0)
    triplets = rng.normal(size=(64, 63, 63, 3)).astype(np.float32)
    dataset = TripletDataset(triplets, rng.integers(0, 2, 64), augment=True, seed=5)
    dataset.set_epoch(2)
    first = [dataset[i][0].numpy() for i in range(64)]
    assert [dataset[i][0].numpy().tobytes() for i in range(64)] == [a.tobytes() for a in first]
    seen = set()
    for i, augmented in enumerate(first):
        plain = np.moveaxis(triplets[i], -1, 0)
        matches = [k for k, candidate in enumerate(_dihedral_images(plain)) if np.array_equal(candidate, augmented)]
        assert len(matches) == 1  # a flip/right-angle rotation of the original, nothing else
        seen.add(matches[0])
    assert len(seen) >= 6  # 64 draws over 8 symmetries use nearly all of them
    dataset.set_epoch(3)
    assert any(not np.array_equal(dataset[i][0].numpy(), first[i]) for i in range(64))
    unaugmented = TripletDataset(triplets, augment=False)
    np.testing.assert_array_equal(unaugmented[7][0].numpy(), np.moveaxis(triplets[7], -1, 0))
    assert torch.isnan(unaugmented[7][1])


def test_normalisations():
    assert input_normalisation("galaxyzoo", "triplets") == "l2"
    assert input_normalisation("imagenet", "galaxies") == "imagenet"
    assert input_normalisation("galaxyzoo", "galaxies") == "unit"
    with pytest.raises(ValueError, match="weights source"):
        input_normalisation("clip")
    image = np.stack([np.linspace(-1, 3, 16).reshape(4, 4), np.zeros((4, 4)), np.ones((4, 4))]).astype(np.float32)
    unit = normalise_image(image, "unit")
    assert unit[0].min() == 0.0 and unit[0].max() == 1.0
    assert not unit[1:].any()  # flat channels (a missing reference) become zeros, not NaN
    imagenet = normalise_image(image, "imagenet")
    np.testing.assert_allclose(imagenet[0].max(), (1 - 0.485) / 0.229, rtol=1e-6)
    assert normalise_image(image, "l2") is image


@pytest.mark.realdata
def test_gz1_catalog_and_galaxy_dataset(real_folder):
    catalog = read_gz1_catalog(real_folder("galaxy_zoo_1_sample"))
    assert len(catalog) == 6664
    assert set(catalog["CLASS"]) == set(range(len(GZ1_CLASSES)))
    dataset = GalaxyDataset(catalog.iloc[:8], "CLASS", image_size=48, target="class", augment=True, seed=1)
    image, label = dataset[3]
    assert image.shape == (3, 48, 48) and image.dtype == torch.float32
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0 and float(image.max()) > 0.3
    assert label.dtype == torch.int64 and int(label) == catalog["CLASS"].iloc[3]
    np.testing.assert_array_equal(dataset[3][0].numpy(), image.numpy())
    dataset.set_epoch(1)
    assert not np.array_equal(dataset[3][0].numpy(), image.numpy())
    # Without augmentation, the galaxy sits in the middle: the centre is brighter than the corners.
    plain = GalaxyDataset(catalog.iloc[:8], "CLASS", image_size=48, target="class")[0][0].numpy()
    assert plain[:, 20:28, 20:28].mean() > 3 * plain[:, :6, :6].mean()


def test_galaxy_datasets_format_with_votes(tmp_path):
    from PIL import Image

    schema = load_schema("gz_decals_dr5")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(3):
        pixels = (rng.random((40, 50, 3)) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"g{i}.png")
        rows.append({"id_str": f"g{i}", "file_loc": f"g{i}.png", **{c: i for c in schema.answer_columns}})
    pd.DataFrame(rows).to_csv(tmp_path / "catalog.csv", index=False)
    catalog = read_galaxy_catalog(tmp_path / "catalog.csv")
    columns = vote_columns(catalog)
    assert columns[0] == "smooth-or-featured-dr5_smooth"
    image, votes = GalaxyDataset(catalog, columns, image_size=32)[2]
    assert image.shape == (3, 32, 32)
    assert votes.dtype == torch.float32 and votes.shape == (len(columns),) and float(votes.sum()) == 2 * len(columns)
    (tmp_path / "g1.png").unlink()
    with pytest.raises(FileNotFoundError, match="1 of 3 images"):
        read_galaxy_catalog(tmp_path / "catalog.csv")
    with pytest.warns(UserWarning, match="left out"):
        assert len(read_galaxy_catalog(tmp_path / "catalog.csv", drop_missing=True)) == 2
    with pytest.raises(KeyError, match="vote columns"):
        vote_columns(catalog.drop(columns=columns[:2]))
