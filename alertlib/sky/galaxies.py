"""Galaxy Zoo-like galaxies: g/r/z rendering of the morphology model, RGB composites, and one batch with votes.

One morphology model (``alertlib.sky.morphology``) serves two purposes: the Galaxy Zoo-like images
(``render_galaxies`` at a framing that follows each galaxy's size, as Galaxy Zoo crops do) and the
host galaxies of the alert simulator (``intrinsic_images`` at the ZTF pixel scale, in
``alertlib.sky.hosts``). That shared model is what makes pre-training on galaxies a meaningful test
for alert classification. Galaxy Zoo images also carry artefacts (bright-star spikes, satellite
trails, bad columns), and volunteers vote on them (``alertlib.sky.votes``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from alertlib.sky import render
from alertlib.sky.morphology import MAX_CLUMPS, MERGER_STATES, draw_morphology, subset
from alertlib.sky.votes import clarity_of, simulate_votes

BANDS = ("g", "r", "z")
ARTEFACTS = ("none", "star_spike", "satellite_trail", "bad_column")
# Galaxy Zoo DECaLS-like imaging: zero point of the counts, sky surface brightness (mag/arcsec^2) and
# PSF FWHM (arcsec) per band.
GZ_ZERO_POINT = 30.0
GZ_SKY_MAG = {"g": 22.0, "r": 21.0, "z": 19.9}
GZ_PSF_FWHM = {"g": 1.45, "r": 1.3, "z": 1.25}
# Galaxy Zoo frames a galaxy so that its light fills the cutout: the image spans this many
# half-light radii.
FRAME_HALF_LIGHT_RADII = 9.0


def _band_weights(colour_gr, colour_rz, bands):
    """Flux in each band relative to r, (n, n_bands), from g-r and r-z colours."""
    per_band = {"g": 10 ** (-0.4 * colour_gr), "r": np.ones_like(colour_gr), "z": 10 ** (0.4 * colour_rz)}
    return np.stack([per_band[b] for b in bands], axis=1)


def _disk_light(morph, shape, x0, y0, re_px):
    """Exponential disk with spiral arms, bar-free, lopsided if disturbed: unit flux per galaxy."""
    height, width = shape
    dtype = np.float32
    sub_x = np.arange(width, dtype=dtype)[None, None, :]
    sub_y = np.arange(height, dtype=dtype)[None, :, None]
    col = lambda a: np.asarray(a, dtype=dtype)[:, None, None]  # noqa: E731
    pa = morph["position_angle"]
    dx, dy = sub_x - col(x0), sub_y - col(y0)
    along = dx * col(np.cos(pa)) + dy * col(np.sin(pa))
    across = (dy * col(np.cos(pa)) - dx * col(np.sin(pa))) / col(morph["disk_axis_ratio"])
    radius = np.sqrt(along * along + across * across) / col(re_px)  # in disk half-light radii, disk plane
    angle = np.arctan2(across, along)
    light = np.exp(-1.678 * radius)
    pitch = np.radians(np.maximum(morph["arm_pitch"], 1.0))
    phase = col(morph["arm_count"]) * (angle - np.log(radius + 0.05) / col(np.tan(pitch))) - col(morph["arm_phase"])
    pattern = ((1.0 + np.cos(phase)) * 0.5) ** 4
    # Arms grow out of the bulge region and fade in the outskirts.
    envelope = np.clip((radius - 0.25) * 2.5, 0.0, 1.0)
    strength = col(morph["arm_strength"])
    light = light * (1.0 - strength * envelope + 2.5 * strength * envelope * pattern)
    light = light * (
        1.0 + col(morph["lopsidedness"]) * np.cos(angle - col(morph["companion_angle"])) * np.minimum(radius, 2.0) * 0.5
    )
    # Tidal tails: a loosely wound one-armed feature beyond the disk for major disturbances and mergers.
    tail_phase = angle - np.log(radius + 0.05) / np.tan(np.radians(35.0)) - col(morph["companion_angle"])
    tail = ((1.0 + np.cos(tail_phase)) * 0.5) ** 8 * np.exp(-radius / 2.5) * np.clip(radius - 1.0, 0.0, 1.0)
    light = light + col(morph["tidal_strength"]) * 6.0 * tail
    light = np.maximum(light, 0.0)
    light /= light.sum(axis=(1, 2), keepdims=True)
    return light


@dataclass
class _Frame:
    """Where the galaxies lie on the fine grid (``oversample`` samples per output pixel side)."""

    size: int  # output pixels per side
    oversample: int
    x0: np.ndarray  # centre on the fine grid
    y0: np.ndarray
    re_px: np.ndarray  # half-light radius in fine pixels
    flux_r: np.ndarray  # r-band counts

    @property
    def fine_shape(self) -> tuple[int, int]:
        return (self.size * self.oversample, self.size * self.oversample)


def _band_flux(weights, flux):
    """(n, n_bands, 1, 1) float32 flux in each band, from per-band weights relative to r and r-band ``flux``."""
    return (weights * flux[:, None]).astype(np.float32)[:, :, None, None]


def _bulge_light(morphology: dict[str, np.ndarray], frame: _Frame) -> np.ndarray:
    """Unit-flux Sersic bulges (n, H, W) on the fine grid, their cusps refined."""
    return render.sersic_image(
        frame.fine_shape,
        frame.x0,
        frame.y0,
        1.0,
        np.maximum(frame.re_px * morphology["bulge_radius_ratio"], 0.3),
        morphology["bulge_sersic_n"],
        morphology["bulge_axis_ratio"],
        morphology["position_angle"],
        oversample=1,
        centre_oversample=9,
        centre_radius=1,
    )


def _disk_and_bar_light(m: dict[str, np.ndarray], frame: _Frame) -> np.ndarray:
    """Unit-flux disks with their bars (n, H, W) on the fine grid, for the disk galaxies ``m``."""
    s, size = frame.oversample, frame.size
    # The disk is smooth on the pixel scale: draw it on the output grid and repeat it onto the
    # fine grid (the fine grid is there for the bulge's cusp).
    coarse = lambda p: (p - (s - 1) / 2.0) / s  # noqa: E731
    disk = _disk_light(m, (size, size), coarse(frame.x0), coarse(frame.y0), frame.re_px / s)
    disk = np.repeat(np.repeat(disk, s, axis=1), s, axis=2) / (s * s)
    bar_share = 0.3 * m["bar_strength"]
    bar = render.sersic_image(
        frame.fine_shape,
        frame.x0,
        frame.y0,
        1.0,
        np.maximum(frame.re_px * m["bar_length"] * 0.6, 0.5),
        0.5,
        0.22,
        m["position_angle"] + m["bar_angle"],
        oversample=1,
        centre_oversample=0,
    )
    return disk * (1 - bar_share).astype(np.float32)[:, None, None] + bar * bar_share.astype(np.float32)[:, None, None]


def _clump_light(m: dict[str, np.ndarray], frame: _Frame, bulge_fraction: np.ndarray) -> np.ndarray:
    """Star-forming clumps (n, H, W) in counts (r band): unresolved knots in the disk plane, splatted before the PSF."""
    counts = m["clump_count"]
    rows, slots = np.nonzero(np.arange(MAX_CLUMPS)[None, :] < counts[:, None])
    radius = m["clump_radius"][rows, slots] * frame.re_px[rows]
    angle = m["clump_angle"][rows, slots]
    along, across = radius * np.cos(angle), radius * np.sin(angle) * m["disk_axis_ratio"][rows]
    pa = m["position_angle"][rows]
    cx = frame.x0[rows] + along * np.cos(pa) - across * np.sin(pa)
    cy = frame.y0[rows] + along * np.sin(pa) + across * np.cos(pa)
    clump_flux = (1 - bulge_fraction[rows]) * frame.flux_r[rows] * m["clump_fraction"][rows] / counts[rows]
    layer = np.zeros((len(counts), *frame.fine_shape), dtype=np.float32)
    render.splat_points(layer, rows, cx, cy, clump_flux)
    return layer


def _companion_light(m: dict[str, np.ndarray], frame: _Frame) -> np.ndarray:
    """Unit-flux companions (n, H, W) of the disturbed galaxies ``m``, at their separation and angle."""
    separation = m["companion_separation"] * frame.re_px
    return render.sersic_image(
        frame.fine_shape,
        frame.x0 + separation * np.cos(m["companion_angle"]),
        frame.y0 + separation * np.sin(m["companion_angle"]),
        1.0,
        np.maximum(frame.re_px * np.sqrt(m["companion_flux_ratio"]) * 0.8, 0.5),
        2.0,
        0.7,
        m["position_angle"] + 1.0,
        oversample=1,
        centre_oversample=0,
    )


def _subframe(frame: _Frame, index: np.ndarray) -> _Frame:
    return _Frame(
        frame.size, frame.oversample, frame.x0[index], frame.y0[index], frame.re_px[index], frame.flux_r[index]
    )


def intrinsic_images(
    morphology: dict[str, np.ndarray],
    image_size: int,
    pixel_scale: np.ndarray,
    zero_point: float,
    bands: tuple[str, ...] = BANDS,
    oversample: int = 1,
    centre: np.ndarray | None = None,
) -> np.ndarray:
    """Pixel-integrated galaxy light before the PSF, (n, n_bands, size * s, size * s) in counts.

    The bulge, then the disk with its bar and clumps, then a companion, each in its own colours.

    Parameters
    ----------
    morphology:
        From ``draw_morphology``.
    pixel_scale:
        Arcsec per output pixel, (n,).
    zero_point:
        Magnitude of one count.
    oversample:
        ``s``: the images are drawn on a grid ``s`` times finer than the output pixels.
    centre:
        (n, 2) output-pixel position (x, y) of each galaxy; default the image centre.
    """
    n = len(morphology["magnitude_r"])
    s = oversample
    if centre is None:
        centre = np.full((n, 2), (image_size - 1) / 2.0)
    # Positions and radii on the fine grid (s samples per pixel side).
    fine = lambda p: p * s + (s - 1) / 2.0  # noqa: E731
    frame = _Frame(
        image_size,
        s,
        fine(centre[:, 0]),
        fine(centre[:, 1]),
        morphology["half_light_radius"] / pixel_scale * s,
        10 ** (-0.4 * (morphology["magnitude_r"] - zero_point)),
    )
    bulge_weights = _band_weights(morphology["bulge_colour_gr"], morphology["bulge_colour_rz"], bands)
    disk_weights = _band_weights(morphology["disk_colour_gr"], morphology["disk_colour_rz"], bands)
    clump_weights = _band_weights(np.full(n, 0.15), np.full(n, 0.05), bands)
    bt = morphology["bulge_fraction"]
    images = _bulge_light(morphology, frame)[:, None] * _band_flux(bulge_weights, bt * frame.flux_r)
    is_disk = bt < 0.999
    if np.any(is_disk):
        d = np.nonzero(is_disk)[0]
        m, disks = subset(morphology, d), _subframe(frame, d)
        disk_flux = (1 - bt[d]) * disks.flux_r * (1 - m["clump_fraction"] * (m["clump_count"] > 0))
        images[d] += _disk_and_bar_light(m, disks)[:, None] * _band_flux(disk_weights[d], disk_flux)
        if np.any(m["clump_count"] > 0):
            clumps = _clump_light(m, disks, bt[d])
            images[d] += clumps[:, None] * clump_weights[d][:, :, None, None].astype(np.float32)
    companions = morphology["companion_flux_ratio"] > 0
    if np.any(companions):
        c = np.nonzero(companions)[0]
        m = subset(morphology, c)
        weights = 0.5 * (bulge_weights[c] + disk_weights[c])
        companion = _companion_light(m, _subframe(frame, c))
        images[c] += companion[:, None] * _band_flux(weights, frame.flux_r[c] * m["companion_flux_ratio"])
    return images


def render_galaxies(
    morphology: dict[str, np.ndarray],
    image_size: int,
    pixel_scale: np.ndarray,
    psf_fwhm: np.ndarray,
    psf_beta: np.ndarray,
    zero_point: float,
    bands: tuple[str, ...] = BANDS,
    oversample: int = 1,
    centre: np.ndarray | None = None,
) -> np.ndarray:
    """Noiseless PSF-convolved images (n, n_bands, size, size) in counts.

    ``psf_fwhm`` (arcsec) and ``psf_beta`` give a Moffat PSF per galaxy and band, (n, n_bands); the
    other arguments are those of ``intrinsic_images``. ``oversample=1`` is fast and within 4% of
    GalSim in the cores of the most compact bulges; 2 is within 0.5% (tests/test_simulate.py).
    """
    n, s, size = len(morphology["magnitude_r"]), oversample, image_size
    images = intrinsic_images(morphology, size, pixel_scale, zero_point, bands, oversample, centre)
    flat = images.reshape(n * len(bands), size * s, size * s)
    convolved = render.convolve_moffat(
        flat, (psf_fwhm / pixel_scale[:, None]).ravel(), np.asarray(psf_beta).ravel(), oversample=s, pad=8
    )
    return convolved.reshape(n, len(bands), size, size)


def add_artefacts(rng: np.random.Generator, images: np.ndarray, artefact: np.ndarray, sky_sigma: np.ndarray) -> None:
    """Add bright-star spikes, satellite trails and bad columns in place (counts), for the artifact answer."""
    n, n_bands, size, _ = images.shape
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    for index in np.nonzero(artefact > 0)[0]:
        kind = ARTEFACTS[artefact[index]]
        level = sky_sigma[index][:, None, None]
        if kind == "star_spike":
            sx, sy = rng.uniform(0, size, 2)
            amplitude = rng.uniform(200, 2000)
            core = np.exp(-((xx - sx) ** 2 + (yy - sy) ** 2) / (2 * (size / 40) ** 2))
            spikes = np.exp(-np.abs(xx - sx) * 2.0) * np.exp(-np.abs(yy - sy) / (size / 4)) + np.exp(
                -np.abs(yy - sy) * 2.0
            ) * np.exp(-np.abs(xx - sx) / (size / 4))
            images[index] += level * amplitude * (core + 0.05 * spikes)[None]
        elif kind == "satellite_trail":
            angle, offset = rng.uniform(0, np.pi), rng.uniform(-size / 3, size / 3)
            distance = (xx - size / 2) * np.sin(angle) - (yy - size / 2) * np.cos(angle) - offset
            images[index] += level * rng.uniform(5, 30) * np.exp(-(distance**2) / 2.0)[None]
        elif kind == "bad_column":
            column = rng.integers(0, size)
            band = rng.integers(0, n_bands)
            images[index, band, :, column : column + rng.integers(1, 3)] += level[band] * rng.uniform(10, 60)


def rgb_composite(images: np.ndarray, pixel_scale: np.ndarray, zero_point: float, bands=BANDS) -> np.ndarray:
    """Arcsinh-stretched RGB (n, H, W, 3) uint8 from g, r, z counts, with z as red and g as blue.

    The stretch works on surface brightness (counts per arcsec^2, in nanomaggy units) so that the
    same galaxy looks the same at any framing; the soft knee keeps faint outskirts visible.
    """
    nanomaggy = 10 ** (0.4 * (zero_point - 22.5))
    surface = images / (nanomaggy * pixel_scale[:, None, None, None] ** 2)
    balance = {"g": 2.2, "r": 1.3, "z": 0.75}
    order = [bands.index(b) for b in ("z", "r", "g")]
    scaled = (
        surface[:, order] * np.array([balance["z"], balance["r"], balance["g"]], dtype=np.float32)[None, :, None, None]
    )
    softening = 0.6
    stretched = np.arcsinh(scaled / softening) / np.arcsinh(60.0 / softening)
    return (np.clip(stretched, 0.0, 1.0) * 255 + 0.5).astype(np.uint8).transpose(0, 2, 3, 1)


# --- one batch of Galaxy Zoo-like galaxies ----------------------------------------------------------


def galaxy_batch(rng: np.random.Generator, n: int, image_size: int = 64, n_volunteers: int = 40, oversample: int = 1):
    """Draw, render and vote on ``n`` Galaxy Zoo-like galaxies.

    Returns
    -------
    rgb:
        (n, size, size, 3) uint8 composites.
    votes:
        DataFrame of vote counts, one column per schema answer.
    truth:
        DataFrame of latent parameters (prefixed ``true_``) and imaging conditions.
    """
    morph = draw_morphology(rng, n)
    artefact = rng.choice(len(ARTEFACTS), n, p=[0.955, 0.02, 0.015, 0.01])
    pixel_scale = morph["half_light_radius"] * FRAME_HALF_LIGHT_RADII / image_size
    psf_fwhm = np.stack([GZ_PSF_FWHM[b] * np.exp(rng.normal(0, 0.12, n)) for b in BANDS], axis=1)
    psf_beta = np.full((n, len(BANDS)), 3.0)
    images = render_galaxies(morph, image_size, pixel_scale, psf_fwhm, psf_beta, GZ_ZERO_POINT, BANDS, oversample)
    sky = np.stack([10 ** (-0.4 * (GZ_SKY_MAG[b] - GZ_ZERO_POINT)) * pixel_scale**2 for b in BANDS], axis=1)
    gain = 1.0
    sky_sigma = np.sqrt(sky / gain)
    add_artefacts(rng, images, artefact, sky_sigma)
    flat = render.add_noise(rng, images.reshape(-1, image_size, image_size), sky.ravel(), gain, 0.0)
    observed = flat.reshape(images.shape) - sky[:, :, None, None].astype(np.float32)  # sky-subtracted, as surveys serve
    rgb = rgb_composite(observed, pixel_scale, GZ_ZERO_POINT)
    # Signal-to-noise of the whole galaxy in r: flux over the noise in ~ 2 half-light radii.
    flux_r = 10 ** (-0.4 * (morph["magnitude_r"] - GZ_ZERO_POINT))
    aperture_pixels = np.pi * (2 * morph["half_light_radius"] / pixel_scale) ** 2
    snr = 0.5 * flux_r / np.sqrt(0.5 * flux_r + aperture_pixels * sky[:, 1])
    # What limits volunteers in practice: small, faint galaxies look smooth and featureless.
    surface_brightness_snr = snr * np.clip(3.0 / morph["half_light_radius"], 0.05, 1.0)
    clarity = clarity_of(morph["half_light_radius"], psf_fwhm[:, 1], surface_brightness_snr)
    truth = {**morph, "artefact": artefact}
    votes = simulate_votes(rng, truth, clarity, n_volunteers)
    truth_table = pd.DataFrame(
        {f"true_{k}": v for k, v in truth.items() if np.ndim(v) == 1}
        | {
            "true_merger_label": np.asarray(MERGER_STATES)[morph["merger_state"]],
            "true_artefact_label": np.asarray(ARTEFACTS)[artefact],
            "pixel_scale_arcsec": pixel_scale,
            "psf_fwhm_r_arcsec": psf_fwhm[:, 1],
            "snr_r": snr,
            "clarity": clarity,
        }
    )
    return rgb, votes, truth_table
