"""The canvas an alert is rendered on, and points added to its images in Fourier space.

Every alert is drawn on an 80x80 canvas in Fourier space (periodic), then cropped to the 63x63
cutout around the candidate; the margin keeps the wrap-around of bright neighbours out of the cutout.
"""

from __future__ import annotations

import numpy as np

from alertlib.core.vocab import STAMP_SIZE
from alertlib.sky import render

CANVAS = 80  # rendering canvas (pixels); cutouts are its central 63x63
CROP = (CANVAS - STAMP_SIZE) // 2
CENTRE = CROP + STAMP_SIZE // 2  # canvas pixel of the candidate (cutout pixel 31)
SHAPE = (CANVAS, CANVAS)
PIXEL = render.pixel_transfer(SHAPE).astype(np.float32)  # the pixel's response, on the canvas


def point_spectrum(flux, x, y):
    """Fourier spectrum (B, H, W//2+1) of pixel-integrated points of ``flux`` at canvas (x, y)."""
    phase = render.shift_phase(x, y, (CANVAS, CANVAS))
    return (np.asarray(flux, dtype=np.float32)[:, None, None] * PIXEL) * phase


def add_points(spectra, flux, x, y, psf=None):
    """Add points to the spectra of the images whose ``flux`` is non-zero (in place).

    Without ``psf`` they are pixel-integrated points still to be convolved; with ``psf`` = (fwhm,
    beta) per image they come already convolved and sampled (render.moffat_point_spectrum).
    """
    rows = np.nonzero(flux != 0)[0]
    if not rows.size:
        return
    if psf is None:
        spectra[rows] += point_spectrum(flux[rows], x[rows], y[rows])
    else:
        fwhm, beta = psf
        spectra[rows] += render.moffat_point_spectrum(
            flux[rows], x[rows], y[rows], fwhm[rows], beta[rows], (CANVAS, CANVAS)
        )
