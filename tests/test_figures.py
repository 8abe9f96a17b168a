"""Every figure function runs on small tables, draws the numbers of its input, and saves PNG + PDF.

All tables and arrays here are TEST FIXTURES made up in these test files; none is a study result.
"""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest
from test_stats import make_benchmark, make_results  # tests/ is on sys.path under pytest

from alertlib.core.vocab import INIT_ORDER
from alertlib.io.schema import load_schema
from alertlib.report import figures
from alertlib.report.display import NotebookFigure
from alertlib.report.gate import gate_table
from alertlib.report.seeds import summarise_over_seeds
from alertlib.report.tables import binned_metric_name

# alertlib.report.figures never uses pyplot, so any backend works; Agg keeps the tests headless anyway.
matplotlib.use("Agg")

ARCHS_INITS = {
    "btsbot_cnn": ("scratch",),
    "resnet18": ("scratch", "synthetic", "galaxy_sim"),
    "convnext_pico": ("scratch", "galaxy_sim"),
}


@pytest.fixture(scope="module")
def results() -> pd.DataFrame:
    """Test fixture: a results table with 3 seeds, 3 training fractions and binned metrics."""
    rng = np.random.default_rng(0)
    values = {}
    frames = []
    for fraction in (0.1, 0.5, 1.0):
        values = {}
        for arch, inits in ARCHS_INITS.items():
            for position, init in enumerate(inits):
                level = 0.70 + 0.05 * position + 0.1 * fraction
                values[(arch, init, "auc")] = list(level + rng.normal(0, 0.01, 3))
                for low in (17.0, 17.25, 17.5):
                    for quantity in ("completeness", "purity"):
                        name = binned_metric_name(quantity, low, low + 0.25, policy="bts_p1")
                        values[(arch, init, name)] = list(
                            np.clip(level - 0.1 * (low - 17) + rng.normal(0, 0.02, 3), 0, 1)
                        )
        frames.append(make_results(values, train_fraction=fraction))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def predictions() -> pd.DataFrame:
    """Test fixture: binary test predictions of two initialisations x two seeds."""
    rng = np.random.default_rng(1)
    frames = []
    for init, separation in (("scratch", 0.5), ("galaxy_sim", 1.5)):
        for seed in (0, 1):
            labels = rng.integers(0, 2, 80)
            logits = separation * (2 * labels - 1) + rng.normal(0, 1, 80)
            frames.append(
                pd.DataFrame(
                    {
                        "objectId": [f"ZTF{i:05d}" for i in range(80)],
                        "candid": np.arange(80),
                        "label": labels,
                        "score": 1 / (1 + np.exp(-logits)),
                        "arch": "resnet18",
                        "init": init,
                        "seed": seed,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def _saved(figure, name, tmp_path):
    assert isinstance(figure, NotebookFigure)  # shown as an image in notebooks (tests/test_display.py)
    paths = figures.save_figure(figure, name, out_dir=tmp_path)
    assert [p.name for p in paths] == [f"{name}.png", f"{name}.pdf"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths[1].read_bytes()[:5] == b"%PDF-"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(f".{name}")) == []  # no temp files left
    return paths


def test_save_figure_is_reproducible_and_checks_the_name(tmp_path, monkeypatch):
    figure, axes = figures.new_figure()
    axes[0, 0].plot([0, 1], [0, 1])
    first = [p.read_bytes() for p in _saved(figure, "line", tmp_path)]
    second = [p.read_bytes() for p in figures.save_figure(figure, "line.png", out_dir=tmp_path)]
    assert first == second  # no dates in the files: the same figure gives the same bytes
    monkeypatch.setenv("ALERTLIB_FIGURES", str(tmp_path / "env"))
    assert figures.save_figure(figure, "default_place")[0].parent == tmp_path / "env"
    with pytest.raises(ValueError, match="plain file stem"):
        figures.save_figure(figure, "sub/name", out_dir=tmp_path)


def test_colours_and_markers_are_consistent():
    assert figures.init_colour("galaxy_sim") == figures.INIT_COLOURS["galaxy_sim"]
    known = [figures.init_colour(i) for i in INIT_ORDER]
    assert len(set(known)) == len(known)
    assert figures.init_colour("my_new_init") == figures.init_colour("my_new_init")
    assert figures.arch_marker("convnext_pico.d1_in1k") == figures.arch_marker("convnext_pico")


def test_metric_by_arch_init_draws_the_summary_numbers(results, tmp_path):
    summary = summarise_over_seeds(results, ["auc"], n_resamples=500)
    figure = figures.plot_metric_by_arch_init(summary, "auc")
    ax = figure.axes[0]
    drawn = sorted(y for container in ax.containers for y in container.lines[0].get_ydata())
    expected = summary[(summary["train_fraction"] == 1.0) & (summary["arch"] != "btsbot_cnn")]["mean"]
    assert drawn == pytest.approx(sorted(expected))
    reference = summary[(summary["train_fraction"] == 1.0) & (summary["arch"] == "btsbot_cnn")]["mean"].iloc[0]
    assert any(line.get_ydata()[0] == pytest.approx(reference) for line in ax.get_lines())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["resnet18", "convnext_pico"]
    _saved(figure, "metric_by_arch_init", tmp_path)
    # The raw results table works too (summarised inside).
    _saved(figures.plot_metric_by_arch_init(results, "auc"), "metric_raw", tmp_path)


def test_data_efficiency_and_completeness_purity(results, tmp_path):
    summary = summarise_over_seeds(results, n_resamples=300)
    figure = figures.plot_data_efficiency(summary, "auc", archs=["resnet18"])
    xs = {x for container in figure.axes[0].containers for x in container.lines[0].get_xdata()}
    assert xs == {0.1, 0.5, 1.0}
    _saved(figure, "data_efficiency", tmp_path)
    figure = figures.plot_completeness_purity(summary, archs=["resnet18"])
    assert [ax.get_ylabel() for ax in figure.axes] == ["completeness", "purity"]
    centres = {x for container in figure.axes[0].containers for x in container.lines[0].get_xdata()}
    assert min(centres) > 17.0 and max(centres) < 17.75
    _saved(figure, "completeness_purity", tmp_path)
    assert figure.axes[0].get_title() == "bts: completeness vs peak magnitude (bts_p1)"
    with pytest.raises(ValueError, match="no binned metrics"):
        figures.plot_completeness_purity(results[results["metric"] == "auc"])
    with pytest.raises(ValueError, match="policy 'prod_p2'"):
        figures.plot_completeness_purity(summary, policy="prod_p2")


def test_roc_curves_and_confusion_matrices(predictions, tmp_path):
    figure = figures.plot_roc_curves(predictions)
    labels = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert labels[0].startswith("scratch: AUC") and labels[1].startswith("galaxy_sim: AUC")
    from sklearn.metrics import roc_auc_score

    expected = np.mean(
        [
            roc_auc_score(run["label"], run["score"])
            for _, run in predictions[predictions["init"] == "scratch"].groupby("seed")
        ]
    )
    assert f"AUC {expected:.3f} (2 runs)" in labels[0]
    _saved(figure, "roc", tmp_path)
    figure = figures.plot_confusion_matrices(predictions, class_names=["rejected", "BTS"])
    assert len(figure.axes) == 2
    _saved(figure, "confusion", tmp_path)
    multi = pd.DataFrame(
        {
            "label": [0, 0, 1, 2, 1],
            "score": [0.8, 0.8, 0.7, 0.7, 0.6],
            "predicted": [0, 1, 1, 2, 1],
            "prob_sn": [0.8, 0.1, 0.1, 0.2, 0.3],
            "prob_var": [0.1, 0.8, 0.7, 0.1, 0.6],
            "prob_bogus": [0.1, 0.1, 0.2, 0.7, 0.1],
            "init": "scratch",
        }
    )
    figure = figures.plot_confusion_matrices(multi)
    assert [t.get_text() for t in figure.axes[0].get_yticklabels()] == ["sn", "var", "bogus"]
    _saved(figure, "confusion_multi", tmp_path)
    with pytest.raises(ValueError, match="multi-class"):
        figures.plot_roc_curves(multi)


def test_speed_memory(tmp_path):
    figure = figures.plot_speed_memory(make_benchmark())
    throughput = figure.axes[0]
    points = sorted(tuple(c.get_offsets()[0]) for c in throughput.collections)
    # Fastest variant (channels_last, 1.5x) at batch 256 for each model.
    assert points == sorted([(2.0e5, 1500.0), (1.1e7, 3000.0), (9.0e6, 750.0)])
    _saved(figure, "speed_memory", tmp_path)


def test_example_images(tmp_path):
    rng = np.random.default_rng(2)
    schema = load_schema()
    columns = schema.question("smooth-or-featured").columns(schema.suffix)
    catalog = pd.DataFrame(rng.integers(0, 20, size=(6, 3)), columns=columns).assign(id_str=[f"g{i}" for i in range(6)])
    catalog.loc[0, columns] = [30, 10, 0]
    galaxies = rng.random((6, 32, 32, 3))
    figure = figures.plot_galaxy_grid(galaxies, catalog, n=6, ncols=3)
    texts = [ax.get_xlabel() for ax in figure.axes]
    assert texts[0] == "smooth 0.75\nfeatured-or-disk 0.25\nartifact 0.00"
    _saved(figure, "galaxies", tmp_path)
    gz1 = pd.DataFrame({"OBJID": range(4), "CLASS": [0, 1, 3, 5]})
    _saved(
        figures.plot_galaxy_grid(rng.random((4, 3, 16, 16)), gz1, label_column="CLASS", id_column="OBJID"),
        "gz1",
        tmp_path,
    )
    triplets = rng.normal(size=(10, 63, 63, 3)).astype(np.float32)
    labels = np.array([0, 1] * 5)
    figure = figures.plot_triplet_examples(
        triplets, labels, {0: "rejected", 1: "BTS"}, n_per_class=2, scores=rng.random(10)
    )
    assert [ax.get_ylabel() for ax in figure.axes if ax.get_ylabel()] == ["rejected", "BTS"]
    _saved(figure, "triplets", tmp_path)


def test_embeddings_and_training_curves(tmp_path):
    rng = np.random.default_rng(3)
    labels = np.repeat([0, 1], 30)
    embeddings = {
        "galaxy_sim": rng.normal(size=(60, 8)) + labels[:, None] * 3.0,
        "scratch": rng.normal(size=(60, 8)),
    }
    coordinates = figures.embed_2d(embeddings["galaxy_sim"], method="tsne", perplexity=10, tsne_max_iter=250)
    assert coordinates.shape == (60, 2)
    assert np.array_equal(
        coordinates, figures.embed_2d(embeddings["galaxy_sim"], method="tsne", perplexity=10, tsne_max_iter=250)
    )
    figure = figures.plot_embeddings(
        embeddings, labels, ["rejected", "BTS"], method="tsne", perplexity=10, tsne_max_iter=250
    )
    assert [ax.get_title() for ax in figure.axes] == ["scratch (t-SNE)", "galaxy_sim (t-SNE)"]
    _saved(figure, "embeddings", tmp_path)
    if not figures.umap_available():
        with pytest.raises(ImportError, match="umap-learn"):
            figures.embed_2d(embeddings["scratch"], method="umap")
    curves = pd.concat(
        [
            pd.DataFrame(
                {"epoch": range(5), "train_loss": np.linspace(1, 0.3, 5), "val_loss": np.linspace(1.1, 0.5, 5)}
            ).assign(arch="resnet18", init=init, seed=seed)
            for init in ("scratch", "galaxy_sim")
            for seed in (0, 1)
        ]
    )
    figure = figures.plot_training_curves(curves)
    assert len(figure.axes[0].get_lines()) == 8  # 2 inits x 2 seeds x (train, validation)
    _saved(figure, "training_curves", tmp_path)


def test_figures_leave_out_combinations_without_a_finite_value():
    nan = float("nan")
    results = make_results(
        {
            ("btsbot_cnn", "scratch", "auc"): [nan, nan],
            ("resnet18", "scratch", "auc"): [0.70, 0.72],
            ("resnet18", "galaxy_sim", "auc"): [nan, nan],
        }
    )
    summary = summarise_over_seeds(results, n_resamples=200)
    assert summary["n_non_finite"].tolist() == [2, 0, 2]  # counted in the summary, left out of the figure
    with pytest.warns(UserWarning, match="no reference line"):
        figure = figures.plot_metric_by_arch_init(summary, "auc")
    ax = figure.axes[0]
    assert [y for container in ax.containers for y in container.lines[0].get_ydata()] == [pytest.approx(0.71)]
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["scratch"]


def test_figures_mark_runs_that_failed_the_gate(tmp_path):
    results = make_results(
        {
            ("btsbot_cnn", "scratch", "auc"): [0.70, 0.72, 0.71],
            ("btsbot_cnn", "scratch", "gate_passed"): [1.0, 1.0, 0.0],
            ("resnet18", "scratch", "auc"): [0.75, 0.20, 0.77],
            ("resnet18", "scratch", "gate_passed"): [1.0, 0.0, 1.0],
            ("resnet18", "galaxy_sim", "auc"): [0.80, 0.82, 0.81],
            ("resnet18", "galaxy_sim", "gate_passed"): [1.0, 1.0, 1.0],
            ("convnext_pico", "scratch", "auc"): [0.5, 0.5, 0.5],
            ("convnext_pico", "scratch", "gate_passed"): [0.0, 0.0, 0.0],
        }
    )
    figure = figures.plot_metric_by_arch_init(results, "auc")
    ax = figure.axes[0]
    drawn = sorted(y for container in ax.containers for y in container.lines[0].get_ydata())
    assert drawn == pytest.approx([0.76, 0.81])  # the failed run (0.20) is left out of the mean
    assert [text.get_text() for text in ax.texts] == ["1/3 failed the gate"]
    assert ax.get_title().endswith("not drawn, no usable run: convnext_pico (scratch) (3/3 failed the gate)")
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert "btsbot_cnn (scratch), reference (1/3 failed the gate)" in legend
    assert "t interval over replicates" in ax.get_ylabel()
    _saved(figure, "metric_gate", tmp_path)
    figure = figures.plot_gate(gate_table(results))
    heights = [patch.get_height() for patch in figure.axes[0].patches]
    assert heights == pytest.approx([1 / 3, 1 / 3, 0.0, 1.0])  # the study's order: CNN, resnet18 x2, convnext
    assert [text.get_text() for text in figure.axes[0].texts] == ["1/3", "1/3", "0/3", "3/3"]
    _saved(figure, "gate", tmp_path)


def test_primary_contrasts_figure_draws_both_intervals_and_a_zero_line(tmp_path):
    primary = pd.DataFrame(
        {
            "name": ["galaxy vs scratch", "imagenet vs scratch", "source ranking"],
            "metric": ["roc_auc", "roc_auc", "source_roc_auc"],
            "difference": [0.03, -0.01, 0.02],
            "ci_low": [0.01, -0.04, -0.01],
            "ci_high": [0.05, 0.02, 0.05],
            "p_holm": [0.004, 0.6, 0.3],
            "boot_difference": [0.03, -0.01, np.nan],
            "boot_low": [0.02, -0.03, np.nan],
            "boot_high": [0.04, 0.01, np.nan],
            "confidence": 0.95,
        }
    )
    figure = figures.plot_primary_contrasts(primary)
    ax = figure.axes[0]
    t_bars, bootstrap_bars = ax.containers
    assert list(t_bars.lines[0].get_xdata()) == pytest.approx([0.03, -0.01, 0.02])
    assert list(bootstrap_bars.lines[0].get_xdata()) == pytest.approx([0.03, -0.01])  # not computed: not drawn
    assert any(list(line.get_xdata()) == [0.0, 0.0] for line in ax.get_lines())
    assert [text.get_text() for text in ax.texts] == ["Holm p = 0.004", "Holm p = 0.600", "Holm p = 0.300"]
    names = dict(zip(ax.get_yticks(), [label.get_text() for label in ax.get_yticklabels()], strict=True))
    assert names[max(names)] == "galaxy vs scratch\n(roc_auc)"  # the first contrast at the top
    _saved(figure, "primary_contrasts", tmp_path)
