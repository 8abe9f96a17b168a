"""Per-cutout preprocessing, identical to BTSbot's (after braai).

For each cutout: NaN -> 0, pad to the stamp size at the bottom/right when smaller, divide by the
cutout's L2 norm. All-zero cutouts cannot be normalised and are rejected by the caller (counted and
reported, never silently dropped).
"""

from __future__ import annotations

import numpy as np

from alertlib.core.vocab import STAMP_SIZE


class EmptyCutout(ValueError):
    """A cutout is all zeros (or all NaN) and cannot be L2-normalised."""


def pad_bottom_right(cutout: np.ndarray, size: int = STAMP_SIZE) -> np.ndarray:
    """Pad a 2-D cutout with zeros at the bottom and right up to ``size`` x ``size``.

    Cutouts larger than ``size`` are an error: they come from another survey or a wrong layout.
    """
    rows, cols = cutout.shape
    if rows > size or cols > size:
        raise ValueError(f"cutout of shape {cutout.shape} is larger than {size}x{size}")
    if rows == size and cols == size:
        return cutout
    return np.pad(cutout, ((0, size - rows), (0, size - cols)), mode="constant")


def normalise_cutout(cutout: np.ndarray, size: int | None = STAMP_SIZE) -> np.ndarray:
    """NaN -> 0, pad to ``size`` (None keeps the native size), divide by the L2 norm (float32).

    Raises
    ------
    EmptyCutout
        When the cutout has no non-zero finite pixel.
    """
    cutout = np.nan_to_num(np.asarray(cutout, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if size is not None:
        cutout = pad_bottom_right(cutout, size)
    norm = np.linalg.norm(cutout)
    if norm == 0.0:
        raise EmptyCutout("cutout is all zeros (or NaN) after NaN -> 0")
    return (cutout / norm).astype(np.float32)


def l2_normalise_stack(cutouts: np.ndarray) -> np.ndarray:
    """Vectorised L2 normalisation of a stack of cutouts (..., H, W); zero cutouts raise EmptyCutout."""
    cutouts = np.nan_to_num(np.asarray(cutouts, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    norms = np.sqrt(np.einsum("...ij,...ij->...", cutouts.astype(np.float64), cutouts.astype(np.float64)))
    if np.any(norms == 0.0):
        raise EmptyCutout(f"{int(np.sum(norms == 0.0))} cutouts are all zeros after NaN -> 0")
    return (cutouts / norms[..., None, None]).astype(np.float32)
