"""Simulator speed: alert triplets per second and galaxies per second, beside GalSim on the same scenes.

Run: ``.venv/bin/python benchmarks/bench_simulator.py [--alert-sources 1024] [--galaxies 1024] [--repeats 3] [--workers N]``

The rates are medians of ``--repeats`` runs (a new seed each) of the production path, with one worker
process and with ``--workers``; batches have their own random streams, so the output does not depend
on the number of workers (``tests/test_simulate.py``).

alertlib renders whole batches at once (numpy, FFTs in single precision); GalSim draws one
object at a time. For the comparison GalSim draws the same scenes: each galaxy's bulge and disk
(Sersic profiles with the same parameters) convolved with each band's Moffat PSF, and for each alert
the host and the point source convolved with the science PSF and the host with the reference PSF.
GalSim's scenes are simpler (no arms, bars, clumps, companions, noise or subtraction), so the
ratio understates alertlib's advantage. Timings are wall-clock on this machine, all in one run.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def _rates(run, repeats: int) -> dict:
    """Median, quartiles and best of ``repeats`` timed calls of ``run()`` (which returns the items it made)."""
    rates = []
    for repeat in range(repeats):
        start = time.perf_counter()
        items = run(repeat)
        rates.append(items / (time.perf_counter() - start))
    q25, median, q75 = (float(v) for v in np.percentile(rates, [25, 50, 75]))
    return {"median": median, "q25": q25, "q75": q75, "best": max(rates), "repeats": repeats, "items": items}


def time_simulation(simulate, size: int, workers: int, repeats: int) -> dict:
    """Items per second of a production simulation function, a new seed per repeat.

    ``simulate`` is ``alertlib.sky.simulate.simulate_alert_arrays`` (``size`` sources; the items are
    triplets, rendered and BTSbot-normalised) or ``simulate_galaxy_arrays`` (``size`` galaxies,
    64x64, three bands, with votes).
    """
    simulate(16, seed=99, progress=False, workers=1)  # warm-up (tables, imports)
    return _rates(lambda repeat: len(simulate(size, seed=repeat, progress=False, workers=workers)[0]), repeats)


def galsim_galaxies(morph: dict, count: int, image_size: int = 64) -> float:
    """GalSim: bulge + disk convolved with a Moffat PSF in 3 bands, for ``count`` galaxies."""
    import galsim

    from alertlib.sky.galaxies import BANDS, FRAME_HALF_LIGHT_RADII, GZ_PSF_FWHM

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

    from alertlib.sky.morphology import draw_morphology

    rng = np.random.default_rng(1)
    morph = draw_morphology(rng, count)
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
    from alertlib.core.provenance import cpu_model
    from alertlib.sky.simulate import default_workers, simulate_alert_arrays, simulate_galaxy_arrays

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alert-sources", type=int, default=1024, help="sources per timed run (about 3.5 alerts each)")
    parser.add_argument("--galaxies", type=int, default=1024, help="galaxies per timed run")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each (median reported)")
    parser.add_argument("--workers", type=int, default=default_workers(), help="processes (default: the CPUs)")
    parser.add_argument("--galsim", type=int, default=40, help="scenes GalSim draws for each comparison")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from alertlib.sky.morphology import draw_morphology

    result = {"cpu": cpu_model(), "workers": args.workers}
    for workers in sorted({1, args.workers}):
        alerts = time_simulation(simulate_alert_arrays, args.alert_sources, workers, args.repeats)
        gals = time_simulation(simulate_galaxy_arrays, args.galaxies, workers, args.repeats)
        result[f"alert_triplets_per_s_{workers}w"] = round(alerts["median"], 1)
        result[f"alert_triplets_per_s_{workers}w_iqr"] = [round(alerts["q25"], 1), round(alerts["q75"], 1)]
        result[f"galaxies_per_s_{workers}w"] = round(gals["median"], 1)
        result[f"galaxies_per_s_{workers}w_iqr"] = [round(gals["q25"], 1), round(gals["q75"], 1)]
    result["alerts_timed"], result["galaxies_timed"], result["repeats"] = alerts["items"], gals["items"], args.repeats
    # GalSim draws one object at a time in one process: compare with one alertlib worker.
    galsim_alert_rate = galsim_alerts(args.galsim)
    galsim_galaxy_rate = galsim_galaxies(draw_morphology(np.random.default_rng(0), args.galsim), args.galsim)
    result["galsim_alert_scenes_per_s"] = round(galsim_alert_rate, 1)
    result["galsim_galaxies_per_s"] = round(galsim_galaxy_rate, 1)
    result["alert_speedup_vs_galsim_1w"] = round(result["alert_triplets_per_s_1w"] / galsim_alert_rate, 1)
    result["galaxy_speedup_vs_galsim_1w"] = round(result["galaxies_per_s_1w"] / galsim_galaxy_rate, 1)
    alert_rate = result[f"alert_triplets_per_s_{args.workers}w"]
    galaxy_rate = result[f"galaxies_per_s_{args.workers}w"]
    result["targets_met"] = bool(alert_rate >= 1000 and galaxy_rate >= 500)
    if args.json:
        print(json.dumps(result))
        return
    print(f"machine: {result['cpu']}; medians of {args.repeats} runs")
    for workers in sorted({1, args.workers}):
        print(
            f"{workers} worker(s): alert triplets {result[f'alert_triplets_per_s_{workers}w']:8.0f} /s "
            f"(IQR {result[f'alert_triplets_per_s_{workers}w_iqr']}), galaxies 64x64 "
            f"{result[f'galaxies_per_s_{workers}w']:6.0f} /s (IQR {result[f'galaxies_per_s_{workers}w_iqr']})"
        )
    print(
        f"GalSim, simpler scenes, one process: {galsim_alert_rate:6.0f} alert scenes/s "
        f"(alertlib 1 worker: {result['alert_speedup_vs_galsim_1w']}x), {galsim_galaxy_rate:6.0f} galaxies/s "
        f"({result['galaxy_speedup_vs_galsim_1w']}x)"
    )
    print(
        f"targets (>= 1000 triplets/s, >= 500 galaxies/s, {args.workers} workers): "
        f"{'met' if result['targets_met'] else 'NOT met'} in this run"
    )


if __name__ == "__main__":
    main()
