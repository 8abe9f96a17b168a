"""Galaxy Zoo-like galaxies: a morphology model, g/r/z rendering, RGB composites and volunteer votes.

One morphology model serves two purposes: the Galaxy Zoo-like images (``render_galaxies`` at a
framing that follows each galaxy's size, as Galaxy Zoo crops do) and the host galaxies of the alert
simulator (``render_galaxies`` at the ZTF pixel scale, in ``alertlib.sky.alerts``). That shared model is
what makes pre-training on galaxies a meaningful test for alert classification.

The model: a Sersic bulge (n about 4) plus an exponential disk, a bulge-to-total ratio, inclination,
position angle, size and surface brightness; logarithmic spiral arms (1 to 6, tight to loose, of
varying strength); bars (none, weak, strong); companions, tidal tails and lopsided disks for
mergers and disturbances; star-forming clumps; redder bulges than disks; and, in Galaxy Zoo images
only, artefacts (bright-star spikes, satellite trails, bad columns).

Votes: volunteers walk the decision tree read from ``alertlib.io.schema`` (never hard-coded here). Each
question's answer probabilities follow the true morphology (``ANSWER_MODEL``) and drift towards what
a blurry, noisy image suggests as the galaxy gets smaller than the PSF or fainter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from alertlib.io.schema import Schema, load_schema
from alertlib.sky import render

BANDS = ("g", "r", "z")
MAX_CLUMPS = 8
MERGER_STATES = ("none", "minor-disturbance", "major-disturbance", "merger")
ARTEFACTS = ("none", "star_spike", "satellite_trail", "bad_column")
# Galaxy Zoo DECaLS-like imaging: zero point of the counts, sky surface brightness (mag/arcsec^2) and
# PSF FWHM (arcsec) per band.
GZ_ZERO_POINT = 30.0
GZ_SKY_MAG = {"g": 22.0, "r": 21.0, "z": 19.9}
GZ_PSF_FWHM = {"g": 1.45, "r": 1.3, "z": 1.25}
# Galaxy Zoo frames a galaxy so that its light fills the cutout: the image spans this many
# half-light radii.
FRAME_HALF_LIGHT_RADII = 9.0


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _shape(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Smooth or disk, bulge-to-total ratio, inclination and axis ratios."""
    smooth = rng.random(n) < 0.42
    bulge_fraction = np.where(smooth, rng.uniform(0.85, 1.0, n), rng.beta(1.4, 3.5, n))
    cos_inclination = np.where(smooth, 1.0, rng.uniform(0.0, 1.0, n))
    # Ellipticals: intrinsic shapes from round to cigar; bulges of disks are rounder.
    bulge_axis_ratio = np.where(smooth, rng.beta(4.0, 2.0, n) * 0.8 + 0.2, rng.uniform(0.6, 1.0, n))
    return {
        "smooth": smooth,
        "bulge_fraction": bulge_fraction,
        "bulge_axis_ratio": bulge_axis_ratio,
        "boxy_bulge": rng.random(n) < 0.25,
        "inclination": np.degrees(np.arccos(cos_inclination)),
        "disk_axis_ratio": np.sqrt(cos_inclination**2 * (1 - 0.12**2) + 0.12**2),
    }


def _disk_features(rng: np.random.Generator, smooth: np.ndarray, bulge_fraction: np.ndarray) -> dict[str, np.ndarray]:
    """Spiral arms, bars and star-forming clumps of the disks (none for smooth galaxies)."""
    n = smooth.size
    disk = ~smooth
    has_arms = disk & (rng.random(n) < 0.7)
    arm_count = np.where(has_arms, rng.choice([1, 2, 2, 2, 3, 3, 4, 5, 6], n), 0)
    arm_pitch = np.where(has_arms, rng.uniform(8.0, 40.0, n), 0.0)  # degrees: small = tightly wound
    arm_strength = np.where(has_arms, rng.uniform(0.25, 1.0, n), 0.0)
    bar_draw = rng.random(n)
    bar_strength = np.where(
        disk & (bar_draw < 0.15),
        rng.uniform(0.55, 1.0, n),
        np.where(disk & (bar_draw < 0.35), rng.uniform(0.2, 0.45, n), 0.0),
    )
    bar_length = rng.uniform(0.5, 1.0, n)  # in disk half-light radii
    bar_angle = rng.uniform(0, np.pi, n)
    clump_count = np.where(
        disk, np.minimum(rng.poisson(3.0 * (1 - bulge_fraction) * (0.3 + arm_strength)), MAX_CLUMPS), 0
    )
    return {
        "arm_count": arm_count,
        "arm_pitch": arm_pitch,
        "arm_strength": arm_strength,
        "bar_strength": bar_strength,
        "bar_length": bar_length,
        "bar_angle": bar_angle,
        "clump_count": clump_count,
        "clump_fraction": rng.uniform(0.03, 0.15, n),
        "clump_radius": rng.exponential(0.9, (n, MAX_CLUMPS)) + 0.2,  # disk half-light radii, in the disk plane
        "clump_angle": rng.uniform(0, 2 * np.pi, (n, MAX_CLUMPS)),
    }


def _disturbance(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Merger state, and the companion, tidal tails and lopsidedness that go with it."""
    merger_state = rng.choice(len(MERGER_STATES), n, p=[0.74, 0.11, 0.08, 0.07])
    companion_flux_ratio = np.select(
        [merger_state == 1, merger_state == 2, merger_state == 3],
        [rng.uniform(0.05, 0.25, n), rng.uniform(0.15, 0.5, n), rng.uniform(0.4, 1.0, n)],
        0.0,
    )
    companion_separation = np.select(
        [merger_state == 1, merger_state == 2, merger_state == 3],
        [rng.uniform(2.5, 4.0, n), rng.uniform(1.5, 3.0, n), rng.uniform(0.6, 1.5, n)],
        0.0,
    )
    tidal_strength = np.select(
        [merger_state == 2, merger_state == 3], [rng.uniform(0.1, 0.25, n), rng.uniform(0.15, 0.35, n)], 0.0
    )
    lopsidedness = np.select(
        [merger_state == 1, merger_state >= 2], [rng.uniform(0.1, 0.3, n), rng.uniform(0.2, 0.5, n)], 0.0
    )
    return {
        "merger_state": merger_state,
        "companion_flux_ratio": companion_flux_ratio,
        "companion_separation": companion_separation,
        "tidal_strength": tidal_strength,
        "lopsidedness": lopsidedness,
    }


def _size_and_colour(rng: np.random.Generator, smooth: np.ndarray) -> dict[str, np.ndarray]:
    """Magnitude, half-light radius, bulge-to-disk size ratio and g-r colours."""
    n = smooth.size
    magnitude_r = rng.uniform(14.0, 17.7, n)
    # Brighter galaxies are larger on the sky; ellipticals are more compact at fixed brightness.
    half_light_radius = (
        3.2 * 10 ** (-0.2 * (magnitude_r - 15.5)) * np.exp(rng.normal(0, 0.3, n)) * np.where(smooth, 0.7, 1.0)
    )
    return {
        "magnitude_r": magnitude_r,
        "half_light_radius": half_light_radius,
        "bulge_radius_ratio": np.where(smooth, 1.0, rng.uniform(0.15, 0.45, n)),
        "bulge_colour_gr": rng.normal(0.78, 0.05, n),
        "disk_colour_gr": rng.normal(0.45, 0.1, n),
    }


def draw_morphology(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Draw the latent morphology of ``n`` galaxies (angular sizes in arcsec, magnitudes in r).

    Returns
    -------
    dict
        Arrays of shape (n,) (clump positions: (n, MAX_CLUMPS)); the keys are the truth columns.
    """
    shape = _shape(rng, n)
    features = _disk_features(rng, shape["smooth"], shape["bulge_fraction"])
    disturbance = _disturbance(rng, n)
    size = _size_and_colour(rng, shape["smooth"])
    bulge_colour_gr, disk_colour_gr = size["bulge_colour_gr"], size["disk_colour_gr"]
    return {
        "smooth": shape["smooth"],
        "bulge_fraction": shape["bulge_fraction"],
        "bulge_sersic_n": rng.uniform(3.5, 4.5, n),
        "disk_sersic_n": rng.uniform(0.9, 1.1, n),
        "bulge_axis_ratio": shape["bulge_axis_ratio"],
        "boxy_bulge": shape["boxy_bulge"],
        "inclination": shape["inclination"],
        "disk_axis_ratio": shape["disk_axis_ratio"],
        "position_angle": rng.uniform(0, np.pi, n),
        "half_light_radius": size["half_light_radius"],
        "bulge_radius_ratio": size["bulge_radius_ratio"],
        "magnitude_r": size["magnitude_r"],
        "arm_count": features["arm_count"],
        "arm_pitch": features["arm_pitch"],
        "arm_strength": features["arm_strength"],
        "arm_phase": rng.uniform(0, 2 * np.pi, n),
        "bar_strength": features["bar_strength"],
        "bar_length": features["bar_length"],
        "bar_angle": features["bar_angle"],
        "clump_count": features["clump_count"],
        "clump_fraction": features["clump_fraction"],
        "clump_radius": features["clump_radius"],
        "clump_angle": features["clump_angle"],
        "merger_state": disturbance["merger_state"],
        "companion_flux_ratio": disturbance["companion_flux_ratio"],
        "companion_separation": disturbance["companion_separation"],
        "companion_angle": rng.uniform(0, 2 * np.pi, n),
        "tidal_strength": disturbance["tidal_strength"],
        "lopsidedness": disturbance["lopsidedness"],
        "bulge_colour_gr": bulge_colour_gr,
        "bulge_colour_rz": bulge_colour_gr * 0.55 + rng.normal(0, 0.03, n),
        "disk_colour_gr": disk_colour_gr,
        "disk_colour_rz": disk_colour_gr * 0.6 + rng.normal(0, 0.05, n),
    }


def subset(morphology: dict[str, np.ndarray], index) -> dict[str, np.ndarray]:
    """The morphology of some galaxies (an index or boolean mask)."""
    return {key: value[index] for key, value in morphology.items()}


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


# --- volunteer votes -------------------------------------------------------------------------------


def _softmax(logits):
    logits = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def _smooth_or_featured(t):
    featured = (
        4.0 * (0.6 - t["bulge_fraction"])
        + 2.5 * t["arm_strength"]
        + 2.0 * t["bar_strength"]
        + 0.4 * t["clump_count"]
        + 2.0 * (t["inclination"] > 75)
    )
    artefact = np.where(t["artefact"] > 0, 4.0, -4.0)
    return {"smooth": -featured / 2, "featured-or-disk": featured / 2, "artifact": artefact}, "smooth"


def _disk_edge_on(t):
    edge = (t["inclination"] - 74.0) / 4.0
    return {"yes": edge / 2, "no": -edge / 2}, "no"


def _has_spiral_arms(t):
    arms = 6.0 * (t["arm_strength"] - 0.2) * (t["arm_count"] > 0) - 2.0 * (t["arm_count"] == 0)
    return {"yes": arms / 2, "no": -arms / 2}, "no"


def _bar(t):
    b = t["bar_strength"]
    return {"strong": 8.0 * (b - 0.5), "weak": 3.0 - 25.0 * (b - 0.33) ** 2 - 3 * (b == 0), "no": 8.0 * (0.2 - b)}, "no"


def _bulge_size(t):
    bt = t["bulge_fraction"]
    centres = {"dominant": 0.75, "large": 0.5, "moderate": 0.3, "small": 0.12, "none": 0.0}
    return {a: -((bt - c) ** 2) / 0.012 for a, c in centres.items()}, "moderate"


def _how_rounded(t):
    q = t["bulge_axis_ratio"]
    centres = {"round": 0.95, "in-between": 0.7, "cigar-shaped": 0.35}
    return {a: -((q - c) ** 2) / 0.02 for a, c in centres.items()}, "in-between"


def _edge_on_bulge(t):
    has_bulge = 8.0 * (t["bulge_fraction"] - 0.08)
    boxy = np.where(t["boxy_bulge"], 2.0, -2.0)
    return {"boxy": has_bulge / 2 + boxy, "none": -has_bulge, "rounded": has_bulge / 2 - boxy}, "rounded"


def _spiral_winding(t):
    pitch = t["arm_pitch"]
    centres = {"tight": 10.0, "medium": 22.0, "loose": 36.0}
    return {a: -((pitch - c) ** 2) / 40.0 for a, c in centres.items()}, "medium"


def _spiral_arm_count(t):
    count = t["arm_count"]
    scores = {a: -2.5 * (count - int(a)) ** 2 for a in ("1", "2", "3", "4")}
    scores["more-than-4"] = np.where(count > 4, 2.5, -6.0)
    scores["cant-tell"] = np.full(len(count), -2.0)
    return scores, "cant-tell"


def _merging(t):
    state = t["merger_state"]
    return {a: np.where(state == i, 3.0, -1.5 * abs(i - state)) for i, a in enumerate(MERGER_STATES)}, "none"


# The link from true morphology to each question's answers, keyed by question and answer name: the
# tree's structure and column names come from the schema. Each entry returns (logits per answer, the
# answer a blurred or noisy image suggests).
ANSWER_MODEL = {
    "smooth-or-featured": _smooth_or_featured,
    "disk-edge-on": _disk_edge_on,
    "has-spiral-arms": _has_spiral_arms,
    "bar": _bar,
    "bulge-size": _bulge_size,
    "how-rounded": _how_rounded,
    "edge-on-bulge": _edge_on_bulge,
    "spiral-winding": _spiral_winding,
    "spiral-arm-count": _spiral_arm_count,
    "merging": _merging,
}


def answer_probabilities(truth: dict[str, np.ndarray], clarity: np.ndarray, schema: Schema) -> list[np.ndarray]:
    """For each schema question, (n, n_answers) probabilities a volunteer gives each answer.

    ``clarity`` in [0, 1] mixes the morphology's answer with the answer that a blurry, noisy image
    suggests (and some plain confusion), so unresolved or faint galaxies get uncertain votes.
    """
    probabilities = []
    for question in schema.questions:
        if question.name not in ANSWER_MODEL:
            raise KeyError(
                f"the vote simulator has no answer model for question {question.name!r} of schema {schema.name}; "
                f"add one to alertlib.sky.galaxies.ANSWER_MODEL"
            )
        scores, blurred_answer = ANSWER_MODEL[question.name](truth)
        missing = set(question.answers) - set(scores)
        if missing:
            raise KeyError(f"answer model for {question.name!r} lacks answers {sorted(missing)}")
        logits = np.stack([np.broadcast_to(scores[a], clarity.shape) for a in question.answers], axis=1).astype(
            np.float64
        )
        sharp = _softmax(logits)
        blurred = np.full_like(sharp, 0.3 / len(question.answers))
        blurred[:, question.answers.index(blurred_answer)] += 0.7
        probabilities.append(clarity[:, None] * sharp + (1 - clarity[:, None]) * blurred)
    return probabilities


def simulate_votes(
    rng: np.random.Generator,
    truth: dict[str, np.ndarray],
    clarity: np.ndarray,
    n_volunteers: int = 40,
    schema: Schema | None = None,
    agreement: float = 25.0,
) -> pd.DataFrame:
    """Vote counts (one column per answer) from volunteers walking the decision tree.

    Each galaxy gets ``n_volunteers`` (+-15%) volunteers. A question asked after answer ``a`` of a
    parent receives exactly the volunteers who gave ``a``; their answers are multinomial with
    probabilities drawn from a Dirichlet around ``answer_probabilities`` (``agreement`` sets how
    much volunteers disagree beyond counting noise).
    """
    schema = schema or load_schema()
    n = len(clarity)
    volunteers = np.round(n_volunteers * rng.uniform(0.85, 1.15, n)).astype(np.int64)
    probabilities = answer_probabilities(truth, clarity, schema)
    counts: dict[tuple[str, str], np.ndarray] = {}
    columns = {}
    for question, p in zip(schema.questions, probabilities, strict=True):
        asked = volunteers if question.asked_if is None else counts[tuple(question.asked_if)]
        p = np.maximum(p, 1e-4)
        # Gamma draws normalised = Dirichlet, vectorised over galaxies.
        p = rng.gamma(agreement * p)
        p = p / p.sum(axis=1, keepdims=True)
        votes = rng.multinomial(asked, p)
        for k, answer in enumerate(question.answers):
            counts[(question.name, answer)] = votes[:, k]
            columns[schema.column(question.name, answer)] = votes[:, k]
    return pd.DataFrame(columns)[schema.answer_columns]


def clarity_of(half_light_radius: np.ndarray, psf_fwhm: np.ndarray, snr: np.ndarray) -> np.ndarray:
    """How clearly volunteers can see a galaxy's morphology: resolution (size / PSF) times S/N terms."""
    resolution = half_light_radius / psf_fwhm
    return _sigmoid(3.0 * np.log(resolution / 0.9)) * _sigmoid(2.0 * (np.log10(np.maximum(snr, 1e-3)) - 1.3))


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
