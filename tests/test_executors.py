"""Where the grid's jobs run: in process, through submitit's local executor, or on SLURM."""

from __future__ import annotations

import json

import pytest

from alertlib.core.errors import SettingError
from alertlib.study import executors, grid
from alertlib.study.executors import ExecutorSettings, JobFailed

TINY = {
    "corpus": "synthetic",
    "arch": "btsbot_cnn",
    "n_classes": 2,
    "n_per_class": 4,
    "n_val_per_class": 2,
    "image_size": 16,
    "epochs": 1,
    "batch_size": 4,
    "augment": False,
}


def _submitit_local(tmp_path) -> ExecutorSettings:
    return ExecutorSettings(name="submitit-local", timeout_min=10, poll_s=0.2, folder=str(tmp_path / "logs"))


def _events(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.slow
def test_submitit_local_runs_two_jobs_in_parallel_and_a_resubmission_submits_nothing(tmp_path, monkeypatch):
    progress_file = tmp_path / "progress.jsonl"
    monkeypatch.setenv("ALERTLIB_PROGRESS_FILE", str(progress_file))  # the worker processes inherit it
    configs = [{**TINY, "seed": 0}, {**TINY, "seed": 1}]
    settings = _submitit_local(tmp_path)

    results = grid.run_jobs("pretrain", configs, tmp_path / "study", progress_bar=False, executor=settings)

    assert list(results.drop_duplicates("run_id")["seed"]) == [0, 1]  # the order of the configs
    run_dirs = list(results["run_dir"].unique())
    assert len(run_dirs) == 2 and all((tmp_path / "study" / "pretrain").joinpath(d).is_dir() for d in run_dirs)
    events = _events(progress_file)
    starts = {e["job"]: e["time"] for e in events if e["kind"] == "job_start"}
    ends = {e["job"]: e["time"] for e in events if e["kind"] == "job_end"}
    assert len(starts) == len(ends) == 2
    assert max(starts.values()) < min(ends.values()), "the two jobs did not run at the same time"

    def no_submission(*args, **kwargs):
        raise AssertionError("a finished job was submitted again")

    monkeypatch.setattr(executors, "submit_jobs", no_submission)
    again = grid.run_jobs("pretrain", configs, tmp_path / "study", progress_bar=False, executor=settings)
    assert again.equals(results)
    # The in-process path reads the same runs back.
    local = grid.run_jobs("pretrain", configs, tmp_path / "study", progress_bar=False, executor="local")
    assert local.equals(results)


@pytest.mark.slow
def test_a_failed_job_names_its_folder_and_log(tmp_path):
    broken = {**TINY, "corpus": "gz1", "catalog": str(tmp_path / "no-such-folder"), "pretrain_init": "galaxy_gz1"}
    with pytest.raises(JobFailed) as raised:
        grid.run_jobs("pretrain", [broken], tmp_path / "study", progress_bar=False, executor=_submitit_local(tmp_path))
    message = str(raised.value)
    assert "1 of 1 pretrain job(s) failed" in message and "DataNotFound" in message  # the worker's error
    assert str(tmp_path / "study" / "pretrain" / "gz1_btsbot_cnn_galaxy_gz1") in message
    assert "submitit's log: " + str(tmp_path / "logs") in message and "_log.err" in message


def test_executor_is_chosen_by_argument_then_environment_then_profile(monkeypatch):
    monkeypatch.setenv(executors.EXECUTOR_ENV, "")  # (restored after the test: export_settings sets them)
    monkeypatch.setenv(executors.EXECUTOR_SETTINGS_ENV, "")
    assert executors.resolve_executor().name == "local"
    profile = {"executor": {"name": "slurm", "partition": "gpu", "gpus_per_node": 1, "slurm_account": "astro"}}
    settings = executors.settings_from_profile(profile)
    assert (settings.name, settings.partition, settings.slurm) == ("slurm", "gpu", {"account": "astro"})
    assert ExecutorSettings.from_block(settings.to_block()) == settings
    executors.export_settings(executors.settings_from_profile(profile, "submitit-local"))
    chosen = executors.resolve_executor()
    assert (chosen.name, chosen.partition, chosen.gpus_per_node) == ("submitit-local", "gpu", 1)
    monkeypatch.setenv(executors.EXECUTOR_ENV, "slurm")
    assert executors.resolve_executor().name == "slurm"
    assert executors.resolve_executor("local").name == "local"
    with pytest.raises(SettingError, match="not one of"):
        executors.resolve_executor("kubernetes")
    with pytest.raises(SettingError, match="unknown executor setting"):
        ExecutorSettings.from_block({"name": "slurm", "partitions": "gpu"})


def test_slurm_executor_gets_the_profiles_partition_time_and_gpus(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "")
    with pytest.raises(SettingError, match="login node"):
        executors._submitit_executor(ExecutorSettings(name="slurm"), "finetune", tmp_path)
    fake_slurm = tmp_path / "bin"
    fake_slurm.mkdir()
    (fake_slurm / "srun").write_text("#!/bin/sh\n")
    (fake_slurm / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", str(fake_slurm))  # submitit looks for srun; nothing is submitted
    settings = ExecutorSettings.from_block(
        {
            "name": "slurm",
            "partition": "gpu",
            "timeout_min": 90,
            "gpus_per_node": 1,
            "cpus_per_task": 8,
            "array_parallelism": 16,
            "slurm_account": "astro",
        }
    )
    executor = executors._submitit_executor(settings, "finetune", tmp_path)
    parameters = executor._executor.parameters
    assert parameters["partition"] == "gpu" and parameters["time"] == 90
    assert parameters["gpus_per_node"] == 1 and parameters["cpus_per_task"] == 8
    assert parameters["array_parallelism"] == 16 and parameters["account"] == "astro"
    assert executor.folder == (tmp_path / "submitit" / "finetune").resolve()


def test_study_command_passes_the_executor_to_the_notebooks(monkeypatch):
    from alertlib import cli
    from alertlib.study import runner

    seen = {}
    monkeypatch.setenv(executors.EXECUTOR_ENV, "")  # (restored after the test: export_settings sets them)
    monkeypatch.setenv(executors.EXECUTOR_SETTINGS_ENV, "")
    monkeypatch.setattr(runner, "run_study", lambda *args: seen.update(executors.resolve_executor().to_block()))
    assert cli.main(["study", "--profile", "ci", "--executor", "submitit-local"]) == 0
    assert seen["name"] == "submitit-local"
    with pytest.raises(SystemExit):
        cli.main(["study", "--profile", "ci", "--executor", "kubernetes"])
