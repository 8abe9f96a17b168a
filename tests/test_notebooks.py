"""Execute the study's notebooks with the `ci` profile (papermill), as `make study` would, and check
the numbers they recorded."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from alertlib.learn.results import COLUMNS, load_results
from alertlib.study.pipeline import load_profile, notebook_paths, run_study

pytestmark = [pytest.mark.notebooks, pytest.mark.slow]


def test_profiles_resolve_and_inherit(tmp_path):
    ci = load_profile("ci")
    default = load_profile("default")
    assert ci["profile"] == "ci" and default["profile"] == "default"
    assert "inherit" not in default
    assert len(default["finetune"]["seeds"]) >= 3  # the study's main comparison needs at least 3 seeds
    extra = tmp_path / "mine.yaml"
    extra.write_text("mine:\n  inherit: ci\n  seed: 7\n")
    mine = load_profile("mine", extra)
    assert mine["seed"] == 7 and mine["notebooks"] == ci["notebooks"]
    with pytest.raises(KeyError, match="unknown profile"):
        load_profile("nope")


@pytest.fixture(scope="module")
def ci_study(tmp_path_factory):
    """Run the whole ci study once, into temporary data/figures folders (the kernels inherit them)."""
    root = tmp_path_factory.mktemp("ci-study")
    patch = pytest.MonkeyPatch()
    try:  # restored even when the study fails, or the rest of the session would see its folders
        patch.setenv("ALERTLIB_DATA", str(root / "data"))
        patch.setenv("ALERTLIB_FIGURES", str(root / "figures"))
        executed = run_study("ci", runs_dir=root / "runs")
        yield root, executed
    finally:
        patch.undo()


def test_ci_study_executes_every_notebook(ci_study):
    root, executed = ci_study
    assert [p.name for p in executed] == [p.name for p in notebook_paths(load_profile("ci"))]
    for path in executed:
        notebook = json.loads(path.read_text())
        errors = [o for c in notebook["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{path.name}: {errors}"


def test_ci_study_records_every_run_with_provenance(ci_study):
    root, _ = ci_study
    results = load_results(root / "data" / "study" / "ci" / "finetune")
    assert list(results.columns[: len(COLUMNS)]) == list(COLUMNS)
    runs = results.drop_duplicates("run_id")
    # ci grid: btsbot_cnn/scratch + resnet18 x {scratch, synthetic, galaxy_sim} (main), resnet18 x 2
    # (multiclass), resnet18 x 2 inits x 2 fractions; imagenet/galaxyzoo are left out offline.
    assert len(runs) == 10
    assert set(runs["init"]) == {"scratch", "synthetic", "galaxy_sim"}
    for column in ("config", "data_version", "code_version", "weights_source"):
        assert runs[column].astype(str).str.len().gt(0).all(), column
    pretrained = runs[runs["init"] != "scratch"]
    assert pretrained["weights_source"].str.startswith("checkpoint:").all()
    auc = results[results["metric"] == "roc_auc"]["value"]
    assert auc.between(0.0, 1.0).all() and len(auc) == 8  # the 8 binary runs


def test_ci_study_writes_headline_and_figures(ci_study):
    root, _ = ci_study
    headline = pd.read_csv(root / "data" / "study" / "ci" / "headline.csv")
    claims = set(headline["claim"])
    assert any("galaxy" in c for c in claims) and any("custom CNN" in c for c in claims)
    assert headline["verdict"].str.len().gt(0).all()
    figures = {p.name for p in (root / "figures" / "ci").iterdir()}
    for name in ("metric_by_arch_init", "roc_curves", "data_efficiency", "completeness_purity", "zero_shot_embeddings"):
        assert {f"{name}.png", f"{name}.pdf"} <= figures, name
    benchmark = pd.read_csv(root / "data" / "study" / "ci" / "benchmark_cpu.csv")
    assert (benchmark.loc[benchmark["status"] == "ok", "alerts_per_s"] > 0).all()
