"""Datasets for training: the BTS release's splits and the PyTorch datasets over alerts and galaxies.

Two steps, each named (Galaxy Zoo catalogs are read by :mod:`alertlib.io.catalogs`):

1. **Alert triplets** in the BTS release layout (real release, simulator output, ingested packets):
   :func:`load_bts` reads the splits (memory-mapped) and applies the training-set choices of the study,
   the cap of ``N_max`` random alerts per source and the fraction of training *sources* kept, both
   chosen reproducibly from a seed. Validation and test splits are never touched.
2. **PyTorch datasets**: :class:`TripletDataset` (BTSbot augmentations: horizontal flip, vertical flip,
   rotation by a multiple of 90 degrees) and :class:`GalaxyDataset` (Zoobot-like: flips, any rotation,
   mild scale and shift), both channels-first float32, both deterministic given ``seed`` and the epoch
   set with ``set_epoch``.

Input normalisation per kind of weights
---------------------------------------
:data:`WEIGHTS_INPUT_NORMALISATION` says which normalisation each kind of weights expects, and
:func:`input_normalisation` looks it up:

``"l2"``
    The stored per-cutout L2 normalisation of BTSbot (after braai), unchanged. The authors' code feeds
    these triplets to every model, whatever its pre-training (scratch, ImageNet, Galaxy Zoo): fine-tuning
    adapts the first layers. To reproduce the paper, triplets use ``"l2"`` for every kind of weights.
``"unit"``
    Each channel of each image min-max scaled to [0, 1]. Zoobot's encoders were trained on images in
    [0, 1] without a mean/std normalisation; galaxy images are read into [0, 1] already.
``"imagenet"``
    ``"unit"``, then the ImageNet per-channel mean/std of timm's ImageNet weights.

The alternatives are there for ablations (does matching the pre-training input range help?), not
because the paper used them.
"""

from __future__ import annotations

import mmap
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from alertlib.core.vocab import SPLITS
from alertlib.io.release import Split, read_split

# ---------------------------------------------------------------------------------------------
# Input normalisation
# ---------------------------------------------------------------------------------------------

NORMALISATIONS = ("l2", "unit", "imagenet")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# data kind -> weights source -> normalisation. "randinit" = same architecture trained from scratch,
# "checkpoint" = a model trained by this project (it saw the same inputs as during its training).
WEIGHTS_INPUT_NORMALISATION: dict[str, dict[str, str]] = {
    "triplets": {"randinit": "l2", "checkpoint": "l2", "imagenet": "l2", "galaxyzoo": "l2"},
    "galaxies": {"randinit": "unit", "checkpoint": "unit", "imagenet": "imagenet", "galaxyzoo": "unit"},
}


def input_normalisation(weights_source: str, data_kind: str = "triplets") -> str:
    """The input normalisation for a kind of weights (see the module docstring).

    Parameters
    ----------
    weights_source:
        ``randinit`` (scratch), ``checkpoint`` (our own trained model), ``imagenet`` or ``galaxyzoo``.
    data_kind:
        ``triplets`` (alert triplets) or ``galaxies`` (Galaxy Zoo images).
    """
    if data_kind not in WEIGHTS_INPUT_NORMALISATION:
        raise ValueError(f"data_kind must be one of {sorted(WEIGHTS_INPUT_NORMALISATION)}, not {data_kind!r}")
    table = WEIGHTS_INPUT_NORMALISATION[data_kind]
    if weights_source not in table:
        raise ValueError(f"unknown weights source {weights_source!r}; expected one of {sorted(table)}")
    return table[weights_source]


def normalise_image(image: np.ndarray, normalisation: str) -> np.ndarray:
    """Apply a named normalisation to one channels-first float32 image (C, H, W); returns a new array.

    ``"l2"`` returns the image unchanged (triplets are stored L2-normalised already).
    """
    if normalisation == "l2":
        return image
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"normalisation must be one of {NORMALISATIONS}, not {normalisation!r}")
    low = image.min(axis=(1, 2), keepdims=True)
    span = image.max(axis=(1, 2), keepdims=True) - low
    # A flat channel (e.g. a missing ATLAS reference, all zeros) maps to 0 instead of dividing by 0.
    unit = np.where(span > 0, (image - low) / np.where(span > 0, span, 1.0), 0.0).astype(np.float32)
    if normalisation == "unit":
        return unit
    if unit.shape[0] != 3:
        raise ValueError(f"ImageNet normalisation needs 3 channels, got {unit.shape[0]}")
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float32)[:, None, None]
    std = np.asarray(IMAGENET_STD, dtype=np.float32)[:, None, None]
    return (unit - mean) / std


# ---------------------------------------------------------------------------------------------
# The BTS release layout, with the study's training-set choices
# ---------------------------------------------------------------------------------------------


def select_training_rows(
    object_ids: pd.Series | np.ndarray,
    n_max: int | None = None,
    train_fraction: float = 1.0,
    seed: int = 0,
) -> np.ndarray:
    """Sorted row indices kept for training: a fraction of the sources, at most ``n_max`` alerts each.

    Both choices depend only on ``seed`` and the table, and they nest: with one seed, the sources of
    a 10% training set are among those of the 50% set, and a source keeps the same alerts whatever
    the fraction.

    Parameters
    ----------
    object_ids:
        The source (``objectId``) of each alert.
    n_max:
        At most this many alerts per source, chosen at random; None keeps them all.
    train_fraction:
        Fraction of the sources kept, in (0, 1]; rounded to the nearest count, at least one source.
    seed:
        Seed of both random choices.
    """
    if not 0.0 < train_fraction <= 1.0:
        raise ValueError(f"train_fraction must be in (0, 1], not {train_fraction}")
    if n_max is not None and n_max < 1:
        raise ValueError(f"n_max must be a positive number of alerts per source or None, not {n_max}")
    object_ids = pd.Series(np.asarray(object_ids)).astype(str)
    keep = np.ones(len(object_ids), dtype=bool)
    if train_fraction < 1.0:
        sources = np.sort(object_ids.unique())
        order = np.random.default_rng([seed, 1]).permutation(len(sources))
        n_keep = max(1, int(round(train_fraction * len(sources))))
        keep &= object_ids.isin(sources[order[:n_keep]]).to_numpy()
    if n_max is not None:
        # One random key per alert, drawn for the whole table: a source's alerts do not depend on
        # which other sources are kept.
        keys = np.random.default_rng([seed, 2]).random(len(object_ids))
        rank = pd.Series(keys).groupby(object_ids.to_numpy()).rank(method="first").to_numpy()
        keep &= rank <= n_max
    return np.flatnonzero(keep)


def load_bts(
    folder: str | Path,
    version: str | None = None,
    n_max: int | None = None,
    train_fraction: float = 1.0,
    seed: int = 0,
) -> dict[str, Split]:
    """Read a dataset in the BTS release layout, with the study's choices for the training split.

    Parameters
    ----------
    folder:
        Folder with ``{split}_triplets_<version>.npy`` and ``{split}_cand_<version>.csv``.
    version:
        Dataset version; None when the folder holds only one.
    n_max, train_fraction, seed:
        Training-set cap per source and fraction of sources (see :func:`select_training_rows`).
        Validation and test splits are returned whole.

    Returns
    -------
    dict
        ``{"train": Split, "val": Split, "test": Split}``. Triplets stay memory-mapped when a split is
        kept whole; a subset of the training split is read into memory (only its rows).
    """
    splits = {split: read_split(folder, split, version) for split in SPLITS}
    train = splits["train"]
    if n_max is not None or train_fraction < 1.0:
        rows = select_training_rows(train.candidates["objectId"], n_max, train_fraction, seed)
        if len(rows) < len(train):
            splits["train"] = Split(
                triplets=np.asarray(train.triplets[rows]),
                candidates=train.candidates.iloc[rows].reset_index(drop=True),
                version=train.version,
                path=train.path,
            )
    return splits


# ---------------------------------------------------------------------------------------------
# Memory-mapped releases
# ---------------------------------------------------------------------------------------------

# The pages of a memory-mapped file that a process has read count in its resident memory until the
# kernel needs them back; dropping them after every this many bytes mapped keeps an epoch over a
# release of any size within a bounded resident memory (the page cache keeps the file, not the process).
MAPPED_PAGES_RELEASE_BYTES = 256 * 2**20
# A read fault maps a whole folio of the page cache, which Linux makes up to 2 MiB for a file read
# in large blocks: one randomly chosen 95 kB stamp can map 2 MiB (measured: 64 random float64 stamps
# of a freshly written release added 119 MB to the resident set, on Linux 6.18).
MAPPED_BYTES_PER_READ = 2 * 2**20


def file_mapping(array) -> mmap.mmap | None:
    """The file mapping under ``array`` (a ``np.memmap`` or a view of one), or None for an in-memory array."""
    base = array
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None)
    return base


def release_mapped_pages(array) -> bool:
    """Drop this process's resident pages of the file mapping under ``array``; values are unchanged.

    The next read of a dropped page maps it again from the page cache (or the disk). Returns whether
    ``array`` is memory-mapped (False: nothing to drop).
    """
    mapping = file_mapping(array)
    if mapping is None or not hasattr(mmap, "MADV_DONTNEED"):
        return False
    mapping.madvise(mmap.MADV_DONTNEED)
    return True


# ---------------------------------------------------------------------------------------------
# PyTorch datasets
# ---------------------------------------------------------------------------------------------


class TripletDataset(Dataset):
    """Alert triplets as a PyTorch dataset: items ``(triplet (3, H, W) float32, label float32 scalar)``,
    or ``((triplet, features (F,) float32), label)`` with ``features`` (image + metadata models).

    Parameters
    ----------
    triplets:
        Array (N, H, W, 3), channels (science, reference, difference) last, as in the release
        layout; a memory-mapped array is read item by item.
    labels:
        N labels (0/1); None gives NaN labels (for scoring unlabelled alerts).
    augment:
        BTSbot's augmentations: horizontal flip and vertical flip, each with probability 1/2, then a
        rotation by k x 90 degrees, k uniform in 0..3.
    seed:
        With the epoch (:meth:`set_epoch`), fixes every augmentation: the same seed and epoch give the
        same tensors, in any order and in any DataLoader worker.
    normalisation:
        ``"l2"`` (stored, the default), ``"unit"`` or ``"imagenet"``; see :func:`input_normalisation`.
    crop:
        Side of a centred crop (None keeps the whole stamp). An odd side keeps the stamp's central
        pixel at the centre, so that right-angle rotations turn about the candidate. Cropping trades
        context around the candidate for speed; the study's CPU profiles use it (README). The crop is
        taken from the stored (L2-normalised) stamp, which is not renormalised.
    features:
        Candidate features (N, F) of the alerts (:func:`alertlib.io.features.feature_matrix`), raw:
        the model standardises them.

    Notes
    -----
    The augmentation draws of an epoch are made at once in :meth:`set_epoch` (three small integer
    arrays); an item is then a few numpy views and one copy. Call ``set_epoch`` before creating the
    epoch's DataLoader iterator (with ``persistent_workers=True`` workers keep their old copy).

    Over a memory-mapped release each process drops the pages it has mapped every
    :data:`MAPPED_PAGES_RELEASE_BYTES` (:func:`release_mapped_pages`; a read counts at least
    :data:`MAPPED_BYTES_PER_READ`), so that its resident memory stays bounded whatever the size of
    the release.
    """

    def __init__(
        self,
        triplets,
        labels=None,
        augment: bool = False,
        seed: int = 0,
        normalisation: str = "l2",
        crop: int | None = None,
        features=None,
    ):
        if triplets.ndim != 4 or triplets.shape[-1] != 3:
            raise ValueError(f"triplets must be (N, H, W, 3) channels-last, got shape {triplets.shape}")
        height, width = triplets.shape[1:3]
        if crop is not None and not 0 < crop <= min(height, width):
            raise ValueError(f"crop must be between 1 and {min(height, width)} for {height}x{width} stamps, not {crop}")
        self.crop_window = (
            (
                slice((height - crop) // 2, (height - crop) // 2 + crop),
                slice((width - crop) // 2, (width - crop) // 2 + crop),
            )
            if crop is not None
            else (slice(None), slice(None))
        )
        if normalisation not in NORMALISATIONS:
            raise ValueError(f"normalisation must be one of {NORMALISATIONS}, not {normalisation!r}")
        self.triplets = triplets
        if labels is None:
            self.labels = np.full(len(triplets), np.nan, dtype=np.float32)
        else:
            self.labels = np.asarray(labels, dtype=np.float32)
            if self.labels.shape != (len(triplets),):
                raise ValueError(f"{len(self.labels)} labels for {len(triplets)} triplets")
        self.features = None if features is None else torch.from_numpy(np.asarray(features, dtype=np.float32))
        if self.features is not None and (self.features.ndim != 2 or len(self.features) != len(triplets)):
            raise ValueError(
                f"features must be (N, F) for {len(triplets)} triplets, got shape {tuple(self.features.shape)}"
            )
        self.augment = augment
        self.seed = seed
        self.normalisation = normalisation
        self.memory_mapped = file_mapping(triplets) is not None
        self.mapped_bytes_read = 0
        self.set_epoch(0)

    @classmethod
    def from_split(cls, split: Split, **kwargs) -> TripletDataset:
        """A dataset over one split of :func:`load_bts`, labelled by its ``label`` column."""
        return cls(split.triplets, split.candidates["label"].to_numpy(), **kwargs)

    def set_epoch(self, epoch: int) -> None:
        """Draw this epoch's augmentations (flip left-right, flip up-down, quarter turns) per item."""
        self.epoch = epoch
        rng = np.random.default_rng([self.seed, epoch])
        n = len(self.triplets)
        self.flip_lr = rng.random(n) < 0.5
        self.flip_ud = rng.random(n) < 0.5
        self.quarter_turns = rng.integers(0, 4, n)

    def __len__(self) -> int:
        return len(self.triplets)

    def image(self, index: int) -> np.ndarray:
        """Item ``index`` as a channels-first float32 array (augmented and normalised)."""
        triplet = self.triplets[index][self.crop_window]  # (H, W, 3), centre-cropped if asked
        if self.augment:
            if self.flip_lr[index]:
                triplet = triplet[:, ::-1]
            if self.flip_ud[index]:
                triplet = triplet[::-1]
            if self.quarter_turns[index]:
                triplet = np.rot90(triplet, int(self.quarter_turns[index]), axes=(0, 1))
        image = np.ascontiguousarray(np.moveaxis(triplet, -1, 0), dtype=np.float32)
        self._count_mapped_read()
        return normalise_image(image, self.normalisation)

    def _count_mapped_read(self) -> None:
        if not self.memory_mapped:
            return
        self.mapped_bytes_read += max(self.triplets[0].nbytes, MAPPED_BYTES_PER_READ)
        if self.mapped_bytes_read >= MAPPED_PAGES_RELEASE_BYTES:
            self.mapped_bytes_read = 0
            release_mapped_pages(self.triplets)

    def __getitem__(self, index: int):
        image = torch.from_numpy(self.image(index))
        inputs = image if self.features is None else (image, self.features[index])
        return inputs, torch.tensor(self.labels[index])


class GalaxyDataset(Dataset):
    """Galaxy images from a catalog (``file_loc``) as a PyTorch dataset.

    Items are ``(image (3, S, S) float32 in [0, 1] (or ImageNet-normalised), label)``:

    - ``target="votes"``: label = float32 vote counts of ``label_columns`` (missing counts -> 0, a
      question not asked);
    - ``target="class"``: label = int64 class index from the single column ``label_columns[0]``.

    Parameters
    ----------
    catalog:
        Frame with ``file_loc`` and the label columns (see :func:`alertlib.io.catalogs.read_galaxy_catalog`,
        :func:`alertlib.io.catalogs.read_gz1_catalog`).
    label_columns:
        Vote columns (``target="votes"``) or one class column (``target="class"``).
    image_size:
        Output side S in pixels.
    crop_fraction:
        Central fraction of the image side kept before resizing (galaxies fill the middle of the
        cutout; Galaxy Zoo JPEGs have wide margins).
    augment:
        Zoobot-like: random flip, rotation by any angle, scale 0.9-1.1 and shift up to 5% of the side.
    seed:
        With the epoch (:meth:`set_epoch`) and the item index, fixes every augmentation.
    normalisation:
        ``"unit"`` (default, [0, 1]) or ``"imagenet"``; see :func:`input_normalisation`.
    """

    def __init__(
        self,
        catalog: pd.DataFrame,
        label_columns: list[str] | str,
        image_size: int = 64,
        augment: bool = False,
        seed: int = 0,
        target: str = "votes",
        crop_fraction: float = 0.75,
        normalisation: str = "unit",
    ):
        if target not in ("votes", "class"):
            raise ValueError(f"target must be 'votes' or 'class', not {target!r}")
        if normalisation not in ("unit", "imagenet"):
            raise ValueError(f"galaxy images take normalisation 'unit' or 'imagenet', not {normalisation!r}")
        if not 0.0 < crop_fraction <= 1.0:
            raise ValueError(f"crop_fraction must be in (0, 1], not {crop_fraction}")
        label_columns = [label_columns] if isinstance(label_columns, str) else list(label_columns)
        missing = [c for c in ["file_loc", *label_columns] if c not in catalog.columns]
        if missing:
            raise KeyError(f"catalog lacks columns {missing}")
        if target == "class" and len(label_columns) != 1:
            raise ValueError(f"target='class' takes one class column, got {label_columns}")
        self.file_locs = catalog["file_loc"].astype(str).tolist()
        # Copies: pandas hands out read-only arrays, which torch would warn about.
        if target == "votes":
            self.labels = catalog[label_columns].fillna(0).to_numpy(dtype=np.float32, copy=True)
        else:
            self.labels = catalog[label_columns[0]].to_numpy(dtype=np.int64, copy=True)
        self.label_columns = label_columns
        self.image_size = image_size
        self.augment = augment
        self.seed = seed
        self.target = target
        self.crop_fraction = crop_fraction
        self.normalisation = normalisation
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose augmentations the items get."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.file_locs)

    def _affine(self, width: int, height: int, rng: np.random.Generator | None) -> tuple[float, ...]:
        """PIL AFFINE coefficients mapping output pixels to input pixels: crop, resize, augment."""
        size = self.image_size
        scale = self.crop_fraction * min(width, height) / size  # input pixels per output pixel
        angle, flip, shift = 0.0, 1.0, (0.0, 0.0)
        if rng is not None:
            angle = rng.uniform(0.0, 2.0 * np.pi)
            flip = -1.0 if rng.random() < 0.5 else 1.0
            scale *= rng.uniform(0.9, 1.1)
            shift = tuple(rng.uniform(-0.05, 0.05, 2) * min(width, height))
        cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
        # input = centre_in + shift + R(angle) * diag(flip, 1) * scale * (output - centre_out)
        a, b, d, e = cos * flip, -sin, sin * flip, cos
        centre_out = size / 2.0
        c = width / 2.0 + shift[0] - a * centre_out - b * centre_out
        f = height / 2.0 + shift[1] - d * centre_out - e * centre_out
        return (a, b, c, d, e, f)

    def image(self, index: int) -> np.ndarray:
        """Item ``index`` as a channels-first float32 array."""
        from PIL import Image

        rng = np.random.default_rng([self.seed, self.epoch, index]) if self.augment else None
        path = self.file_locs[index]
        try:
            with Image.open(path) as opened:
                # JPEG draft mode decodes at 1/2, 1/4 or 1/8 scale: much faster, and it is an
                # area average, so the later bilinear resampling does not alias.
                needed = int(np.ceil(self.image_size / (0.9 * self.crop_fraction)))
                opened.draft("RGB", (needed, needed))
                picture = opened.convert("RGB")
        except (OSError, ValueError) as error:
            raise OSError(f"cannot read galaxy image {path}: {error}") from error
        width, height = picture.size
        transformed = picture.transform(
            (self.image_size, self.image_size),
            Image.Transform.AFFINE,
            self._affine(width, height, rng),
            resample=Image.Resampling.BILINEAR,
        )
        image = np.asarray(transformed, dtype=np.float32).transpose(2, 0, 1) / 255.0
        return normalise_image(np.ascontiguousarray(image), self.normalisation)

    def __getitem__(self, index: int):
        return torch.from_numpy(self.image(index)), torch.as_tensor(self.labels[index])
