"""The efficiency benchmark: timing, memory, the device ceiling, btsbot side by side, and the conclusions drawn."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from alertlib.bench import measure, runner, tables, timing, zoo
from alertlib.bench.roofline import OperatorCost, measure_memory_bandwidth, operator_costs, roofline_limit
from alertlib.bench.runner import ROW_COLUMNS, BenchmarkSettings, benchmark_jobs, run_benchmark
from alertlib.bench.tables import compare_implementations, load_benchmark_tables
from alertlib.bench.timing import limit_fraction, measure_matmul_ceiling, summarise_times, time_calls
from alertlib.core.provenance import machine_stamp
from alertlib.learn import inference
from alertlib.learn.inference import best_inference_variant
from alertlib.report.efficiency import (
    custom_cnn_ratios,
    custom_cnn_verdicts,
    limit_goal_table,
    plot_roofline_fraction,
    roofline_table,
)

STAMP_KEYS = ("cpu_model", "cpu_threads", "torch_version", "cuda_version", "gpu_name")


def tiny_settings(**changes) -> BenchmarkSettings:
    settings = BenchmarkSettings(
        models=("btsbot_cnn", "convnext_pico"),
        batch_sizes=(1, 4),
        variants=("eager",),
        impls=("alertlib", "btsbot"),
        threads=2,
        warmup=1,
        min_repeats=2,
        max_repeats=2,
        min_time_s=0.0,
        ceiling_sizes=(256,),
        ceiling_repeats=2,
        bandwidth_mb=16,
        bandwidth_repeats=2,
    )
    for key, value in changes.items():
        setattr(settings, key, value)
    return settings


def cpu_job(model: str, **changes) -> dict:
    """A benchmark job of ``model`` on the CPU: one batch of 1, one warm-up and one timed call."""
    job = {
        "model": model,
        "impl": "alertlib",
        "device": "cpu",
        "dtype": "float32",
        "variant": "eager",
        "batch_sizes": [1],
        "threads": 1,
        "seed": 0,
        "warmup": 1,
        "min_repeats": 1,
        "max_repeats": 1,
        "min_time_s": 0.0,
    }
    return {**job, **changes}


@pytest.fixture(scope="module")
def tiny_table(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "cpu_tiny.csv"
    table = run_benchmark(tiny_settings(), out=out, progress=False)
    return table, out


# --- the measured table ------------------------------------------------------------------------


def test_rows_have_the_schema_and_the_machine_stamp(tiny_table):
    table, out = tiny_table
    assert list(table.columns[: len(ROW_COLUMNS)]) == list(ROW_COLUMNS)
    for key in STAMP_KEYS:
        assert key in table.columns
        assert table[key].notna().all()
    assert (table["cpu_threads"] == 2).all()
    assert (table["status"] == "ok").all(), table[["model", "impl", "status", "note"]]
    # One row per (model, impl, dtype, variant, batch size); btsbot has classes for both models.
    assert len(table) == 2 * 2 * 2
    assert set(table["device"]) == {"cpu"} and set(table["dtype"]) == {"float32"}
    reread = load_benchmark_tables(out)
    assert len(reread) == len(table) and set(reread["table"]) == {out.name}


def test_numbers_are_positive_and_consistent(tiny_table):
    table, _ = tiny_table
    for column in ("alerts_per_s", "latency_ms", "peak_mem_mb", "params", "macs", "ceiling_flops", "limit_fraction"):
        assert (table[column] > 0).all(), column
    # alerts/s and latency describe the same median call.
    assert ((table["alerts_per_s"] * table["latency_ms"] / 1000.0 - table["batch_size"]).abs() < 1e-6).all()
    assert (table["alerts_per_s_q25"] <= table["alerts_per_s"] + 1e-9).all()
    assert (table["alerts_per_s"] <= table["alerts_per_s_q75"] + 1e-9).all()
    # The custom CNN does more multiply-adds per alert than ConvNeXt-pico but has fewer parameters.
    cost = table.groupby("model")[["params", "macs"]].first()
    assert cost.loc["btsbot_cnn", "macs"] > cost.loc["convnext_pico", "macs"]
    assert cost.loc["btsbot_cnn", "params"] < cost.loc["convnext_pico", "params"]


def test_limit_fraction_comes_from_the_ceiling_measured_in_the_run(tiny_table):
    table, _ = tiny_table
    ceiling = table[["ceiling_start_flops", "ceiling_end_flops"]].max(axis=1)
    assert (table["ceiling_flops"] == ceiling).all()
    assert table["ceiling_flops"].nunique() == 1  # one ceiling per device and format
    assert (table["ceiling_matmul_size"] == 256).all()
    expected = 2 * table["macs"] * table["alerts_per_s"] / table["ceiling_flops"]
    assert ((table["limit_fraction"] - expected).abs() <= 1e-12 * expected).all()
    assert ((table["achieved_flops"] / table["ceiling_flops"] - table["limit_fraction"]).abs() < 1e-9).all()


def test_btsbot_rows_sit_beside_ours(tiny_table):
    table, _ = tiny_table
    assert set(table[table["impl"] == "btsbot"]["model"]) == {"btsbot_cnn", "convnext_pico"}
    paired = compare_implementations(table)
    assert len(paired) == 2 * 2  # two models, two batch sizes
    # Same architecture: same parameters and multiply-adds on both sides.
    assert (paired["params_alertlib"] == paired["params_btsbot"]).all()
    assert (paired["macs_alertlib"] == paired["macs_btsbot"]).all()
    assert (paired["speed_ratio"] > 0).all()


def test_custom_cnn_comparison_from_a_measured_table(tiny_table):
    table, _ = tiny_table
    ratios = custom_cnn_ratios(table).set_index("model")
    assert list(ratios.index) == ["convnext_pico"] and (ratios["batch_size"] == 4).all()
    ours = table[(table["impl"] == "alertlib") & (table["batch_size"] == 4)].set_index("model")
    expected = ours.loc["convnext_pico", "alerts_per_s"] / ours.loc["btsbot_cnn", "alerts_per_s"]
    assert ratios.loc["convnext_pico", "speed_ratio"] == pytest.approx(expected)
    sentences = custom_cnn_verdicts(ratios.reset_index())
    assert sentences[0].startswith("cpu, float32, batch 4: ") and "of 1 standard architectures" in sentences[0]
    assert any("convnext_pico processes" in sentence for sentence in sentences)


def test_roofline_comes_from_the_bandwidth_and_ceiling_measured_in_the_run(tiny_table):
    table, _ = tiny_table
    bandwidth = table[["bandwidth_start_bytes_per_s", "bandwidth_end_bytes_per_s"]].max(axis=1)
    assert (table["bandwidth_bytes_per_s"] == bandwidth).all() and (bandwidth > 1e8).all()
    for column in ("bytes_per_alert", "roofline_alerts_per_s", "roofline_fraction"):
        assert (table[column] > 0).all(), column
    assert table["roofline_memory_share"].between(0, 1).all()
    # The roofline never allows more than the matrix-product rate alone, so its fraction is the larger.
    matmul_limit = table["ceiling_flops"] / (2 * table["macs"])
    assert (table["roofline_alerts_per_s"] <= matmul_limit * (1 + 1e-12)).all()
    assert (table["roofline_fraction"] >= table["limit_fraction"] * (1 - 1e-12)).all()
    expected = table["alerts_per_s"] / table["roofline_alerts_per_s"]
    assert ((table["roofline_fraction"] - expected).abs() <= 1e-12 * expected).all()
    # Weights are read once per batch: a larger batch moves fewer bytes per alert; both impls the same.
    per_batch = table.pivot_table(index=["model", "impl"], columns="batch_size", values="bytes_per_alert")
    assert (per_batch[4] < per_batch[1]).all()
    assert (per_batch.xs("alertlib", level="impl") == per_batch.xs("btsbot", level="impl")).all().all()
    report = roofline_table(table, models=None, batch_size=4)
    assert set(report["model"]) == {"btsbot_cnn", "convnext_pico"}
    assert (report["matmul_limit_alerts_per_s"] >= report["roofline_alerts_per_s"]).all()
    assert plot_roofline_fraction(table, batch_size=4) is not None


@pytest.mark.parametrize(("arch", "impl"), [("resnet18", "alertlib"), ("convnext_pico", "btsbot")])
def test_operator_costs_count_the_models_flops_and_every_operators_bytes(arch, impl):
    operators = operator_costs(arch, impl, batch_size=8)
    _, macs = zoo.model_params_and_macs(arch, impl)
    assert sum(op.flops for op in operators) == 2 * macs * 8
    assert all(op.bytes > 0 for op in operators)
    names = {op.name for op in operators}
    assert "aten.convolution" in names and not names & {"aten.view", "aten.permute", "aten.t", "aten.empty"}
    if arch == "resnet18":  # the residual additions are functional, not modules: counted all the same
        assert sum(op.name == "aten.add_" for op in operators) == 8
    # bfloat16 halves the tensors (batch-norm statistics stay float32).
    half = operator_costs(arch, impl, batch_size=8, dtype="bfloat16")
    assert sum(op.bytes for op in half) == pytest.approx(sum(op.bytes for op in operators) / 2, rel=0.03)


def test_roofline_limit_takes_each_operator_at_its_slower_limit():
    operators = [OperatorCost("conv", flops=1e9, bytes=1e6), OperatorCost("norm", flops=0.0, bytes=1e9)]
    limit = roofline_limit(operators, batch_size=10, ceiling_flops=1e11, bandwidth_bytes_per_s=1e10)
    # conv: max(0.01 s compute, 0.0001 s memory); norm: 0.1 s memory.
    assert limit["alerts_per_s"] == pytest.approx(10 / 0.11)
    assert limit["memory_share"] == pytest.approx(0.1 / 0.11)
    assert limit["bytes_per_alert"] == pytest.approx((1e6 + 1e9) / 10)
    assert math.isnan(roofline_limit(operators, 10, 1e11, math.nan)["alerts_per_s"])


def test_memory_bandwidth_is_measured():
    bandwidth = measure_memory_bandwidth("cpu", size_mb=16, repeats=2)
    assert bandwidth["bytes_per_s"] == max(bandwidth["copy_bytes_per_s"], bandwidth["add_bytes_per_s"]) > 1e8
    assert bandwidth["size_bytes"] == 16 * 2**20


def test_limit_goal_table_reports_the_roofline_goal():
    table = synthetic_table().assign(ceiling_flops=1e11)
    goals = limit_goal_table(table).set_index("model")
    assert goals["roofline_fraction"].isna().all() and goals["meets_roofline_goal"].isna().all()
    with_roofline = table.assign(roofline_alerts_per_s=table["alerts_per_s"] / 0.7)
    with_roofline.loc[with_roofline["model"] == "resnet18", "roofline_alerts_per_s"] = 300.0
    with_roofline["roofline_fraction"] = with_roofline["alerts_per_s"] / with_roofline["roofline_alerts_per_s"]
    goals = limit_goal_table(with_roofline).set_index("model")
    assert goals.loc["convnext_pico", "roofline_fraction"] == pytest.approx(0.7)
    assert goals.loc["convnext_pico", "meets_roofline_goal"] is True
    assert goals.loc["resnet18", "meets_roofline_goal"] is False  # 150 of 300 alerts/s


# --- pieces ------------------------------------------------------------------------------------


def test_summarise_times_gives_median_and_quartiles():
    timing = summarise_times([0.4, 0.1, 0.3, 0.2, 0.5], first_call_s=2.0)
    assert timing.median_s == pytest.approx(0.3)
    assert timing.q25_s == pytest.approx(0.2) and timing.q75_s == pytest.approx(0.4)
    assert timing.iqr_s == pytest.approx(0.2) and timing.repeats == 5 and timing.first_call_s == 2.0
    with pytest.raises(ValueError, match="no timed calls"):
        summarise_times([])


def test_time_calls_repeats_until_count_and_time():
    calls = []
    timing = time_calls(lambda: calls.append(1), "cpu", warmup=2, min_repeats=3, max_repeats=7, min_time_s=10)
    assert timing.repeats == 7 and len(calls) == 2 + 7  # time never reached: stops at max_repeats
    calls.clear()
    timing = time_calls(lambda: calls.append(1), "cpu", warmup=1, min_repeats=4, max_repeats=9, min_time_s=0)
    assert timing.repeats == 4 and len(calls) == 1 + 4


def test_limit_fraction_arithmetic():
    assert limit_fraction(macs=1e9, alerts_per_s=100.0, ceiling_flops=400e9) == pytest.approx(0.5)
    assert math.isnan(limit_fraction(1e9, 100.0, 0.0))


def test_matmul_ceiling_is_measured():
    ceiling = measure_matmul_ceiling("cpu", "float32", sizes=(128, 256), repeats=2)
    assert set(ceiling["per_size"]) == {128, 256}
    assert ceiling["flops"] == max(ceiling["per_size"].values()) > 1e8
    assert ceiling["size"] in (128, 256)


@pytest.mark.parametrize("arch", ["btsbot_cnn", "convnext_pico"])
def test_btsbot_classes_build_the_same_architecture(arch):
    from alertlib.learn.models import model_cost

    ours = model_cost(arch)
    params, macs = zoo.model_params_and_macs(arch, "btsbot")
    assert (params, macs) == (ours["params"], ours["macs"])
    model = zoo.build_model(arch, "btsbot").eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 63, 63)).shape == (2, 1)


def test_missing_btsbot_file_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("ALERTLIB_BTSBOT_ARCHITECTURES", str(tmp_path / "nope.py"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        zoo.btsbot_architectures_file()


def test_jobs_skip_gpu_only_models_on_cpu_and_limit_compile_sizes():
    settings = tiny_settings(
        models=("maxvit_tiny_rw_224", "resnet18"),
        variants=("eager", "compile"),
        batch_sizes=(1, 16, 256),
        compile_batch_sizes=(256,),
    )
    jobs, skipped = benchmark_jobs(settings)
    assert {(j["model"], j["impl"], j["variant"]) for j in jobs} == {
        ("resnet18", "alertlib", "eager"),
        ("resnet18", "alertlib", "compile"),
    }
    assert [j["batch_sizes"] for j in jobs if j["variant"] == "compile"] == [[256]]
    assert {row["impl"] for row in skipped} == {"alertlib", "btsbot"}
    assert all(row["status"] == "skipped" and "GPU only" in row["note"] for row in skipped)
    # On a GPU the same model is measured.
    gpu_jobs, gpu_skipped = benchmark_jobs(tiny_settings(models=("maxvit_tiny_rw_224",), device="cuda"))
    assert not gpu_skipped and {j["impl"] for j in gpu_jobs} == {"alertlib", "btsbot"}


@pytest.mark.parametrize("runner", ["run_isolated", "run_in_process"])
def test_a_failing_job_is_reported_not_lost(runner):
    job = cpu_job("no_such_architecture", batch_sizes=[1, 2])
    rows = getattr(measure, runner)(job)  # in a subprocess, or in this process: the run goes on
    assert [row["status"] for row in rows] == ["error", "error"]
    assert "no_such_architecture" in rows[0]["note"]


def test_channels_last_variant_measured_in_process():
    job = cpu_job("braai_vgg", variant="channels_last", batch_sizes=[4, 2], threads=2, min_repeats=2, max_repeats=2)
    rows = measure.measure_job(job)
    assert [row["batch_size"] for row in rows] == [2, 4]  # increasing, so each peak is its own
    assert all(row["status"] == "ok" and row["alerts_per_s"] > 0 and row["repeats"] == 2 for row in rows)


@pytest.mark.slow
def test_compile_variant_matches_eager_outputs():
    from alertlib.learn.models import create_model

    torch.manual_seed(0)
    model = create_model("braai_vgg").eval()
    alerts = torch.randn(3, 3, 63, 63) / 63
    with torch.inference_mode():
        expected = model(alerts)
        compiled = inference.prepare_for_inference(model, "compile_channels_last")
        got = compiled(alerts.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


# --- choosing the variant for inference, and the conclusions -----------------------------------


def synthetic_table() -> pd.DataFrame:
    """A hand-made table whose ratios are known exactly."""
    rows = []
    for model, variant, rate, memory, params in [
        ("btsbot_cnn", "eager", 100.0, 50.0, 500_000),
        ("btsbot_cnn", "channels_last", 200.0, 60.0, 500_000),
        ("convnext_pico", "eager", 300.0, 40.0, 9_000_000),
        ("convnext_pico", "compile", 500.0, 30.0, 9_000_000),
        ("resnet18", "channels_last", 150.0, 120.0, 11_000_000),
    ]:
        rows.append(
            dict(
                model=model,
                impl="alertlib",
                device="cpu",
                dtype="float32",
                variant=variant,
                batch_size=256,
                alerts_per_s=rate,
                peak_mem_mb=memory,
                params=params,
                macs=1e8,
                limit_fraction=2e8 * rate / 1e11,
                status="ok",
            )
        )
    return pd.DataFrame(rows)


def test_best_inference_variant_reads_the_table():
    table = synthetic_table()
    assert best_inference_variant("convnext_pico", "cpu", table=table) == "compile"
    assert best_inference_variant("convnext_pico", "cpu", table=table, allow_compile=False) == "eager"
    assert best_inference_variant("btsbot_cnn", "cpu", batch_size=200, table=table) == "channels_last"
    assert best_inference_variant("resnet50", "cpu", table=table) == "eager"  # never measured
    assert best_inference_variant("convnext_pico", "cuda", table=table) == "eager"  # not on that device


def test_optimise_for_inference_applies_the_variant():
    from alertlib.learn.models import create_model

    model, dtype, variant = inference.optimise_for_inference(create_model("braai_vgg"), variant="channels_last")
    assert (dtype, variant) == ("float32", "channels_last") and not model.training
    assert model.encoder[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_custom_cnn_ratios_and_limit_goal_table():
    table = synthetic_table().assign(latency_ms=1.0)
    ratios = custom_cnn_ratios(table).set_index("model")
    # Each model's fastest variant against the custom CNN's fastest (channels_last, 200 alerts/s).
    assert ratios.loc["convnext_pico", "speed_ratio"] == pytest.approx(500 / 200)
    assert ratios.loc["convnext_pico", "memory_ratio"] == pytest.approx(30 / 60)
    assert ratios.loc["convnext_pico", "variant"] == "compile"
    assert ratios.loc["resnet18", "speed_ratio"] == pytest.approx(150 / 200)
    summary = custom_cnn_verdicts(ratios.reset_index())[0]
    assert "1 of 2 standard architectures infer faster" in summary and "1 of 2 with less peak memory" in summary
    goals = limit_goal_table(synthetic_table(), threshold=0.9).set_index("model")
    assert goals.loc["convnext_pico", "limit_fraction"] == pytest.approx(1.0)
    assert goals.loc["convnext_pico", "meets_goal"] and not goals.loc["resnet18", "meets_goal"]


# --- command line, profiles, GPU pieces --------------------------------------------------------


def test_profiles_hold_benchmark_settings():
    from alertlib.study.profiles import load_profile

    ci = BenchmarkSettings.from_profile(load_profile("ci"))
    default = BenchmarkSettings.from_profile(load_profile("default"))
    assert ci.device == "cpu" and len(ci.models) <= 2 and max(ci.batch_sizes) <= 16
    assert {"convnext_pico", "resnet18", "btsbot_cnn"} <= set(default.models) and 256 in default.batch_sizes
    with pytest.raises(KeyError, match="unknown benchmark settings"):
        BenchmarkSettings.from_profile({"benchmark": {"batchsize": 3}})


def test_cli_writes_a_table(tmp_path):
    from alertlib.cli import main

    out = tmp_path / "t.csv"
    code = main(
        ["benchmark", "--profile", "ci", "--models", "braai_vgg", "--impls", "alertlib", "--batch-sizes", "2"]
        + ["--variants", "eager", "--out", str(out)]
    )
    assert code == 0
    table = pd.read_csv(out)
    assert len(table) == 1 and table.loc[0, "status"] == "ok" and table.loc[0, "limit_fraction"] > 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without a GPU")
def test_cuda_without_a_gpu_fails_with_instructions():
    with pytest.raises(RuntimeError, match="gpu_benchmark.sh"):
        tiny_settings(device="cuda").validate()


def test_gpu_pieces_without_a_gpu():
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        timing.set_float32_strict("cuda")
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before
    stamp = {**machine_stamp(), "gpu_name": "NVIDIA H100 80GB HBM3"}
    assert tables.default_table_name("cuda", stamp) == "cuda_nvidia-h100-80gb-hbm3.csv"
    assert tables.default_table_name("cpu", {**stamp, "cpu_threads": 2}).endswith("_2t.csv")


def test_committed_tables_are_consistent():
    tables = load_benchmark_tables()
    if tables is None:
        pytest.skip("no benchmark table in data/benchmarks/")
    assert set(ROW_COLUMNS) <= set(tables.columns)
    ok = tables[tables["status"] == "ok"]
    expected = 2 * ok["macs"] * ok["alerts_per_s"] / ok["ceiling_flops"]
    assert ((ok["limit_fraction"] - expected).abs() <= 1e-9 * expected).all()
    assert set(tables["status"]) <= {"ok", "skipped", "oom"}
    assert (ok[["alerts_per_s", "latency_ms", "peak_mem_mb", "params", "macs"]] > 0).all().all()


@pytest.mark.gpu
def test_gpu_benchmark_bfloat16():
    settings = tiny_settings(
        models=("convnext_pico",),
        device="cuda",
        dtypes=("float32", "bfloat16"),
        variants=("channels_last",),
        batch_sizes=(64, 1024),
        threads=None,
        ceiling_sizes=(4096,),
    )
    table = run_benchmark(settings, progress=False)
    assert (table["status"] == "ok").all(), table[["status", "note"]]
    assert (table["peak_mem_mb"] > 0).all() and table["gpu_name"].str.len().gt(0).all()
    ceilings = table.groupby("dtype")["ceiling_flops"].first()
    assert ceilings["bfloat16"] > ceilings["float32"]  # tensor cores vs strict float32
    assert (table["limit_fraction"] > 0).all()


# --- in-process runs and resuming an interrupted run ---------------------------------------------


def test_interrupted_run_resumes_from_its_journal(tmp_path, monkeypatch):
    settings = tiny_settings(models=("braai_vgg", "btsbot_cnn"), impls=("alertlib",), isolate=False)
    out = tmp_path / "table.csv"
    journal = runner.partial_results_path(out)
    jobs, _ = runner.benchmark_jobs(settings)
    # An earlier run finished the first job (with a recognisable rate), then died mid-write.
    marker = [{**row, "alerts_per_s": 12345.0} for row in runner.run_in_process(jobs[0])]
    runner.append_partial_results(journal, runner.job_key(jobs[0]), marker)
    with open(journal, "a") as handle:
        handle.write('{"job": "cut sh')
    measured = []
    real = runner.run_in_process
    monkeypatch.setattr(runner, "run_in_process", lambda job: measured.append(job["model"]) or real(job))

    table = run_benchmark(settings, out=out, progress=False)

    assert measured == ["btsbot_cnn"]  # the finished job was not measured again
    assert set(table.loc[table["model"] == "braai_vgg", "alerts_per_s"]) == {12345.0}
    assert not journal.exists()  # removed once the table is written
    # --fresh (resume=False) measures everything again.
    measured.clear()
    runner.append_partial_results(journal, runner.job_key(jobs[0]), marker)
    run_benchmark(settings, out=out, progress=False, resume=False)
    assert measured == ["braai_vgg", "btsbot_cnn"]


def test_failed_jobs_in_a_journal_run_again(tmp_path):
    journal = tmp_path / "t.csv.partial.jsonl"
    runner.append_partial_results(journal, "a", [{"status": "ok"}])
    runner.append_partial_results(journal, "b", [{"status": "error", "note": "boom"}])
    assert set(runner.read_partial_results(journal)) == {"a"}


def choice_table(cpu_model: str = "Test CPU") -> pd.DataFrame:
    """Rates and first-call times (compilation) of one architecture, in two formats."""
    rows = []
    for dtype, variant, rate, first in [
        ("float32", "eager", 100.0, 0.1),
        ("float32", "channels_last", 150.0, 0.1),
        ("float32", "compile", 200.0, 30.0),
        ("bfloat16", "channels_last", 300.0, 0.2),
        ("bfloat16", "compile", 600.0, 40.0),
    ]:
        rows.append(
            dict(
                model="resnet18",
                impl="alertlib",
                device="cpu",
                dtype=dtype,
                variant=variant,
                batch_size=256,
                alerts_per_s=rate,
                first_call_s=first,
                status="ok",
                cpu_model=cpu_model,
            )
        )
    return pd.DataFrame(rows)


def test_choose_inference_weighs_compilation_against_the_alerts_to_score(monkeypatch):
    monkeypatch.setattr("alertlib.core.provenance.cpu_model", lambda: "Test CPU")
    table = choice_table()
    choose = inference.choose_inference
    # A long-running scorer: the rate alone decides.
    assert choose("resnet18", "cpu", "float32", table=table) == ("float32", "compile")
    assert choose("resnet18", "cpu", "auto", table=table) == ("bfloat16", "compile")
    # 1000 alerts: 30 s of compilation does not pay off (0.1 + 1000/150 < 30 + 1000/200).
    assert choose("resnet18", "cpu", "float32", n_alerts=1000, table=table) == ("float32", "channels_last")
    assert choose("resnet18", "cpu", "auto", n_alerts=1000, table=table) == ("bfloat16", "channels_last")
    # Ten million alerts: it does.
    assert choose("resnet18", "cpu", "auto", n_alerts=10_000_000, table=table) == ("bfloat16", "compile")
    # Never measured: plain float32.
    assert choose("convnext_nano", "cpu", "auto", table=table) == ("float32", "eager")
    # Rows of this very machine win over another machine's.
    other = choice_table("Other CPU").assign(alerts_per_s=lambda t: t["alerts_per_s"][::-1].to_numpy())
    mixed = pd.concat([other, table], ignore_index=True)
    assert choose("resnet18", "cpu", "auto", table=mixed) == ("bfloat16", "compile")
    # Measured only elsewhere: the variant is taken from there, the format stays float32.
    assert choose("resnet18", "cpu", "auto", table=choice_table("Other CPU")) == ("float32", "compile")


def test_score_triplets_formats_agree_and_leave_the_model_alone():
    import numpy as np

    from alertlib.learn.inference import score_triplets
    from alertlib.learn.models import create_model

    torch.manual_seed(0)
    model = create_model("btsbot_cnn").eval()
    model.config, model.class_names = {"normalisation": "l2", "crop": None}, None
    triplets = np.random.default_rng(0).normal(size=(40, 63, 63, 3)).astype(np.float32)
    full, choice = score_triplets(model, triplets, batch_size=16, dtype="float32", variant="eager", return_choice=True)
    assert choice == {"device": "cpu", "dtype": "float32", "variant": "eager"} and full.shape == (40,)
    half = score_triplets(model, triplets, batch_size=16, dtype="bfloat16", variant="channels_last")
    assert np.abs(half - full).max() < 0.02  # bfloat16 keeps 8 bits of mantissa
    assert next(model.parameters()).dtype == torch.float32  # the caller's model is not converted
    again = score_triplets(model, triplets, batch_size=16, dtype="float32", variant="eager")
    np.testing.assert_array_equal(again, full)


def test_limit_goal_table_measures_bfloat16_against_the_float32_rate():
    table = synthetic_table().assign(ceiling_flops=1e11)
    half = table[table["model"] == "resnet18"].assign(dtype="bfloat16", alerts_per_s=400.0, ceiling_flops=1e12)
    half["limit_fraction"] = 2e8 * 400.0 / 1e12
    goals = limit_goal_table(pd.concat([table, half], ignore_index=True), threshold=0.6).set_index(["model", "dtype"])
    row = goals.loc[("resnet18", "bfloat16")]
    assert row["limit_fraction"] == pytest.approx(0.08)  # of its own (bfloat16) rate
    assert row["float32_limit_fraction"] == pytest.approx(0.8) and row["meets_goal"]  # of the float32 rate
    assert not goals.loc[("resnet18", "float32"), "meets_goal"]


def test_custom_cnn_ratios_use_the_batch_size_every_model_has():
    table = synthetic_table().assign(latency_ms=1.0)
    extra = table[table["model"] == "btsbot_cnn"].assign(batch_size=4096, alerts_per_s=1e6)
    ratios = custom_cnn_ratios(pd.concat([table, extra], ignore_index=True))
    assert set(ratios["batch_size"]) == {256} and set(ratios["model"]) == {"convnext_pico", "resnet18"}
    assert tables.common_batch_size(pd.concat([table, extra])) == 256


def test_table_from_journal_completes_an_interrupted_run(tmp_path):
    settings = tiny_settings(models=("braai_vgg", "btsbot_cnn"), impls=("alertlib",), isolate=False)
    jobs, _ = runner.benchmark_jobs(settings)
    journal = tmp_path / "stage.csv.partial.jsonl"
    rows = runner.run_in_process(jobs[0])
    runner.append_partial_results(journal, runner.job_key(jobs[0]), rows)
    reference = run_benchmark(tiny_settings(models=("braai_vgg",), impls=("alertlib",), isolate=False), progress=False)
    table = runner.table_from_journal(settings, journal, reference)
    done = table[table["model"] == "braai_vgg"]
    assert (done["status"] == "ok").all() and done["note"].str.contains("same machine").all()
    assert (done["ceiling_flops"] == reference["ceiling_flops"].max()).all()
    expected = 2 * done["macs"] * done["alerts_per_s"] / done["ceiling_flops"]
    assert (done["limit_fraction"] - expected).abs().max() < 1e-12
    assert done["measured_at"].notna().all() and (done["cpu_model"] == reference["cpu_model"].iloc[0]).all()
    missing = table[table["model"] == "btsbot_cnn"]
    assert (missing["status"] == "skipped").all() and missing["note"].str.contains("not measured").all()


def test_limit_goal_table_of_a_float32_only_table():
    goals = limit_goal_table(synthetic_table().assign(ceiling_flops=1e11), threshold=0.9)
    assert set(goals["dtype"]) == {"float32"} and (goals["float32_limit_fraction"] == goals["limit_fraction"]).all()


def test_the_committed_tables_load_and_other_tables_are_refused(tmp_path):
    """Every CSV directly in data/benchmarks/ is an efficiency table (the decode tables live in
    data/benchmarks/decode/); a table of another kind there is a clear error, not a broken figure."""
    tables = load_benchmark_tables()
    assert tables is not None and tables["device"].notna().all()
    other = tmp_path / "decode.csv"
    pd.DataFrame({"folder": ["ztf"], "fast_alerts_per_s": [3000.0]}).to_csv(other, index=False)
    with pytest.raises(ValueError, match="not an efficiency benchmark table"):
        load_benchmark_tables(other)


def test_decode_table_marks_the_ceiling_goal_for_ztf_avro_only(tmp_path):
    from alertlib.bench.tables import load_decode_tables
    from alertlib.report.efficiency import decode_table

    assert load_decode_tables(tmp_path) is None
    pd.DataFrame(
        {
            "folder": ["ztf", "ztf-brokers", "atlas", "ztf"],
            "fast_alerts_per_s": [3000.0, 3000.0, 5000.0, 2500.0],
            "ceiling_fraction": [0.6, 0.4, 0.7, None],
        }
    ).to_csv(tmp_path / "new.csv", index=False)
    pd.DataFrame({"folder": ["ztf"], "astropy_alerts_per_s": [200.0]}).to_csv(tmp_path / "ablation.csv", index=False)
    table = decode_table(load_decode_tables(tmp_path))
    assert list(table["table"]) == ["new.csv"] * 4  # the ablation table has no fast-decoder rate
    assert list(table["meets_ceiling_goal"]) == [True, False, None, None]
    assert table["workers_speedup"].isna().all()  # a column the table lacks is there, empty


def test_an_isolated_job_reports_its_own_peak_not_its_parents():
    """Linux carries getrusage's ru_maxrss across fork and exec: a worker started by a process that
    holds 800 MB reported 800 MB for every model. The peak must be the worker's own."""
    import numpy as np

    held = np.ones(800 * 2**20 // 8)  # 800 MB resident in this (the parent) process
    (row,) = measure.run_isolated(cpu_job("btsbot_cnn"))
    assert held.sum() > 0 and row["status"] == "ok"
    assert row["peak_mem_mb"] < 400, row["peak_mem_mb"]
