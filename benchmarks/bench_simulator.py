"""Simulator speed: alert triplets per second and galaxies per second, beside GalSim on the same scenes.

Run: ``.venv/bin/python benchmarks/bench_simulator.py [--alerts-sources 256] [--galaxies 512] [--galsim 40]``

alertlib renders whole batches at once (numpy, FFTs in single precision); GalSim draws one
object at a time. For the comparison GalSim draws the same scenes: each galaxy's bulge and disk
(Sersic profiles with the same parameters) convolved with each band's Moffat PSF, and for each alert
the host and the point source convolved with the science PSF and the host with the reference PSF.
GalSim's scenes are simpler (no arms, bars, clumps, companions, noise or subtraction), so the
ratio understates alertlib's advantage. Timings are wall-clock on this machine; one run, one table.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def time_alerts(n_sources: int) -> tuple[float, int, tuple]:
    from alertlib.alerts import simulate_alert_batch
    from alertlib.preprocess import l2_normalise_stack

    simulate_alert_batch(0, 99, 16, 0)  # warm-up (tables, imports)
    start = time.perf_counter()
    raw, table = simulate_alert_batch(0, 0, n_sources, 0)
    np.moveaxis(l2_normalise_stack(np.moveaxis(raw, -1, 1)), 1, -1)
    elapsed = time.perf_counter() - start
    return len(raw) / elapsed, len(raw), (raw, table)


def time_galaxies(n: int) -> tuple[float, dict]:
    from alertlib import galaxies

    galaxies.galaxy_batch(np.random.default_rng(99), 8)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    galaxies.galaxy_batch(rng, n)
    elapsed = time.perf_counter() - start
    return n / elapsed, galaxies.draw_morphology(np.random.default_rng(0), n)


def galsim_galaxies(morph: dict, count: int, image_size: int = 64) -> float:
    """GalSim: bulge + disk convolved with a Moffat PSF in 3 bands, for ``count`` galaxies."""
    import galsim

    from alertlib.galaxies import BANDS, FRAME_HALF_LIGHT_RADII, GZ_PSF_FWHM

    start = time.perf_counter()
    for i in range(count):
        scale = morph["half_light_radius"][i] * FRAME_HALF_LIGHT_RADII / image_size
        re = morph["half_light_radius"][i]
        bt = morph["bulge_fraction"][i]
        bulge = galsim.Sersic(
            round(morph["bulge_sersic_n"][i], 1),
            half_light_radius=max(re * morph["bulge_radius_ratio"][i], 0.3 * scale),
            flux=bt,
        )
        bulge = bulge.shear(q=morph["bulge_axis_ratio"][i], beta=morph["position_angle"][i] * galsim.radians)
        disk = galsim.Exponential(half_light_radius=re, flux=1 - bt).shear(
            q=max(morph["disk_axis_ratio"][i], 0.13), beta=morph["position_angle"][i] * galsim.radians
        )
        for band in BANDS:
            scene = galsim.Convolve(bulge + disk, galsim.Moffat(beta=3.0, fwhm=GZ_PSF_FWHM[band]))
            scene.drawImage(nx=image_size, ny=image_size, scale=scale)
    return count / (time.perf_counter() - start)


def galsim_alerts(count: int) -> float:
    """GalSim: per alert a host (bulge + disk) and a point source with the science PSF, the host with the reference PSF."""
    import galsim

    from alertlib import galaxies

    rng = np.random.default_rng(1)
    morph = galaxies.draw_morphology(rng, count)
    start = time.perf_counter()
    for i in range(count):
        re = min(morph["half_light_radius"][i] * 0.6, 4.0)
        bt = morph["bulge_fraction"][i]
        host = galsim.Sersic(
            round(morph["bulge_sersic_n"][i], 1),
            half_light_radius=max(re * morph["bulge_radius_ratio"][i], 0.3),
            flux=bt * 1e4,
        )
        host = host + galsim.Exponential(half_light_radius=re, flux=(1 - bt) * 1e4).shear(
            q=max(morph["disk_axis_ratio"][i], 0.13), beta=0.3 * galsim.radians
        )
        point = galsim.DeltaFunction(flux=2e3).shift(rng.normal(0, 1.5), rng.normal(0, 1.5))
        science = galsim.Convolve(
            host + point, galsim.Moffat(beta=rng.uniform(2.2, 4.0), fwhm=rng.uniform(1.6, 3.0) * 1.01)
        )
        reference = galsim.Convolve(host, galsim.Moffat(beta=2.5, fwhm=1.8 * 1.01))
        science.drawImage(nx=63, ny=63, scale=1.01)
        reference.drawImage(nx=63, ny=63, scale=1.01)
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--alert-sources", type=int, default=256, help="sources in the timed alert batch (~5 alerts each)"
    )
    parser.add_argument("--galaxies", type=int, default=512)
    parser.add_argument("--galsim", type=int, default=40, help="scenes GalSim draws for each comparison")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from alertlib.provenance import cpu_model

    alert_rate, n_alerts, _ = time_alerts(args.alert_sources)
    galaxy_rate, morph = time_galaxies(args.galaxies)
    galsim_alert_rate = galsim_alerts(args.galsim)
    galsim_galaxy_rate = galsim_galaxies(morph, args.galsim)
    result = {
        "cpu": cpu_model(),
        "alert_triplets_per_s": round(alert_rate, 1),
        "alerts_timed": n_alerts,
        "galsim_alert_scenes_per_s": round(galsim_alert_rate, 1),
        "alert_speedup_vs_galsim": round(alert_rate / galsim_alert_rate, 1),
        "galaxies_per_s": round(galaxy_rate, 1),
        "galaxies_timed": args.galaxies,
        "galsim_galaxies_per_s": round(galsim_galaxy_rate, 1),
        "galaxy_speedup_vs_galsim": round(galaxy_rate / galsim_galaxy_rate, 1),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"machine: {result['cpu']}")
    print(
        f"alert triplets: {alert_rate:8.0f} /s  (GalSim, simpler scenes: {galsim_alert_rate:6.0f} /s; ratio {result['alert_speedup_vs_galsim']}x)"
    )
    print(
        f"galaxies 64x64: {galaxy_rate:8.0f} /s  (GalSim, simpler scenes: {galsim_galaxy_rate:6.0f} /s; ratio {result['galaxy_speedup_vs_galsim']}x)"
    )
    print(
        f"targets: >= 1000 triplets/s, >= 500 galaxies/s -> {'met' if alert_rate >= 1000 and galaxy_rate >= 500 else 'NOT met'} in this run"
    )


if __name__ == "__main__":
    main()
