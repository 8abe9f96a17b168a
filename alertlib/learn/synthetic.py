"""A synthetic, non-astronomical pre-training corpus: formula-driven fractals, generated on the fly.

After FractalDB (Kataoka et al. 2020): each class is one iterated function system (IFS), a few
random contractive affine maps of the plane; an image of the class is its attractor drawn by the
chaos game. The pre-training task is to name the generating system. Nothing is downloaded: the
corpus is a function of its seed, generated as it is read.

This plays ImageNet's role (generic vision pre-training) in the offline study. It is *not*
ImageNet and is always labelled ``synthetic``.

How an image is drawn, per item (all seeded by ``(seed, class, instance, epoch)``):

1. the class's maps, each coefficient perturbed by a few percent (FractalDB's intra-class variation);
2. per channel, the chaos game from many walkers at once (vectorised), a 2-D histogram of the visited
   points, ``log1p`` intensities, a random small shift and scale of the drawing;
3. each channel divided by its L2 norm, as alert cutouts are (so inputs live on the same scale).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

CORPUS_NAME = "fractaldb-style IFS fractals (synthetic, generated)"
MIN_FILL = 0.08  # systems whose attractor covers less of the image are degenerate (points, lines)


def _contractive_maps(rng: np.random.Generator, n_maps: int) -> np.ndarray:
    """``n_maps`` affine maps (n_maps, 2, 3) with linear parts of spectral norm at most 0.9."""
    maps = rng.uniform(-1.0, 1.0, size=(n_maps, 2, 3))
    norms = np.linalg.norm(maps[:, :, :2], ord=2, axis=(1, 2))
    maps[:, :, :2] *= np.minimum(1.0, 0.9 / norms)[:, None, None]
    return maps


def _map_probabilities(maps: np.ndarray) -> np.ndarray:
    """Choose maps in proportion to the area they keep (|det|), as FractalDB does."""
    areas = np.abs(np.linalg.det(maps[:, :, :2])) + 1e-3
    return areas / areas.sum()


def chaos_game(
    maps: np.ndarray, rng: np.random.Generator, n_walkers: int = 384, n_steps: int = 24, burn_in: int = 8
) -> np.ndarray:
    """Points (n_walkers * (n_steps - burn_in), 2) on the attractor of ``maps``."""
    probabilities = _map_probabilities(maps)
    points = rng.uniform(-1.0, 1.0, size=(n_walkers, 2))
    visited = []
    for step in range(n_steps):
        chosen = maps[rng.choice(len(maps), size=n_walkers, p=probabilities)]
        points = np.einsum("nij,nj->ni", chosen[:, :, :2], points) + chosen[:, :, 2]
        if step >= burn_in:
            visited.append(points)
    return np.concatenate(visited)


def render(points: np.ndarray, image_size: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """A ``log1p`` histogram image (image_size, image_size) of ``points``, framed on their extent."""
    low, high = np.percentile(points, [0.5, 99.5], axis=0)
    span = np.maximum(high - low, 1e-6).max()
    centre = (low + high) / 2.0
    scale, shift = 0.9, np.zeros(2)
    if rng is not None:
        scale = rng.uniform(0.7, 1.0)
        shift = rng.uniform(-0.08, 0.08, size=2)
    unit = (points - centre) / (span / scale) + 0.5 + shift  # most points in [0, 1]
    counts, _, _ = np.histogram2d(unit[:, 1], unit[:, 0], bins=image_size, range=[[0.0, 1.0], [0.0, 1.0]])
    return np.log1p(counts).astype(np.float32)


def fill_fraction(maps: np.ndarray, seed: int = 0, image_size: int = 32) -> float:
    """Fraction of pixels the attractor covers (FractalDB's filter against degenerate systems)."""
    image = render(chaos_game(maps, np.random.default_rng(seed)), image_size)
    return float(np.mean(image > 0))


def fractal_classes(n_classes: int, seed: int = 0, max_maps: int = 4) -> list[np.ndarray]:
    """``n_classes`` distinct iterated function systems of 2..``max_maps`` maps, each filling enough of the frame."""
    rng = np.random.default_rng([seed, 7919])
    systems = []
    while len(systems) < n_classes:
        maps = _contractive_maps(rng, int(rng.integers(2, max_maps + 1)))
        if fill_fraction(maps) >= MIN_FILL:
            systems.append(maps)
    return systems


class FractalDataset(Dataset):
    """The synthetic fractal corpus as a dataset: items ``(image (3, S, S) float32, class int64)``.

    Parameters
    ----------
    n_classes:
        Number of generating systems (classes).
    n_per_class:
        Images per class and epoch.
    image_size:
        Side S (63: the alert stamp size).
    seed:
        Fixes the classes and every image.
    augment:
        When true, images also depend on the epoch (:meth:`set_epoch`): a fresh draw each epoch.
    jitter:
        Relative perturbation of the map coefficients per image (intra-class variation).
    """

    label = "synthetic"

    def __init__(
        self,
        n_classes: int = 32,
        n_per_class: int = 50,
        image_size: int = 63,
        seed: int = 0,
        augment: bool = True,
        jitter: float = 0.05,
    ):
        self.n_classes = int(n_classes)
        self.n_per_class = int(n_per_class)
        self.image_size = int(image_size)
        self.seed = int(seed)
        self.augment = augment
        self.jitter = jitter
        self.systems = fractal_classes(self.n_classes, self.seed)
        self.labels = np.arange(len(self)) % self.n_classes
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n_classes * self.n_per_class

    def image(self, index: int) -> np.ndarray:
        """Item ``index`` as (3, S, S) float32, each channel L2-normalised."""
        label, instance = index % self.n_classes, index // self.n_classes
        epoch = self.epoch if self.augment else 0
        rng = np.random.default_rng([self.seed, label, instance, epoch])
        maps = self.systems[label] * (1.0 + self.jitter * rng.standard_normal(self.systems[label].shape))
        channels = []
        for _ in range(3):
            channel = render(chaos_game(maps, rng), self.image_size, rng)
            channels.append(channel / max(float(np.linalg.norm(channel)), 1e-12))
        image = np.stack(channels)
        if rng.random() < 0.5:
            image = image[:, :, ::-1]
        return np.ascontiguousarray(np.rot90(image, int(rng.integers(0, 4)), axes=(1, 2)), dtype=np.float32)

    def __getitem__(self, index: int):
        return torch.from_numpy(self.image(index)), torch.tensor(self.labels[index], dtype=torch.int64)
