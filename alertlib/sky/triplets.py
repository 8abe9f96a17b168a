"""Rendering a batch of alerts: the science, reference and difference cutouts of each.

For each alert (all on an 80x80 canvas in Fourier space, then cropped to 63x63 around the candidate),
:func:`render_batch` runs these steps in order:

1. **scene** (per source, :func:`draw_scene`): the candidate's position, the host's light, the field's
   stars and galaxies, and the point source on the candidate (a variable star, the bright star behind
   a bogus residual, or an AGN nucleus);
2. **changes** (per alert, :func:`_changes`): what changed since the reference: the transient, the
   variable part, an asteroid (trailed or not), a ghost, a noise fluctuation at the limit;
3. **noiseless models** (:func:`_noiseless_models`): the science image with the epoch's PSF (and, on
   cloudy exposures, the calibration error of every static source), the reference with its own
   (usually sharper) Moffat PSF;
4. **science image** (:func:`_science_image`): photon and read noise, the sky level the template's sky
   scaled by the exposure's transparency;
5. **reference image** (:func:`_reference_image`): a deep co-add's noise (the Poisson noise of its
   co-added sky with an excess, gain-matched to the exposure), correlated between neighbouring pixels
   as a co-add of resampled epochs is;
6. **bogus defects** (:func:`_add_defects`): science-only cosmic rays, hot pixels and bad columns;
7. **difference** (:func:`_zogy_difference`): a ZOGY subtraction (Zackay, Ofek & Gal-Yam 2016; ZTF's
   method), whitened with both images' noise spectra so that its noise is white, made with PSF models
   whose widths carry a small error and after a small misregistration, plus a small residual
   background; a negative subtraction written as reference minus science;
8. **cutouts** (:func:`_cutouts`): the reference background-matched to the science image, the three
   images cropped to 63x63;
9. **masks** (:func:`_mask`): masked pixels (zero) shared by the three cutouts: strips where a stamp
   runs off the chip and blocks around saturated stars and bad pixels;
10. **candidate fields** (:func:`alertlib.sky.measurements.candidate_fields`): magpsf, sigmapsf, fwhm
    and the Pan-STARRS match of each alert.

Each step draws from the batch's random generator in this order, so a batch is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from alertlib.core.vocab import STAMP_SIZE
from alertlib.sky import render
from alertlib.sky.calibration import (
    DIFFERENCE_BACKGROUND_SPREAD,
    GAIN,
    MASKED_BLOCK_FRACTION,
    MASKED_BLOCK_SIDE_PX,
    MASKED_STRIP_DEPTH_PX,
    MASKED_STRIP_FRACTION,
    PSF_MODEL_ERROR,
    REFERENCE_BETA,
    REFERENCE_FRAMES,
    REFERENCE_FRAMES_MAX,
    REFERENCE_FRAMES_MORE,
    REFERENCE_NOISE_EXCESS,
    REFERENCE_NOISE_SMOOTHING,
    REFERENCE_NOISE_SMOOTHING_SPREAD,
    REFERENCE_NOISE_SPREAD,
    REGISTRATION_ERROR_PX,
)
from alertlib.sky.canvas import CANVAS, CENTRE, CROP, add_points, point_spectrum
from alertlib.sky.distributions import lognormal
from alertlib.sky.field import draw_field, field_spectra
from alertlib.sky.hosts import host_spectra
from alertlib.sky.measurements import candidate_fields


@dataclass
class Scene:
    """What is on each source's canvas before any alert: one entry per source."""

    cand_x: np.ndarray  # canvas position of the candidate
    cand_y: np.ndarray
    offset_x: np.ndarray  # the candidate's offset from its host's centre (arcsec), zero without a host
    offset_y: np.ndarray
    static_spectrum: np.ndarray  # (n_src, 2 bands, H, W//2+1): host and field, before the PSF
    field: pd.DataFrame  # the field objects (alertlib.sky.field.draw_field)
    central_star: np.ndarray  # bool: a point source (star) on the candidate
    central_star_mag: np.ndarray
    nucleus: np.ndarray  # bool: an AGN nucleus on the candidate
    nucleus_mag: np.ndarray


@dataclass
class Exposures:
    """Per alert: its source, band, zero point and the two PSFs (science, reference)."""

    src: np.ndarray  # row of the alert's source
    band: np.ndarray  # 0 = g, 1 = r
    zp: np.ndarray
    fwhm: np.ndarray  # science PSF (pixels) and Moffat beta
    beta: np.ndarray
    ref_fwhm: np.ndarray
    sci_transfer: np.ndarray
    ref_transfer: np.ndarray
    alert_class: np.ndarray  # the source's class index
    bogus_kind: np.ndarray

    def to_counts(self, mag):
        """Counts of a source of magnitude ``mag`` in each alert's exposure."""
        return 10 ** (-0.4 * (mag - self.zp))


def draw_scene(rng: np.random.Generator, sources: pd.DataFrame) -> Scene:
    """Per source: candidate position, host light, the field, and the point source on the candidate."""
    n_src = len(sources)
    cls = sources["class_index"].to_numpy()
    cand_x = CENTRE + rng.uniform(-0.5, 0.5, n_src)
    cand_y = CENTRE + rng.uniform(-0.5, 0.5, n_src)
    host_spectrum, offset_x, offset_y = host_spectra(rng, sources, cand_x, cand_y)
    # The field (stars and faint galaxies), static: in the reference and the science image alike.
    field = draw_field(rng, sources["field_star_density"].to_numpy(), sources["extinction_r"].to_numpy())
    host_spectrum += field_spectra(field, n_src)
    # A point source on the candidate: the variable star, or the star behind a bogus residual; or an AGN nucleus.
    return Scene(
        cand_x,
        cand_y,
        offset_x,
        offset_y,
        host_spectrum,
        field,
        sources["central_star"].to_numpy(),
        sources["star_mag"].to_numpy(),
        cls == 2,
        sources["nucleus_mag"].to_numpy(),
    )


def _exposures(sources: pd.DataFrame, alerts: pd.DataFrame) -> Exposures:
    canvas = (CANVAS, CANVAS)
    src = alerts["source_index"].to_numpy()
    fwhm = alerts["fwhm_px"].to_numpy()
    beta = alerts["psf_beta"].to_numpy()
    ref_fwhm = sources["reference_fwhm"].to_numpy()[src]
    return Exposures(
        src=src,
        band=(alerts["fid"].to_numpy() == 2).astype(np.int64),
        zp=alerts["magzpsci"].to_numpy(),
        fwhm=fwhm,
        beta=beta,
        ref_fwhm=ref_fwhm,
        sci_transfer=render.moffat_transfer(fwhm, beta, canvas),
        ref_transfer=render.moffat_transfer(ref_fwhm, REFERENCE_BETA, canvas),
        alert_class=sources["class_index"].to_numpy()[src],
        bogus_kind=sources["bogus_kind"].to_numpy()[src],
    )


def _changes(
    rng: np.random.Generator, scene: Scene, exposures: Exposures, alerts: pd.DataFrame, like: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What changed since the reference: the transient, the variable part, an asteroid, a ghost, a noise blob.

    Returns the spectra (N, H, W//2+1) of the changes still to be convolved (asteroids, ghosts), the
    change of the candidate's point source (counts, signed), and each asteroid's trail length (pixels).
    """
    canvas = (CANVAS, CANVAS)
    n_alerts = len(alerts)
    src, a_cls = exposures.src, exposures.alert_class
    new_flux = np.where(a_cls <= 4, exposures.to_counts(alerts["true_difference_mag"].to_numpy()), 0.0)
    sign = alerts["difference_sign"].to_numpy()
    changed = np.zeros_like(like)
    # A fading variable star or AGN is fainter in the science image than in the reference.
    candidate_change = np.where(a_cls == 4, 0.0, sign * new_flux)
    trailed = (a_cls == 4) & (rng.random(n_alerts) < 0.4)
    trail_length = np.where(trailed, rng.uniform(2.0, 8.0, n_alerts), 0.0)
    trail_angle = rng.uniform(0, np.pi, n_alerts)
    for step in np.linspace(-0.5, 0.5, 7):
        px = scene.cand_x[src] + step * trail_length * np.cos(trail_angle)
        py = scene.cand_y[src] + step * trail_length * np.sin(trail_angle)
        add_points(changed, np.where(a_cls == 4, new_flux / 7, 0.0), px, py)
    ghost = exposures.bogus_kind == "ghost"
    ghost_width = rng.uniform(2.0, 4.0, n_alerts)
    if np.any(ghost):
        # A ghost: a defocused copy of a bright star, a blob of a few pixels, in the science image only.
        g = np.nonzero(ghost)[0]
        ghost_flux = exposures.to_counts(alerts["true_difference_mag"].to_numpy() - 1.0)[g]
        blob = render.gaussian_transfer(ghost_width[g], canvas)
        changed[g] += point_spectrum(ghost_flux, scene.cand_x[src][g], scene.cand_y[src][g]) * blob
    fluctuation = np.nonzero(exposures.bogus_kind == "noise")[0]
    if fluctuation.size:
        # A noise fluctuation at the limit: a faint blob about the PSF's size, in the science image only.
        flux = exposures.to_counts(alerts["true_difference_mag"].to_numpy())[fluctuation]
        blob = render.gaussian_transfer(rng.uniform(0.5, 1.5, fluctuation.size), canvas)
        f = src[fluctuation]
        changed[fluctuation] += point_spectrum(flux, scene.cand_x[f], scene.cand_y[f]) * blob
    return changed, candidate_change, trail_length


def _central_flux(scene: Scene, exposures: Exposures) -> np.ndarray:
    """Counts of the point source on the candidate in the reference: the star or the AGN nucleus."""
    src, to_counts = exposures.src, exposures.to_counts
    central_flux = np.where(scene.central_star[src], to_counts(scene.central_star_mag[src]), 0.0)
    central_flux += np.where(scene.nucleus[src], to_counts(np.nan_to_num(scene.nucleus_mag[src], nan=99.0)), 0.0)
    return central_flux


def _noiseless_models(
    rng: np.random.Generator, scene: Scene, exposures: Exposures, alerts: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Science and reference images without noise (N, H, W), and the asteroids' trail lengths."""
    canvas = (CANVAS, CANVAS)
    src, band = exposures.src, exposures.band
    # Static scene (host + field + quiescent central star / nucleus), in the alert's band.
    static = scene.static_spectrum[src, band] * exposures.to_counts(0.0).astype(np.float32)[:, None, None]
    # The science image's static sources are off by the exposure's calibration error (cloudy exposures,
    # observe_sources); the candidate's own error is in its change already.
    miscalibrated = static * alerts["calibration_error"].to_numpy().astype(np.float32)[:, None, None]
    central_flux = _central_flux(scene, exposures)
    # (The point source on the candidate is added below, already convolved: see add_points.)
    changed, candidate_change, trail_length = _changes(rng, scene, exposures, alerts, static)
    science_spectrum = (static + changed + miscalibrated) * exposures.sci_transfer
    reference_spectrum = static * exposures.ref_transfer
    # The candidate's point source (the star or nucleus, and its change) is the brightest thing in
    # most cutouts: drawn with its PSF's aliases folded in, so it does not ring (render.moffat_point_spectrum).
    candidate = (scene.cand_x[src], scene.cand_y[src])
    add_points(science_spectrum, central_flux + candidate_change, *candidate, psf=(exposures.fwhm, exposures.beta))
    add_points(
        reference_spectrum, central_flux, *candidate, psf=(exposures.ref_fwhm, np.full(len(alerts), REFERENCE_BETA))
    )
    science_model = render.irfft2(science_spectrum, canvas)
    reference_model = render.irfft2(reference_spectrum, canvas)
    return science_model, reference_model, trail_length


def _science_image(rng: np.random.Generator, science_model: np.ndarray, alerts: pd.DataFrame) -> np.ndarray:
    """The science image: the epoch's sky, photon and read noise (noise per epoch)."""
    sky = alerts["sky"].to_numpy()
    noise = alerts["noise"].to_numpy()
    read_noise = np.sqrt(np.maximum(noise**2 - sky / GAIN, 1.0))
    return render.add_noise(rng, science_model, sky, GAIN, read_noise)


def _reference_image(
    rng: np.random.Generator, reference_model: np.ndarray, alerts: pd.DataFrame, exposures: Exposures, n_src: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reference: one deep noise realisation per source and band.

    Returns the reference image (N, H, W, without its background level), its pixel noise per alert,
    and the width of the Gaussian that correlates its noise, per source.
    """
    src, band = exposures.src, exposures.band
    # The template's noise: the Poisson noise of its co-added sky, with an excess per source, gain-matched
    # to the exposure (scaled by its transmission, like the template's level).
    frames = np.where(
        rng.random(n_src) < REFERENCE_FRAMES_MORE,
        rng.integers(REFERENCE_FRAMES + 1, REFERENCE_FRAMES_MAX + 1, n_src),
        REFERENCE_FRAMES,
    )
    excess = lognormal(rng, REFERENCE_NOISE_EXCESS, REFERENCE_NOISE_SPREAD, n_src)
    template_sky = alerts["template_sky"].to_numpy()
    ref_noise_sigma = excess[src] * np.sqrt(template_sky / (GAIN * frames[src])) * alerts["transmission"].to_numpy()
    # Same realisation for every alert of a source in a band: the template does not change. A ZTF
    # reference is a co-add of resampled epochs, so its noise is correlated between neighbouring
    # pixels; smooth white noise to match, keeping its per-pixel standard deviation. How many epochs
    # and how much resampling differ from field to field: so does the correlation.
    smoothing = np.clip(lognormal(rng, REFERENCE_NOISE_SMOOTHING, REFERENCE_NOISE_SMOOTHING_SPREAD, n_src), 0.3, 2.5)
    reference_noise = render.correlated_noise(rng, (n_src, 2, CANVAS, CANVAS), smoothing)
    reference = reference_model + reference_noise[src, band] * ref_noise_sigma[:, None, None].astype(np.float32)
    return reference, ref_noise_sigma, smoothing


def _add_defects(
    rng: np.random.Generator, science: np.ndarray, scene: Scene, exposures: Exposures, alerts: pd.DataFrame
) -> None:
    """Science-only defects of bogus alerts (real space, in place): hot pixels, cosmic rays, bad columns."""
    src, a_kind = exposures.src, exposures.bogus_kind
    defects = np.zeros_like(science)
    defect_flux = exposures.to_counts(alerts["true_difference_mag"].to_numpy())
    cx, cy = np.rint(scene.cand_x[src]).astype(int), np.rint(scene.cand_y[src]).astype(int)
    for index in np.nonzero(np.isin(a_kind, ["cosmic_ray", "hot_pixel", "bad_column"]))[0]:
        if a_kind[index] == "hot_pixel":
            defects[index, cy[index], cx[index]] = defect_flux[index] * 0.6
        elif a_kind[index] == "cosmic_ray":
            length = rng.integers(1, 5)
            direction = rng.uniform(0, np.pi)
            for k in range(length):
                defects[
                    index, cy[index] + int(round(k * np.sin(direction))), cx[index] + int(round(k * np.cos(direction)))
                ] += defect_flux[index] * 0.5 / length
        else:
            defects[index, :, cx[index]] += defect_flux[index] * 0.05 * rng.uniform(0.5, 1.5)
    science += defects


def _zogy_difference(
    rng: np.random.Generator,
    science: np.ndarray,
    reference: np.ndarray,
    alerts: pd.DataFrame,
    exposures: Exposures,
    ref_noise_sigma: np.ndarray,
    smoothing: np.ndarray,
) -> np.ndarray:
    """The difference image (N, H, W): ZOGY (Zackay, Ofek & Gal-Yam 2016), as ZTF's pipeline does.

    D = (P_r N - P_n R) / sqrt(sigma_n^2 |P_r|^2 + S_r |P_n|^2) in Fourier space: its noise is white,
    as in real ZTF difference cutouts. Subtraction artefacts come from the pipeline's errors: a PSF
    model of the wrong width (psf_mismatch: large; others: small) and misregistration (dipole).
    """
    canvas = (CANVAS, CANVAS)
    n_alerts = len(alerts)
    a_kind = exposures.bogus_kind
    sky = alerts["sky"].to_numpy()
    noise = alerts["noise"].to_numpy()
    psf_error = np.where(
        a_kind == "psf_mismatch",
        rng.choice([-1, 1], n_alerts) * rng.uniform(0.12, 0.25, n_alerts),
        rng.normal(0, PSF_MODEL_ERROR, n_alerts),
    )
    shift_scale = np.where(a_kind == "dipole", rng.uniform(0.4, 1.2, n_alerts), REGISTRATION_ERROR_PX)
    shift_x, shift_y = rng.normal(0, 1, n_alerts) * shift_scale, rng.normal(0, 1, n_alerts) * shift_scale
    ref_spectrum = render.rfft2(reference)  # the reference model carries no sky
    sci_spectrum = render.rfft2(science - sky[:, None, None].astype(np.float32))
    psf_ref = render.moffat_transfer(
        exposures.ref_fwhm * (1 + psf_error), REFERENCE_BETA, canvas
    )  # the pipeline's models
    psf_sci = exposures.sci_transfer
    phase = render.shift_phase(shift_x, shift_y, canvas)
    sigma_n = noise.astype(np.float32)[:, None, None]
    sigma_r = ref_noise_sigma.astype(np.float32)[:, None, None]
    # The reference's noise is correlated: its power spectrum replaces sigma_r^2 (ZOGY with coloured
    # noise), which keeps the difference's noise white at every frequency.
    reference_power = sigma_r**2 * render.correlated_noise_power(smoothing, canvas)[exposures.src]
    whitening = np.sqrt(sigma_n**2 * psf_ref**2 + reference_power * psf_sci**2) + np.float32(1e-12)
    # Scaled back to science counts (a point source keeps its flux); the cutouts are L2-normalised anyway.
    flux_scale = np.sqrt(sigma_n**2 + sigma_r**2)
    difference = render.irfft2(
        (psf_ref * sci_spectrum - psf_sci * ref_spectrum * phase) * (flux_scale / whitening), canvas
    )
    difference += (rng.normal(0.0, DIFFERENCE_BACKGROUND_SPREAD, n_alerts)[:, None, None] * flux_scale).astype(
        np.float32
    )
    # A negative subtraction is written as reference minus science, so the source shows positive in
    # the difference cutout, as in ZTF packets with isdiffpos "f" (98% of those in ../shared/data,
    # alertlib.sky.packet_calibration.stream_calibration).
    difference *= alerts["difference_sign"].to_numpy().astype(np.float32)[:, None, None]
    return difference


def _cutouts(
    rng: np.random.Generator, science: np.ndarray, reference: np.ndarray, difference: np.ndarray, alerts: pd.DataFrame
) -> np.ndarray:
    """The three cutouts (N, 63, 63, 3): the reference background-matched to the science image, all cropped."""
    reference_level = alerts["reference_level"].to_numpy() * np.exp(rng.normal(0, 0.003, len(alerts)))
    reference_cutout = reference + reference_level[:, None, None].astype(np.float32)
    crop = slice(CROP, CROP + STAMP_SIZE)
    triplets = np.empty((len(alerts), STAMP_SIZE, STAMP_SIZE, 3), dtype=np.float32)
    for channel, image in enumerate((science, reference_cutout, difference)):
        triplets[..., channel] = image[:, crop, crop]
    return triplets


def _mask(rng: np.random.Generator, triplets: np.ndarray) -> None:
    """Masked pixels (in place), the same in all three cutouts; see MASKED_STRIP_FRACTION.

    Masked pixels are NaN in the packets and zero after NaN -> 0: the part of a stamp off the chip (a
    strip along any side), and masked blocks (around saturated stars, bad pixels), never on the
    candidate itself.
    """
    n_alerts = len(triplets)
    strip = rng.random(n_alerts) < MASKED_STRIP_FRACTION
    for index in np.nonzero(strip)[0]:
        depth = rng.integers(*MASKED_STRIP_DEPTH_PX)
        side = rng.integers(4)
        if side == 0:
            triplets[index, :depth] = 0.0
        elif side == 1:
            triplets[index, -depth:] = 0.0
        elif side == 2:
            triplets[index, :, :depth] = 0.0
        else:
            triplets[index, :, -depth:] = 0.0
    blocks = np.where(rng.random(n_alerts) < MASKED_BLOCK_FRACTION, rng.integers(1, 4, n_alerts), 0)
    middle = STAMP_SIZE // 2
    for index in np.nonzero(blocks)[0]:
        for _ in range(blocks[index]):
            height, width = rng.integers(*MASKED_BLOCK_SIDE_PX, 2)
            while True:  # a corner anywhere, the block clipped by the stamp, clear of the candidate
                top = rng.integers(-height // 2, STAMP_SIZE - height // 2)
                left = rng.integers(-width // 2, STAMP_SIZE - width // 2)
                if not (top - 3 <= middle < top + height + 3 and left - 3 <= middle < left + width + 3):
                    break
            triplets[index, max(top, 0) : top + height, max(left, 0) : left + width] = 0.0


def render_batch(
    rng: np.random.Generator, sources: pd.DataFrame, alerts: pd.DataFrame
) -> tuple[np.ndarray, pd.DataFrame]:
    """Render the triplets of ``alerts`` (all of whose sources are in ``sources``), step by step (module docstring).

    Returns
    -------
    triplets:
        (N, 63, 63, 3) float32 in counts, channels (science, reference, difference), before normalisation.
    measured:
        Per-alert measurements that go into the candidate table (magpsf, sigmapsf, fwhm, sgscore1, ...).
    """
    scene = draw_scene(rng, sources)
    exposures = _exposures(sources, alerts)
    science_model, reference_model, trail_length = _noiseless_models(rng, scene, exposures, alerts)
    science = _science_image(rng, science_model, alerts)
    reference, ref_noise_sigma, smoothing = _reference_image(rng, reference_model, alerts, exposures, len(sources))
    _add_defects(rng, science, scene, exposures, alerts)
    difference = _zogy_difference(rng, science, reference, alerts, exposures, ref_noise_sigma, smoothing)
    triplets = _cutouts(rng, science, reference, difference, alerts)
    _mask(rng, triplets)
    measured = candidate_fields(rng, sources, alerts, scene, exposures, trail_length)
    return triplets, measured
