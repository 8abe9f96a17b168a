"""The simulated sky: renderer vs GalSim, votes on the schema's tree, alerts in the BTS layout, determinism."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from alertlib.core.vocab import PEAK_MAG_THRESHOLD
from alertlib.io.release import read_split
from alertlib.io.schema import load_schema
from alertlib.sky import alerts, canvas, galaxies, render
from alertlib.sky.field import draw_field, field_spectra, galactic_coordinates
from alertlib.sky.simulate import cached_sky, simulate_alerts, simulate_galaxies

galsim = pytest.importorskip("galsim")

SIZE = 48
CENTRE = (SIZE - 1) / 2.0
ACCURATE = galsim.GSParams(folding_threshold=1e-4, maxk_threshold=1e-5, kvalue_accuracy=1e-7)


def radial_profile(image: np.ndarray, annuli: int = 12) -> np.ndarray:
    yy, xx = np.indices(image.shape)
    radius = np.hypot(xx - CENTRE, yy - CENTRE)
    return np.array([image[(radius >= k) & (radius < k + 1)].mean() for k in range(annuli)])


def assert_matches_galsim(ours: np.ndarray, theirs: np.ndarray, profile_tolerance: float = 0.02):
    assert abs(ours.sum() / theirs.sum() - 1) < 0.01, (ours.sum(), theirs.sum())
    relative = np.abs(radial_profile(ours) / radial_profile(theirs) - 1)
    assert relative.max() < profile_tolerance, np.round(relative, 4)


@pytest.mark.parametrize(
    "n, half_light_radius, axis_ratio",
    [(1.0, 4.0, 1.0), (4.0, 4.0, 1.0), (4.0, 2.0, 0.6), (0.8, 3.0, 0.4), (2.5, 6.0, 0.8)],
)
def test_sersic_matches_galsim(n, half_light_radius, axis_ratio):
    profile = galsim.Sersic(n, half_light_radius=half_light_radius, flux=1000.0)  # default accuracy suffices
    theirs = profile.shear(q=axis_ratio, beta=30 * galsim.degrees).drawImage(nx=SIZE, ny=SIZE, scale=1.0).array
    ours = render.sersic_image((SIZE, SIZE), CENTRE, CENTRE, 1000.0, half_light_radius, n, axis_ratio, np.radians(30))[
        0
    ]
    assert_matches_galsim(ours, theirs)


@pytest.mark.parametrize("fwhm, beta", [(1.5, 2.5), (2.0, 2.5), (3.5, 3.0)])
def test_moffat_matches_galsim(fwhm, beta):
    profile = galsim.Moffat(beta=beta, fwhm=fwhm, flux=1000.0, gsparams=ACCURATE)
    theirs = profile.drawImage(nx=SIZE, ny=SIZE, scale=1.0, method="real_space").array
    ours = render.moffat_image((SIZE, SIZE), CENTRE, CENTRE, 1000.0, fwhm, beta)[0]
    assert_matches_galsim(ours, theirs)


@pytest.mark.parametrize(
    "n, half_light_radius, fwhm", [(4.0, 3.0, 2.0), (1.0, 4.0, 2.5), (4.0, 1.5, 1.6), (1.0, 1.0, 2.0)]
)
def test_psf_convolution_matches_galsim(n, half_light_radius, fwhm):
    """Sersic convolved with a Moffat PSF: oversample 2 within 1%/2%; the fast oversample 1 within 5%."""
    scene = galsim.Convolve(
        galsim.Sersic(n, half_light_radius=half_light_radius, flux=1000.0, gsparams=ACCURATE),
        galsim.Moffat(beta=2.5, fwhm=fwhm, gsparams=ACCURATE),
    )
    theirs = scene.drawImage(nx=SIZE, ny=SIZE, scale=1.0).array
    for oversample, tolerance in ((2, 0.02), (1, 0.05)):
        fine = SIZE * oversample
        intrinsic = render.sersic_image(
            (fine, fine), (fine - 1) / 2, (fine - 1) / 2, 1000.0, half_light_radius * oversample, n
        )
        ours = render.convolve_moffat(intrinsic, np.array([fwhm]), np.array([2.5]), oversample=oversample)[0]
        assert_matches_galsim(ours, theirs, tolerance)


def test_point_source_in_fourier_space_matches_galsim():
    """The alert renderer's points: pixel response times Moffat transfer times a phase ramp.

    Flux to 1%; pixels above 5% of the peak to 7% (the price of skipping the aliased copies of a
    PSF only about two pixels wide, which the noise of a real cutout dwarfs).
    """
    canvas = (SIZE, SIZE)
    x, y = 20.3, 25.7
    spectrum = (
        render.pixel_transfer(canvas)
        * render.shift_phase([x], [y], canvas)
        * render.moffat_transfer([2.2], [3.0], canvas)
    )
    ours = render.irfft2(1000.0 * spectrum, canvas)[0]
    star = galsim.Moffat(beta=3.0, fwhm=2.2, flux=1000.0, gsparams=ACCURATE)
    theirs = star.drawImage(nx=SIZE, ny=SIZE, scale=1.0, offset=(x - CENTRE, y - CENTRE)).array
    assert abs(ours.sum() / theirs.sum() - 1) < 0.01
    core = theirs > 0.05 * theirs.max()
    assert np.abs(ours[core] / theirs[core] - 1).max() < 0.07


@pytest.mark.parametrize("fwhm, beta", [(1.6, 2.5), (2.2, 3.0), (3.0, 4.0)])
def test_candidate_point_with_folded_aliases_matches_galsim_without_ringing(fwhm, beta):
    """The candidate's point source (render.moffat_point_spectrum): the sampled PSF, with no cross of
    stripes along its row and column, which cutting the transform at the Nyquist frequency leaves."""
    canvas = (SIZE, SIZE)
    x, y = 20.3, 25.7
    ours = render.irfft2(render.moffat_point_spectrum(1000.0, [x], [y], [fwhm], [beta], canvas), canvas)[0]
    star = galsim.Moffat(beta=beta, fwhm=fwhm, flux=1000.0, gsparams=ACCURATE)
    theirs = star.drawImage(nx=SIZE, ny=SIZE, scale=1.0, offset=(x - CENTRE, y - CENTRE)).array
    assert abs(ours.sum() / theirs.sum() - 1) < 0.001
    core = theirs > 0.05 * theirs.max()
    assert np.abs(ours[core] / theirs[core] - 1).max() < 0.01  # the unfolded transform: up to 7%
    assert np.abs(ours - theirs).max() < 5e-4 * theirs.max()
    # Along the star's row, far from it: the unfolded transform rings there, the folded one does not.
    row = int(round(y))
    far = np.abs(np.arange(SIZE) - x) > 8
    cut = render.irfft2(
        1000.0
        * render.pixel_transfer(canvas)
        * render.shift_phase([x], [y], canvas)
        * render.moffat_transfer([fwhm], [beta], canvas),
        canvas,
    )[0]
    ringing = np.abs(cut[row, far] - theirs[row, far]).max()
    assert np.abs(ours[row, far] - theirs[row, far]).max() < 0.1 * ringing


def test_votes_follow_the_schema_tree():
    schema = load_schema()
    rng = np.random.default_rng(0)
    rgb, votes, truth = galaxies.galaxy_batch(rng, 300, image_size=32)
    assert rgb.shape == (300, 32, 32, 3) and rgb.dtype == np.uint8
    assert list(votes.columns) == schema.answer_columns
    total = {q.name: votes[q.columns(schema.suffix)].sum(axis=1) for q in schema.questions}
    for question in schema.questions:
        if question.asked_if is not None:
            parent, answer = question.asked_if
            # A follow-up question receives exactly the volunteers who gave the leading answer.
            assert (total[question.name] == votes[schema.column(parent, answer)]).all(), question.name
    assert total["smooth-or-featured"].between(30, 50).all()
    # Votes follow the truth: smooth galaxies get mostly "smooth" votes, edge-on disks "yes".
    fraction_smooth = votes[schema.column("smooth-or-featured", "smooth")] / total["smooth-or-featured"]
    assert fraction_smooth[truth["true_smooth"]].mean() > fraction_smooth[~truth["true_smooth"]].mean() + 0.25
    clear = truth["clarity"] > 0.6
    edge_on = votes[schema.column("disk-edge-on", "yes")] / total["disk-edge-on"].clip(lower=1)
    assert (
        edge_on[clear & (truth["true_inclination"] > 82)].mean()
        > edge_on[clear & (truth["true_inclination"] < 50)].mean() + 0.3
    )


def test_galaxy_catalog_format_and_determinism(tmp_path):
    first = simulate_galaxies(40, seed=3, out_dir=tmp_path / "a", image_size=32, progress=False)
    second = simulate_galaxies(40, seed=3, out_dir=tmp_path / "b", image_size=32, progress=False)
    catalog = pd.read_parquet(first / "catalog.parquet")
    assert {"id_str", "file_loc"} <= set(catalog.columns)
    assert set(load_schema().answer_columns) <= set(catalog.columns)
    assert any(c.startswith("true_") for c in catalog.columns)
    assert (first / catalog["file_loc"].iloc[0]).is_file()
    pd.testing.assert_frame_equal(catalog, pd.read_parquet(second / "catalog.parquet"))
    assert np.array_equal(np.load(first / "images.npy"), np.load(second / "images.npy"))
    other = simulate_galaxies(40, seed=4, out_dir=tmp_path / "c", image_size=32, progress=False)
    assert not np.array_equal(np.load(first / "images.npy"), np.load(other / "images.npy"))


def test_alerts_release_layout_labels_and_determinism(tmp_path):
    first = simulate_alerts(150, seed=5, out_dir=tmp_path / "a", progress=False)
    second = simulate_alerts(150, seed=5, out_dir=tmp_path / "b", progress=False)
    parts = {split: read_split(first, split) for split in ("train", "val", "test")}
    for split, part in parts.items():
        again = read_split(second, split)
        assert np.array_equal(np.asarray(part.triplets), np.asarray(again.triplets)), split
        pd.testing.assert_frame_equal(part.candidates, again.candidates)
        assert part.triplets.shape[1:] == (63, 63, 3) and part.triplets.dtype == np.float32
        # BTSbot's per-cutout L2 normalisation.
        norms = np.sqrt((np.asarray(part.triplets, np.float64) ** 2).sum(axis=(1, 2)))
        assert np.allclose(norms, 1.0, atol=1e-4)
    sources = [set(p.candidates["source_id"]) for p in parts.values()]
    assert not (sources[0] & sources[1] or sources[0] & sources[2] or sources[1] & sources[2])
    table = pd.concat([p.candidates for p in parts.values()])
    for column in (
        "objectId",
        "candid",
        "label",
        "alert_class",
        "source_id",
        "peakmag",
        "magpsf",
        "sigmapsf",
        "fwhm",
        "sgscore1",
        "distpsnr1",
        "isdiffpos",
        "ndethist",
        "jd",
        "fid",
    ):
        assert column in table.columns, column
    assert table["candid"].is_unique
    expected = table["alert_class"].isin(["sn", "nuclear"]) & (table["peakmag"] <= PEAK_MAG_THRESHOLD)
    assert (table["label"] == expected.astype(int)).all()
    assert 0.1 < table["label"].mean() < 0.5
    assert set(table["alert_class"]) >= {"sn", "varstar", "bogus"}
    # Several alerts per source, and a single epoch is often fainter than the source's peak.
    assert table.groupby("source_id").size().mean() > 2
    positives = table[table["label"] == 1]
    assert (positives["magpsf"] > PEAK_MAG_THRESHOLD).mean() > 0.2
    # Context carries information: variable stars match stars, supernovae sit in galaxies.
    assert table.loc[table["alert_class"] == "varstar", "sgscore1"].median() > 0.8
    assert table.loc[table["alert_class"] == "sn", "sgscore1"].median() < 0.3
    metadata = json.loads((first / "dataset.json").read_text())
    assert metadata["simulator_version"] and metadata["splits"]["train"]["alerts"] == len(parts["train"])


def test_output_does_not_depend_on_the_number_of_workers(tmp_path):
    from alertlib.sky.simulate import simulate_alert_arrays

    one_triplets, one_table = simulate_alert_arrays(150, seed=7, progress=False, workers=1)
    two_triplets, two_table = simulate_alert_arrays(150, seed=7, progress=False, workers=2)
    assert np.array_equal(one_triplets, two_triplets)
    pd.testing.assert_frame_equal(one_table, two_table)
    one = simulate_galaxies(300, seed=2, out_dir=tmp_path / "one", image_size=24, write_png=False, workers=1)
    two = simulate_galaxies(300, seed=2, out_dir=tmp_path / "two", image_size=24, write_png=False, workers=2)
    assert np.array_equal(np.load(one / "images.npy"), np.load(two / "images.npy"))
    pd.testing.assert_frame_equal(pd.read_parquet(one / "catalog.parquet"), pd.read_parquet(two / "catalog.parquet"))


def test_cache_is_reused_and_keyed(tmp_path, monkeypatch):
    monkeypatch.setenv("ALERTLIB_DATA", str(tmp_path))
    first = cached_sky("alerts", 20, seed=1, progress=False)
    stamp = (first / "dataset.json").stat().st_mtime_ns
    assert cached_sky("alerts", 20, seed=1, progress=False) == first
    assert (first / "dataset.json").stat().st_mtime_ns == stamp  # not regenerated
    assert cached_sky("alerts", 20, seed=2, progress=False) != first
    assert not list((tmp_path / "sim").glob(".*partial*"))  # nothing half-written left behind


def test_interrupted_write_leaves_no_folder(tmp_path, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr("alertlib.io.release.write_metadata", explode)
    with pytest.raises(RuntimeError):
        simulate_alerts(10, seed=0, out_dir=tmp_path / "sky", progress=False)
    assert not (tmp_path / "sky").exists()
    assert not list(tmp_path.iterdir())


def test_galactic_coordinates_of_known_points():
    # The galactic centre (Sgr A*) and the north galactic pole.
    longitude, latitude = galactic_coordinates(np.array([266.41683, 192.85948]), np.array([-29.00781, 27.12825]))
    assert abs(latitude[0]) < 0.1 and min(longitude[0], 360 - longitude[0]) < 0.1
    assert latitude[1] > 89.99


def test_field_population_follows_the_density_and_is_deterministic():
    density = np.repeat([0.5, 5.0, 50.0], 200)
    extinction = np.zeros(density.size)
    field = draw_field(np.random.default_rng(3), density, extinction)
    again = draw_field(np.random.default_rng(3), density, extinction)
    pd.testing.assert_frame_equal(field, again)
    stars = np.bincount(field["owner"][~field["galaxy"]], minlength=density.size).reshape(3, -1).mean(axis=1)
    galaxies_per_field = (
        np.bincount(field["owner"][field["galaxy"]], minlength=density.size).reshape(3, -1).mean(axis=1)
    )
    assert stars[0] < stars[1] < stars[2] and stars[2] > 5 * stars[1]  # stars follow the density
    assert np.allclose(galaxies_per_field, galaxies_per_field.mean(), rtol=0.2)  # galaxies do not
    # Most of the field is far below the detection limit (~20.5 mag).
    assert (field["mag_r"] > 21.5).mean() > 0.5
    # The field's light is in the images: a denser field raises the reference's pixel scatter.
    spectra = field_spectra(field, density.size)
    images = render.irfft2(spectra[:, 1], (canvas.CANVAS, canvas.CANVAS))
    assert np.allclose(
        images.sum(axis=(1, 2)), np.bincount(field["owner"], 10 ** (-0.4 * field["mag_r"]), density.size), rtol=1e-3
    )
    spread = images.std(axis=(1, 2)).reshape(3, -1).mean(axis=1)
    assert spread[0] < spread[1] < spread[2]
    # Stars on the fine grid have exactly the spectra of points at their (half-pixel) positions.
    star = pd.DataFrame(
        {
            "owner": [0, 1],
            "x": [40.5, 13.0],
            "y": [22.0, 70.5],
            "mag_g": [20.0, 21.0],
            "mag_r": [20.0, 21.0],
            "galaxy": [False, False],
        }
    )
    exact = canvas.point_spectrum(10 ** (-0.4 * star["mag_r"].to_numpy()), star["x"].to_numpy(), star["y"].to_numpy())
    assert np.allclose(field_spectra(star, 2)[:, 1], exact, rtol=0, atol=1e-6 * np.abs(exact).max())


def test_candidates_carry_the_field_density_and_nmtchps():
    from scipy.stats import spearmanr

    from alertlib.sky.simulate import simulate_alert_arrays

    _, table = simulate_alert_arrays(256, seed=5, class_mix="ztf-stream", progress=False, workers=1)
    for column in ("field_star_density", "galactic_latitude", "nmtchps"):
        assert column in table.columns and table[column].notna().all(), column
    per_source = table.groupby("source_id")[["field_star_density", "nmtchps", "galactic_latitude"]].first()
    assert spearmanr(per_source["field_star_density"], per_source["nmtchps"])[0] > 0.5
    # Denser towards the galactic plane.
    assert spearmanr(per_source["field_star_density"], per_source["galactic_latitude"].abs())[0] < -0.3
    field_match = (table["distpsnr1"] > 1.0) & (table["distpsnr1"] < 30.0)
    assert field_match.any() and (table["nmtchps"][field_match] >= 1).all()


def test_split_by_source_is_stratified_by_label_and_keeps_sources_whole():
    from alertlib.sky.alerts import split_by_source

    rng = np.random.default_rng(0)
    # 60 sources, 6 of them positive (10%), 1 to 8 alerts each.
    sources = np.repeat(np.arange(60), rng.integers(1, 9, 60))
    table = pd.DataFrame({"source_id": sources, "label": (sources % 10 == 0).astype(int)})
    rows = split_by_source(table, seed=3)
    seen = [set(table["source_id"].iloc[index]) for index in rows.values()]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])  # each source in one split
    assert set().union(*seen) == set(range(60))
    for split, index in rows.items():
        assert set(table["label"].iloc[index]) == {0, 1}, split  # both classes in every split
    positives = {split: table.iloc[index].query("label == 1")["source_id"].nunique() for split, index in rows.items()}
    assert positives == {"train": 4, "val": 1, "test": 1}
    assert split_by_source(table, seed=3)["test"].tolist() == rows["test"].tolist()  # reproducible


def test_fading_variables_give_negative_subtractions_shown_positive():
    from alertlib.sky.simulate import simulate_alert_arrays

    raw, table = alerts.simulate_alert_batch(7, 0, 200, 0, class_mix="ztf-stream")
    negative = (table["isdiffpos"] == "f").to_numpy()
    variable = table["alert_class"].isin(["varstar", "agn"]).to_numpy()
    # Variables fade below the reference as often as they rise above it; nothing else does.
    assert 0.3 < negative[variable].mean() < 0.7 and not negative[~variable].any()
    c = 31
    box = (slice(c - 2, c + 3), slice(c - 2, c + 3))
    science = raw[:, box[0], box[1], 0].sum(axis=(1, 2)) - 25 * np.median(raw[..., 0], axis=(1, 2))
    reference = raw[:, box[0], box[1], 1].sum(axis=(1, 2)) - 25 * np.median(raw[..., 1], axis=(1, 2))
    difference = raw[:, box[0], box[1], 2].sum(axis=(1, 2))
    bright = variable & (table["magpsf"].to_numpy() < 18.5)
    # Fainter than the reference in the science image, and positive in the difference cutout (ZTF
    # writes a negative subtraction as reference minus science).
    assert (
        np.median((science - reference)[bright & negative]) < 0 < np.median((science - reference)[bright & ~negative])
    )
    assert (difference[bright & negative] > 0).mean() > 0.9
    _, again = simulate_alert_arrays(20, seed=3, class_mix="ztf-stream", progress=False, workers=1)
    assert set(again["isdiffpos"]) <= {"t", "f"}


def test_the_streamed_release_is_the_in_memory_sky_split_by_source(tmp_path):
    """simulate_alerts writes chunk by chunk into the final files what the whole arrays give."""
    from alertlib.sky.alerts import split_by_source, split_fractions
    from alertlib.sky.simulate import _content_hash, simulate_alert_arrays

    folder = simulate_alerts(150, 5, tmp_path / "sky", n_test_sources=60, dtype="float64", progress=False, workers=2)
    triplets, candidates = simulate_alert_arrays(210, 5, progress=False, workers=1)
    rows = split_by_source(candidates, 5, split_fractions(150, 60))
    for split, index in rows.items():
        part = read_split(folder, split)
        assert part.triplets.dtype == np.float64
        assert np.array_equal(np.asarray(part.triplets), triplets[index].astype(np.float64)), split
        written = next(folder.glob(f"{split}_cand_*.csv")).read_text()
        assert written == candidates.iloc[index].to_csv(index=False), split  # the same text, byte for byte
    metadata = json.loads((folder / "dataset.json").read_text())
    assert metadata["content_sha256"] == _content_hash(triplets, candidates)
    assert metadata["dtype"] == "float64" and metadata["n_test_sources"] == 60


def test_a_test_split_of_its_own_size_stratified_by_label(tmp_path, monkeypatch):
    from alertlib.sky import simulate
    from alertlib.sky.alerts import SPLIT_FRACTIONS, split_by_source, split_fractions

    assert split_fractions(100) == SPLIT_FRACTIONS
    train, val, test = split_fractions(300, 700)
    assert abs(test - 0.7) < 1e-12 and abs(train / val - 9.0) < 1e-9 and abs(train + val + test - 1) < 1e-12
    rng = np.random.default_rng(1)
    sources = np.repeat(np.arange(1000), rng.integers(1, 4, 1000))
    table = pd.DataFrame({"source_id": sources, "label": (sources % 5 == 0).astype(int)})
    rows = split_by_source(table, seed=2, fractions=split_fractions(300, 700))
    per_split = {split: table.iloc[index].groupby("source_id")["label"].first() for split, index in rows.items()}
    assert len(per_split["test"]) == 700 and len(per_split["train"]) == 270 and len(per_split["val"]) == 30
    assert all(abs(labels.mean() - 0.2) < 0.02 for labels in per_split.values())  # stratified by label
    # The cache key and the profile's simulate block carry it.
    assert simulate.cache_key("alerts", 300, 0, n_test_sources=700) != simulate.cache_key("alerts", 300, 0)
    assert simulate.cache_key("alerts", 300, 0, n_test_sources=None) == simulate.cache_key("alerts", 300, 0)
    seen = {}
    monkeypatch.setattr(simulate, "cached_sky", lambda kind, size, seed, **options: seen.update(options) or tmp_path)
    simulate.alert_sky_from_profile({"simulate": {"n_sources": 300, "n_test_sources": 700}, "seed": 3})
    assert seen["n_test_sources"] == 700


@pytest.mark.slow
def test_the_streamed_release_needs_no_more_memory_for_more_sources(tmp_path, monkeypatch):
    import tracemalloc

    from alertlib.sky import simulate

    monkeypatch.setattr(simulate, "ALERT_BATCH_SOURCES", 16)
    simulate.simulate_alerts(16, 1, tmp_path / "warm-up", progress=False, workers=1)  # imports, caches

    def peak(run) -> int:
        tracemalloc.start()
        try:
            run()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    streamed = {
        n: peak(lambda n=n: simulate.simulate_alerts(n, 1, tmp_path / f"{n}", progress=False, workers=1))
        for n in (96, 320)
    }
    in_memory = {
        n: peak(lambda n=n: simulate.simulate_alert_arrays(n, 1, progress=False, workers=1)) for n in (96, 320)
    }
    assert in_memory[320] > 2 * in_memory[96]  # the whole arrays grow with the sky (the test can see it)
    assert streamed[320] < 1.3 * streamed[96], (streamed, in_memory)  # one chunk at a time does not


def test_sources_for_alerts_gives_the_fewest_whole_batches_that_reach_the_alerts(monkeypatch):
    from alertlib.sky import simulate

    monkeypatch.setattr(simulate, "ALERT_BATCH_SOURCES", 16)
    n_sources = simulate.sources_for_alerts(150, seed=2, workers=1)
    assert n_sources % 16 == 0
    _, enough = simulate.simulate_alert_arrays(n_sources, 2, progress=False, workers=1)
    _, fewer = simulate.simulate_alert_arrays(n_sources - 16, 2, progress=False, workers=1)
    assert len(enough) >= 150 > len(fewer)
