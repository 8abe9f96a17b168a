"""Execute the study's notebooks with the `ci` profile (papermill), as `make study` would, and check
what they recorded and what a student would see: no errors, every figure an image, no stray
warnings; then run the exercise solutions against the same artefacts (nbval)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pandas as pd
import pytest

from alertlib.core.paths import REPO_ROOT
from alertlib.learn.results import COLUMNS
from alertlib.study.profiles import load_profile
from alertlib.study.runner import notebook_paths, run_study

pytestmark = [pytest.mark.notebooks, pytest.mark.slow]

# Warnings a student may see on stderr, each with its reason; anything else fails the test.
STDERR_ALLOWED = {
    # Lightning's own import-time deprecation of a torch API; not ours to fix, printed once.
    r"isinstance\(treespec, LeafSpec\)",
    # tqdm progress bars write to stderr (in JupyterLab they are widgets).
    r"^\s*(few-shot|pretrain|finetune|simulating|decoding)[^\n]*\|",
    r"it/s\]|run/s\]|s/run\]|epoch/s\]|s/epoch\]|alert/s\]|file/s\]",
}


def test_profiles_resolve_and_inherit(tmp_path):
    ci = load_profile("ci")
    default = load_profile("default")
    workshop = load_profile("workshop")
    assert ci["profile"] == "ci" and default["profile"] == "default" and workshop["profile"] == "workshop"
    assert "inherit" not in default
    assert len(default["finetune"]["seeds"]) >= 3  # the study's comparisons need at least 3 replicates
    assert default["claims"]["primary"] and default["simulate"]["sky_per_seed"]
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


def _outputs(path):
    for index, cell in enumerate(json.loads(path.read_text())["cells"]):
        for output in cell.get("outputs", []):
            yield index, cell, output


def test_ci_study_executes_every_notebook(ci_study):
    root, executed = ci_study
    assert [p.name for p in executed] == [p.name for p in notebook_paths(load_profile("ci"))]
    for path in executed:
        errors = [o for _, _, o in _outputs(path) if o.get("output_type") == "error"]
        assert not errors, f"{path.name}: {errors}"


def test_every_figure_shows_as_an_image(ci_study):
    """A cell that makes a figure shows it as image/png, never as the text '<Figure size ...>'."""
    _, executed = ci_study
    images = 0
    for path in executed:
        for index, _, output in _outputs(path):
            data = output.get("data", {})
            text = "".join(data.get("text/plain", "")) + "".join(output.get("text", ""))
            assert "<Figure size" not in text, f"{path.name} cell {index} shows a figure as text"
            images += "image/png" in data
    assert images >= 12


def test_no_stray_warnings_on_stderr(ci_study):
    _, executed = ci_study
    stray = []
    for path in executed:
        for index, _, output in _outputs(path):
            if output.get("name") != "stderr":
                continue
            for line in "".join(output.get("text", "")).splitlines():
                if line.strip() and not any(re.search(p, line) for p in STDERR_ALLOWED):
                    stray.append(f"{path.name} cell {index}: {line[:200]}")
    assert not stray, "\n".join(stray[:20])


def test_ci_study_records_every_run_with_provenance(ci_study):
    root, _ = ci_study
    results = pd.read_parquet(root / "data" / "study" / "ci" / "finetune" / "results.parquet")
    assert list(results.columns[: len(COLUMNS)]) == list(COLUMNS)
    runs = results.drop_duplicates("run_id")
    # ci grids: btsbot_cnn/scratch + resnet18 x {scratch, synthetic, galaxy_sim} (imagenet and galaxyzoo
    # are left out offline), and the image + metadata models btsbot_cnn+meta/scratch,
    # resnet18+meta x {scratch, galaxy_sim}, resnet18+meta-frozen/galaxy_sim (not from scratch): 8 models
    # on 2 seeds, one more learning rate of each on seed 0, and 1 multi-class run.
    assert len(runs) == 8 * 2 + 8 + 1
    assert runs["lr_selected"].sum() == 8 * 2 + 1
    assert set(runs["init"]) == {"scratch", "synthetic", "galaxy_sim"}
    models = set(zip(runs["arch"], runs["init"], strict=True))
    assert {
        ("btsbot_cnn+meta", "scratch"),
        ("resnet18+meta", "galaxy_sim"),
        ("resnet18+meta-frozen", "galaxy_sim"),
    } <= models
    assert ("resnet18+meta-frozen", "scratch") not in models
    for column in ("config", "data_version", "code_version", "weights_source"):
        assert runs[column].astype(str).str.len().gt(0).all(), column
    assert runs.loc[runs["init"] != "scratch", "weights_source"].str.startswith("checkpoint:").all()
    assert set(results["metric"]) >= {"roc_auc", "gate_passed", "source_roc_auc", "bts_p1_completeness"}
    # Each replicate studied its own sky.
    assert results.loc[results["task"] == "bts"].groupby("seed")["data_version"].nunique().eq(1).all()
    assert results.loc[results["task"] == "bts", "data_version"].nunique() == 2


def test_ci_study_writes_headline_evidence_and_figures(ci_study):
    root, _ = ci_study
    study = root / "data" / "study" / "ci"
    headline = pd.read_csv(study / "headline.csv")
    assert set(headline["status"]) >= {"primary", "exploratory"}
    # The ci runs are tiny: whether a ResNet-18 run passes the validation gate after 2 epochs differs
    # between machines. A primary contrast with two pairs or more has its Holm-adjusted p-value; one
    # with fewer says why (runs left out by the gate, or unpaired) instead of a number.
    primary = headline[headline["status"] == "primary"]
    assert len(primary) == 4  # the ci profile's claims.primary
    paired = primary["n"] >= 2
    assert primary.loc[paired, "p_holm"].notna().all()
    assert primary.loc[~paired, "p_holm"].isna().all()
    assert (primary.loc[~paired, "n_failed_gate"].fillna(0) > 0).all() or primary.loc[~paired, "detail"].notna().all()
    assert (study / "evidence.csv").is_file()
    figures = {p.name for p in (root / "figures" / "ci").iterdir()}
    for name in (
        "metric_by_arch_init",
        "primary_contrasts",
        "validation_gate",
        "roc_curves",
        "zero_shot_embeddings",
        "example_triplets",
    ):
        assert {f"{name}.png", f"{name}.pdf"} <= figures, name
    benchmark = pd.read_csv(study / "benchmark_cpu.csv")
    assert (benchmark.loc[benchmark["status"] == "ok", "alerts_per_s"] > 0).all()


def test_a_rerun_reads_every_artefact_back(ci_study):
    """Run again: every notebook reads back what is current; nothing is trained or measured again."""
    root, _ = ci_study
    results = root / "data" / "study" / "ci" / "finetune" / "results.parquet"
    before = results.stat().st_mtime_ns, (root / "data" / "study" / "ci" / "benchmark_cpu.csv").stat().st_mtime_ns
    patch = pytest.MonkeyPatch()
    try:
        patch.setenv("ALERTLIB_DATA", str(root / "data"))
        patch.setenv("ALERTLIB_FIGURES", str(root / "figures"))
        run_study("ci", runs_dir=root / "rerun")
    finally:
        patch.undo()
    assert (root / "data" / "study" / "ci" / "benchmark_cpu.csv").stat().st_mtime_ns == before[1]
    fresh = pd.read_parquet(results)
    assert fresh["wall_time_s"].notna().all()


def test_exercise_solutions_run(ci_study):
    """The solutions of every notebook's exercises, run with nbval against the ci study's artefacts."""
    root, _ = ci_study
    env = {
        **os.environ,
        "ALERTLIB_PROFILE": "ci",
        "ALERTLIB_DATA": str(root / "data"),
        "ALERTLIB_FIGURES": str(root / "figures"),
    }
    solutions = sorted((REPO_ROOT / "notebooks" / "solutions").glob("*.ipynb"))
    assert len(solutions) == 6
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "--nbval-lax",
            "--nbval-kernel-name",
            "alertlib",
            "-p",
            "no:cacheprovider",
            *map(str, solutions),
        ],
        cwd=REPO_ROOT / "notebooks",
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-5000:]
