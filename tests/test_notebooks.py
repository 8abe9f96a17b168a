"""Execute the study's notebooks with the `ci` profile (papermill), as `make study` would."""

from __future__ import annotations

import json

import pytest

from alertlib.study import load_profile, notebook_paths, run_study

pytestmark = [pytest.mark.notebooks, pytest.mark.slow]


def test_profiles_resolve_and_inherit(tmp_path):
    ci = load_profile("ci")
    default = load_profile("default")
    assert ci["profile"] == "ci" and default["profile"] == "default"
    assert "inherit" not in default
    extra = tmp_path / "mine.yaml"
    extra.write_text("mine:\n  inherit: ci\n  seed: 7\n")
    mine = load_profile("mine", extra)
    assert mine["seed"] == 7 and mine["notebooks"] == ci["notebooks"]
    with pytest.raises(KeyError, match="unknown profile"):
        load_profile("nope")


def test_ci_study_executes_every_notebook(tmp_path):
    executed = run_study("ci", runs_dir=tmp_path)
    assert [p.name for p in executed] == [p.name for p in notebook_paths(load_profile("ci"))]
    for path in executed:
        notebook = json.loads(path.read_text())
        errors = [o for c in notebook["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{path.name}: {errors}"
