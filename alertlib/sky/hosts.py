"""Host galaxies of the alert sources: the Galaxy Zoo morphology model at the ZTF pixel scale.

Hosts come from the same morphology model as the Galaxy Zoo-like galaxies (``alertlib.sky.morphology``),
with the magnitude and size the source's redshift gives them. Supernovae lie where the host's light
is (disk or bulge, by the bulge-to-total ratio); nuclear transients and AGN on the nucleus.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alertlib.core.vocab import PIXEL_SCALE
from alertlib.sky import galaxies, render
from alertlib.sky.canvas import CANVAS
from alertlib.sky.morphology import draw_morphology


def _host_morphology(rng, sources_with_host: pd.DataFrame):
    morph = draw_morphology(rng, len(sources_with_host))
    morph["magnitude_r"] = sources_with_host["host_mag"].to_numpy()
    morph["half_light_radius"] = sources_with_host["host_radius_arcsec"].to_numpy()
    return morph


def _offset_following_light(rng, morph) -> tuple[np.ndarray, np.ndarray]:
    """Transient offsets (arcsec, on the sky) drawn from the host's light: disk or bulge by B/T."""
    n = len(morph["magnitude_r"])
    in_bulge = rng.random(n) < morph["bulge_fraction"]
    re = morph["half_light_radius"]
    # Exponential disk of half-light radius re: radius ~ Gamma(2, r_d), r_d = re / 1.678; a de
    # Vaucouleurs bulge is more concentrated.
    disk_radius = rng.gamma(2.0, re / 1.678, n)
    bulge_radius = re * morph["bulge_radius_ratio"] * rng.gamma(1.2, 0.6, n)
    radius = np.where(in_bulge, bulge_radius, disk_radius)
    angle = rng.uniform(0, 2 * np.pi, n)
    q = np.where(in_bulge, morph["bulge_axis_ratio"], morph["disk_axis_ratio"])
    along, across = radius * np.cos(angle), radius * np.sin(angle) * q
    pa = morph["position_angle"]
    return along * np.cos(pa) - across * np.sin(pa), along * np.sin(pa) + across * np.cos(pa)


def host_spectra(
    rng: np.random.Generator, sources: pd.DataFrame, cand_x: np.ndarray, cand_y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The hosts' light around each candidate, and the candidate's offset from its host's centre.

    Returns
    -------
    spectra:
        (n_src, 2 bands (g, r), H, W//2+1) Fourier spectra of the hosts before the PSF, in flux units of
        magnitude 0; zero for sources without a host.
    offset_x, offset_y:
        The candidate's offset from the host's centre (arcsec, on the sky), zero without a host.
    """
    cls = sources["class_index"].to_numpy()
    n_src = len(sources)
    host_spectrum = np.zeros((n_src, 2, CANVAS, CANVAS // 2 + 1), dtype=np.complex64)
    offset_x = np.zeros(n_src)
    offset_y = np.zeros(n_src)
    host_index = np.nonzero(sources["has_host"].to_numpy())[0]
    if host_index.size:
        morph = _host_morphology(rng, sources.iloc[host_index])
        dx, dy = _offset_following_light(rng, morph)
        is_sn = cls[host_index] == 0
        # Nuclear transients and AGN sit on the nucleus (astrometric scatter only).
        dx = np.where(is_sn, dx, rng.normal(0, 0.12, host_index.size))
        dy = np.where(is_sn, dy, rng.normal(0, 0.12, host_index.size))
        offset_x[host_index], offset_y[host_index] = dx, dy
        centre = np.stack([cand_x[host_index] - dx / PIXEL_SCALE, cand_y[host_index] - dy / PIXEL_SCALE], axis=1)
        light = galaxies.intrinsic_images(
            morph, CANVAS, np.full(host_index.size, PIXEL_SCALE), 0.0, ("g", "r"), oversample=1, centre=centre
        )
        host_spectrum[host_index] = render.rfft2(light)
    return host_spectrum, offset_x, offset_y
