"""The latent morphology of a galaxy: the one model behind the Galaxy Zoo-like images and the alert hosts.

The model: a Sersic bulge (n about 4) plus an exponential disk, a bulge-to-total ratio, inclination,
position angle, size and surface brightness; logarithmic spiral arms (1 to 6, tight to loose, of
varying strength); bars (none, weak, strong); companions, tidal tails and lopsided disks for
mergers and disturbances; star-forming clumps; redder bulges than disks. :func:`draw_morphology`
draws it in steps (shape, disk features, disturbance, size and colour).
"""

from __future__ import annotations

import numpy as np

MAX_CLUMPS = 8
MERGER_STATES = ("none", "minor-disturbance", "major-disturbance", "merger")


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
