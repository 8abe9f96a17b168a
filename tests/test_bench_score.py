"""benchmarks/bench_score.py at tiny size: every stage measured, the ratios and the machine stamp in the CSV."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _bench_score_module():
    spec = importlib.util.spec_from_file_location("bench_score", REPO_ROOT / "benchmarks" / "bench_score.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.realdata
@pytest.mark.slow
def test_bench_score_runs_tiny_and_writes_every_stage_with_the_stamp(shared_data, tmp_path, capsys):
    out = tmp_path / "score.csv"
    _bench_score_module().main([str(shared_data / "alert-packets" / "ztf"), "--quick", "--out", str(out)])
    table = pd.read_csv(out)
    assert {"stage", "model", "runtime", "variant", "workers", "alerts", "seconds", "alerts_per_s"} <= set(
        table.columns
    )
    assert {"pipeline_over_decode", "pipeline_over_inference", "onnx_over_best_torch", "limit_fraction"} <= set(
        table.columns
    )
    assert {"cpu_model", "cpu_threads", "torch_version", "code_version", "measured_at", "load_avg_1m"} <= set(
        table.columns
    )
    stages = table.groupby("stage").size().to_dict()
    assert stages == {"decode": 2, "inference": 3, "pipeline": 4}  # 1 and 2 workers; eager, channels_last, ONNX
    assert (table["alerts_per_s"] > 0).all()
    pipeline = table[table["stage"] == "pipeline"]
    assert (pipeline["alerts"] == table.loc[table["stage"] == "decode", "alerts"].iloc[0]).all() and pipeline[
        "pipeline_over_decode"
    ].notna().all()
    onnx = table[(table["stage"] == "inference") & (table["runtime"] == "onnxruntime")]
    assert onnx["onnx_over_best_torch"].notna().all()
    assert "of decoding alone" in capsys.readouterr().out
