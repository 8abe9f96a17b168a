"""Simulate the embedded sky: ``alertlib simulate galaxies|alerts``, and the cache the notebooks use.

Two data sets come out, each in the format its real counterpart has, so one loader reads both:

- **galaxies**: a galaxy-datasets catalog (``catalog.parquet``: ``id_str``, ``file_loc``, one vote-count
  column per answer of the GZ DECaLS DR5 tree, and the true latent parameters as ``true_*``), the
  RGB composites as ``images/<id_str>.png`` and, for speed, all of them in ``images.npy`` (uint8,
  row-aligned with the catalog);
- **alerts**: the BTS release layout (``{split}_triplets_<version>.npy`` and ``{split}_cand_<version>.csv``,
  split by source 81/9/10, stratified by label, or with a test split of its own size), triplets
  L2-normalised per cutout as BTSbot does, written chunk by chunk into the final files
  (:mod:`alertlib.sky.writer`), so a release of the real one's size never sits in memory.

Both are deterministic: the same seed and ``SIMULATOR_VERSION`` give bit-identical files. Each batch
draws from its own random stream, derived from (seed, batch index), so batches are independent.
A folder is written whole or not at all: the files are built in a hidden sibling folder that is
renamed into place at the end, so an interrupted run never leaves a half data set (or half cache).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

# Bump when a change alters the simulated data; it is part of every cache key and dataset version.
SIMULATOR_VERSION = "10"
GALAXY_BATCH = 256  # galaxies per random stream (fixed: part of what makes runs reproducible)
ALERT_BATCH_SOURCES = 128  # sources per random stream
DTYPES = ("float32", "float64")  # the triplet files' types (the real release's: float64)


def _progress(total: int, desc: str, unit: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, leave=False)


class _BuildFolder:
    """Build a data set in a hidden sibling folder; rename it onto ``target`` on success."""

    def __init__(self, target: Path):
        self.target = Path(target)
        self.partial = self.target.parent / f".{self.target.name}.partial-{os.getpid()}"

    def __enter__(self) -> Path:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.partial, ignore_errors=True)
        self.partial.mkdir()
        return self.partial

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            shutil.rmtree(self.partial, ignore_errors=True)
            return False
        if self.target.exists():
            # Replace an older data set: move it aside first so the target is never half-written.
            stale = self.target.parent / f".{self.target.name}.stale-{os.getpid()}"
            os.replace(self.target, stale)
            os.replace(self.partial, self.target)
            shutil.rmtree(stale, ignore_errors=True)
        else:
            os.replace(self.partial, self.target)
        return False


def default_workers() -> int:
    """Processes for simulation: the CPUs this process may use (``$ALERTLIB_SIM_WORKERS`` overrides)."""
    if os.environ.get("ALERTLIB_SIM_WORKERS"):
        return max(1, int(os.environ["ALERTLIB_SIM_WORKERS"]))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def map_batches(function, arguments: list, workers: int | None = None):
    """``map(function, arguments)`` in order, over ``workers`` processes when there is more than one batch.

    Each batch draws from its own random stream (seeded by its index), so the results are
    bit-identical whatever the number of workers; only the wall time changes. ``function`` must be
    a module-level function (it is pickled to the workers).
    """
    import multiprocessing
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor

    workers = default_workers() if workers is None else max(1, int(workers))
    workers = min(workers, len(arguments))
    if workers <= 1:
        yield from map(function, arguments)
        return
    # fork starts workers in milliseconds and shares the imported modules; elsewhere spawn.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method)) as pool:
        # At most two batches per worker wait to be taken, so memory does not grow with the number of batches.
        pending = deque()
        for argument in arguments:
            pending.append(pool.submit(function, argument))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _galaxy_batch_job(arguments):
    import numpy as np

    from alertlib.sky.galaxies import galaxy_batch

    seed, batch, count, image_size, n_volunteers = arguments
    return galaxy_batch(np.random.default_rng([int(seed), batch, 1]), count, image_size, n_volunteers)


def _alert_jobs(seed: int, n_sources: int, max_alerts: int, class_mix: str, exposures) -> list[tuple]:
    """One job per batch of ``ALERT_BATCH_SOURCES`` sources: (seed, batch, count, first source, options)."""
    if n_sources < 1:
        raise ValueError(f"n_sources must be at least 1, got {n_sources}")
    return [
        (seed, batch, min(ALERT_BATCH_SOURCES, n_sources - first), first, max_alerts, class_mix, exposures)
        for batch, first in enumerate(range(0, n_sources, ALERT_BATCH_SOURCES))
    ]


def _alert_labels_job(arguments):
    """The alerts a batch will make, before rendering: source, label and class of each."""
    from alertlib.sky.alerts import alert_labels, observe_batch

    seed, batch, count, first, max_alerts, class_mix, exposures = arguments
    _, sources, alerts = observe_batch(seed, batch, count, max_alerts, class_mix, exposures)
    return alert_labels(sources, alerts, first)


def _alert_batch_job(arguments):
    import numpy as np

    from alertlib.io.preprocess import l2_normalise_stack
    from alertlib.sky.alerts import simulate_alert_batch

    seed, batch, count, first, max_alerts, class_mix, exposures = arguments
    raw, table = simulate_alert_batch(seed, batch, count, first, max_alerts, class_mix, exposures)
    # BTSbot's per-cutout L2 normalisation, on (N, 3, H, W) views of the channels.
    normalised = np.moveaxis(l2_normalise_stack(np.moveaxis(raw, -1, 1)), 1, -1)
    return np.ascontiguousarray(normalised), table


def _content_hash(images, catalog) -> str:
    """A short hash of a data set's arrays and table values (what a job trained on them depends on)."""
    import numpy as np
    import pandas as pd

    digest = hashlib.sha256(np.ascontiguousarray(images).tobytes())
    digest.update(pd.util.hash_pandas_object(catalog, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def simulate_galaxy_arrays(
    n: int,
    seed: int,
    image_size: int = 64,
    n_volunteers: int = 40,
    progress: bool = True,
    workers: int | None = None,
):
    """Images (N, S, S, 3) uint8 and the catalog (ids, vote counts, true morphology) of ``n`` galaxies.

    ``workers`` processes render the batches (default :func:`default_workers`); the output does
    not depend on it.
    """
    import numpy as np
    import pandas as pd

    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    images, catalogs = [], []
    bar = _progress(n, "galaxies", "galaxy", progress)
    jobs = [
        (seed, batch, min(GALAXY_BATCH, n - first), image_size, n_volunteers)
        for batch, first in enumerate(range(0, n, GALAXY_BATCH))
    ]
    for (_, batch, count, _, _), (rgb, votes, truth) in zip(
        jobs, map_batches(_galaxy_batch_job, jobs, workers), strict=True
    ):
        ids = [f"sim{seed}_{batch * GALAXY_BATCH + k:07d}" for k in range(count)]
        catalogs.append(
            pd.concat(
                [pd.DataFrame({"id_str": ids, "file_loc": [f"images/{i}.png" for i in ids]}), votes, truth], axis=1
            )
        )
        images.append(rgb)
        bar.update(count)
    bar.close()
    return np.concatenate(images), pd.concat(catalogs, ignore_index=True)


def simulate_galaxies(
    n: int,
    seed: int,
    out_dir: str | os.PathLike,
    image_size: int = 64,
    n_volunteers: int = 40,
    write_png: bool = True,
    progress: bool = True,
    workers: int | None = None,
) -> Path:
    """Simulate ``n`` Galaxy Zoo-like galaxies with volunteer votes into ``out_dir``.

    ``workers`` processes render the batches (default :func:`default_workers`); the output does
    not depend on it.

    Returns
    -------
    Path
        ``out_dir``, holding ``catalog.parquet``, ``images.npy``, ``images/`` (PNG) and ``dataset.json``.
    """

    from alertlib.core.files import save_npy, write_json, write_table
    from alertlib.core.provenance import code_version
    from alertlib.io.schema import load_schema

    start = time.perf_counter()
    out_dir = Path(out_dir)
    stack, catalog = simulate_galaxy_arrays(n, seed, image_size, n_volunteers, progress, workers)
    with _BuildFolder(out_dir) as folder:
        if write_png:
            from PIL import Image

            (folder / "images").mkdir()
            for name, image in zip(catalog["id_str"], stack, strict=True):
                Image.fromarray(image).save(folder / "images" / f"{name}.png", optimize=False, compress_level=1)
        save_npy(folder / "images.npy", stack)
        write_table(folder / "catalog.parquet", catalog)
        write_json(
            folder / "dataset.json",
            {
                "kind": "galaxies",
                "simulator_version": SIMULATOR_VERSION,
                "seed": int(seed),
                "n": int(n),
                "image_size": int(image_size),
                "n_volunteers": int(n_volunteers),
                "schema": load_schema().name,
                "pngs": bool(write_png),
                "content_sha256": _content_hash(stack, catalog),
                "code_version": code_version(),
                "wall_time_s": round(time.perf_counter() - start, 2),
            },
        )
    return out_dir


def simulate_alert_arrays(
    n_sources: int,
    seed: int,
    max_alerts: int = 8,
    class_mix: str = "bts",
    progress: bool = True,
    workers: int | None = None,
    exposures=None,
):
    """Triplets (N, 63, 63, 3) L2-normalised per cutout and the candidate table, before splitting.

    ``workers`` processes render the batches (default :func:`default_workers`); the output does
    not depend on it. ``exposures`` (a number, or a table: :mod:`alertlib.sky.exposures`) makes a
    sky of exposures, each source seen once in one of them.
    """
    import numpy as np
    import pandas as pd

    jobs = _alert_jobs(seed, n_sources, max_alerts, class_mix, exposures)
    triplets, candidates = [], []
    bar = _progress(n_sources, "alert sources", "source", progress)
    for job, (normalised, table) in zip(jobs, map_batches(_alert_batch_job, jobs, workers), strict=True):
        triplets.append(normalised)
        candidates.append(table)
        bar.update(job[2])
    bar.close()
    return np.concatenate(triplets), pd.concat(candidates, ignore_index=True)


def dataset_version(n_max: int) -> str:
    """The ``<version>`` part of the release file names for simulated alerts."""
    return f"sim{SIMULATOR_VERSION}_N{n_max}"


def sources_for_alerts(
    n_alerts: int, seed: int, max_alerts: int = 8, class_mix: str = "bts", workers: int | None = None
) -> int:
    """The fewest whole batches of sources whose alerts number ``n_alerts`` or more (e.g. 409000 for
    the size of the real BTS release), found by observing batches without rendering them."""
    n_sources, found = 0, 0
    while found < n_alerts:
        more = _alert_jobs(seed, n_sources + 64 * ALERT_BATCH_SOURCES, max_alerts, class_mix, None)
        more = more[n_sources // ALERT_BATCH_SOURCES :]
        results = map_batches(_alert_labels_job, more, workers)
        for job, labels in zip(more, results, strict=False):
            found, n_sources = found + len(labels), job[3] + job[2]
            if found >= n_alerts:
                break
        results.close()
    return n_sources


def simulate_alerts(
    n_sources: int,
    seed: int,
    out_dir: str | os.PathLike,
    max_alerts: int = 8,
    n_max: int = 100,
    class_mix: str = "bts",
    progress: bool = True,
    n_test_sources: int | None = None,
    dtype: str = "float32",
    exposures: int | None = None,
    workers: int | None = None,
) -> Path:
    """Simulate the alerts of ``n_sources`` sources into ``out_dir`` in the BTS release layout.

    The sky is observed first (which alerts each batch makes, and their labels: no rendering) and
    split by source; then each batch is rendered and its alerts written at their places in the
    final files (:class:`alertlib.sky.writer.ReleaseWriter`), so memory does not grow with the size.

    Parameters
    ----------
    max_alerts:
        Alerts kept per source (random detections of its light curve).
    n_max:
        BTS's cap on alerts per source in the training split.
    class_mix:
        ``"bts"`` (the study's), ``"ztf-stream"`` (mostly variable stars, like random public
        packets; for realism checks) and others, see ``alertlib.sky.sources.CLASS_MIXES``.
    n_test_sources:
        A test split of its own: this many sources more are simulated and make the test split
        (stratified by label), while ``n_sources`` split 90/10 into train and validation. Without
        it all sources split 81/9/10. Sources are counted as drawn: one never detected has no alert.
    dtype:
        ``"float32"`` or ``"float64"`` (the real release's) for the triplet files.
    exposures:
        A sky of this many shared exposures, each source seen once (:mod:`alertlib.sky.exposures`).
    """
    import numpy as np
    import pandas as pd

    from alertlib.io.release import write_metadata
    from alertlib.sky.alerts import split_by_source, split_fractions
    from alertlib.sky.writer import ReleaseWriter

    start = time.perf_counter()
    total = n_sources + (n_test_sources or 0)
    jobs = _alert_jobs(seed, total, max_alerts, class_mix, exposures)
    labels = pd.concat(map_batches(_alert_labels_job, jobs, workers), ignore_index=True)
    rows = split_by_source(labels, seed, split_fractions(n_sources, n_test_sources), n_max=n_max)
    version = dataset_version(n_max)
    out_dir = Path(out_dir)
    digest, row_hashes = hashlib.sha256(), []
    bar = _progress(total, "alert sources", "source", progress)
    with _BuildFolder(out_dir) as folder:
        writer = ReleaseWriter(folder, version, rows, dtype)
        for job, (normalised, table) in zip(jobs, map_batches(_alert_batch_job, jobs, workers), strict=True):
            writer.write(normalised, table)
            digest.update(np.ascontiguousarray(normalised).tobytes())
            row_hashes.append(pd.util.hash_pandas_object(table, index=False).to_numpy())
            columns = table.columns
            bar.update(job[2])
        writer.close(columns)
        bar.close()
        digest.update(np.concatenate(row_hashes).tobytes())  # as _content_hash of the whole sky
        metadata = {
            "version": version,
            "seed": int(seed),
            "n_sources": int(n_sources),
            "n_test_sources": None if n_test_sources is None else int(n_test_sources),
            "max_alerts": int(max_alerts),
            "n_max": int(n_max),
            "class_mix": class_mix,
            "exposures": exposures,
            "dtype": dtype,
            "split_fractions": [round(f, 6) for f in split_fractions(n_sources, n_test_sources)],
            "content_sha256": digest.hexdigest()[:16],
        }
        write_metadata(folder, _alerts_metadata(metadata, labels, rows, start))
    return out_dir


def _alerts_metadata(settings: dict, labels, rows, start: float) -> dict:
    """A simulated release's ``dataset.json``: its settings, and the alerts, sources and share of
    positive alerts of each split, the alerts of each class, the code version and the wall time."""
    from alertlib.core.provenance import code_version

    counts = {}
    for split, index in rows.items():
        table = labels.iloc[index]
        counts[split] = {
            "alerts": int(len(index)),
            "sources": int(table["source_id"].nunique()),
            "positive_fraction": round(float(table["label"].mean()), 4) if len(table) else None,
        }
    return {
        "kind": "alerts",
        "simulator_version": SIMULATOR_VERSION,
        **settings,
        "splits": counts,
        "alert_classes": {k: int(v) for k, v in labels["alert_class"].value_counts().sort_index().items()},
        "code_version": code_version(),
        "wall_time_s": round(time.perf_counter() - start, 2),
    }


def cache_key(kind: str, size: int, seed: int, **options) -> str:
    """The cache folder name: kind, size, seed, simulator version and a hash of other options (those
    left at None, their default, count as not given)."""
    options = {name: value for name, value in options.items() if value is not None}
    extra = hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:8]
    return f"{kind}-n{size}-seed{seed}-v{SIMULATOR_VERSION}-{extra}"


def cached_sky(kind: str, size: int, seed: int, progress: bool = True, **options) -> Path:
    """The simulated data set under ``data/sim/<key>``, generated on first use.

    Parameters
    ----------
    kind:
        ``"galaxies"`` (``size`` galaxies) or ``"alerts"`` (``size`` sources).
    options:
        Passed to ``simulate_galaxies`` / ``simulate_alerts`` (and part of the key), e.g.
        ``n_test_sources``, ``dtype``, ``exposures`` for alerts.

    An alert sky gets its metadata sidecars (:func:`alertlib.sky.metadata.write_sidecars`).
    """
    from alertlib.core.paths import data_dir

    if kind not in ("galaxies", "alerts"):
        raise ValueError(f"kind must be 'galaxies' or 'alerts', not {kind!r}")
    from alertlib.sky.metadata import write_sidecars

    folder = data_dir() / "sim" / cache_key(kind, size, seed, **options)
    if kind == "galaxies":
        if (folder / "dataset.json").is_file():
            return folder
        return simulate_galaxies(size, seed, folder, progress=progress, **options)
    if not (folder / "dataset.json").is_file():
        simulate_alerts(size, seed, folder, progress=progress, **options)
    write_sidecars(folder)  # the metadata features the candidate tables lack (skies cached before them too)
    return folder


def _profile_seed(config: dict) -> int:
    """The seed of a profile's simulated sky: its ``simulate:`` block's, else the profile's."""
    return int(config["simulate"].get("seed", config.get("seed", 0)))


def sky_from_profile(config: dict, progress: bool = True) -> dict[str, Path]:
    """The galaxy and alert data sets a study profile asks for (its ``simulate:`` block), cached."""
    settings = config.get("simulate")
    if not settings:
        raise KeyError(f"profile {config.get('profile')!r} has no 'simulate:' block in alertlib/profiles.yaml")
    galaxies = cached_sky(
        "galaxies",
        int(settings["n_galaxies"]),
        _profile_seed(config),
        progress=progress,
        image_size=int(settings.get("image_size", 64)),
        n_volunteers=int(settings.get("n_volunteers", 40)),
    )
    return {"galaxies": galaxies, "alerts": alert_sky_from_profile(config, progress=progress)}


def alert_sky_from_profile(config: dict, class_mix: str | None = None, progress: bool = True) -> Path:
    """The alert data set of a profile's ``simulate:`` block, cached; ``class_mix`` replaces its mix
    (e.g. ``"ztf-stream"``: the same size and seed with the raw stream's classes, for realism checks).

    The block's ``n_test_sources`` (a test split of that many sources, beside ``n_sources`` split
    90/10 into train and validation) and ``exposures`` (a sky of that many shared exposures) are
    passed on when given (:func:`simulate_alerts`).
    """
    settings = config["simulate"]
    optional = {key: int(settings[key]) for key in ("n_test_sources", "exposures") if settings.get(key) is not None}
    return cached_sky(
        "alerts",
        int(settings["n_sources"]),
        _profile_seed(config),
        progress=progress,
        max_alerts=int(settings.get("max_alerts", 8)),
        n_max=int(settings.get("n_max", 100)),
        class_mix=str(class_mix or settings.get("class_mix", "bts")),
        **optional,
    )
