"""The study on real alerts (notebook 06): the real weak-labelled set, zero-shot transfer of the
simulated-sky models, and few-shot fine-tuning on real alerts by initialisation.

The real set (:mod:`alertlib.io.realset`) is every ZTF alert of the shared real data with a weak
label. Its **evaluation part** is the alerts from folders that never served to calibrate or develop
the simulated sky (:data:`EVALUATION_ORIGINS`: Fink's cross-matched filter test sets and the BTS
samples); the rest is the **development part**. Zero-shot numbers are reported on the evaluation
part (and, for transparency, on the development part beside it).

- *Zero-shot*: every simulated-sky model of notebook 02 (BTS task, all training sources, the chosen
  learning rate, passing the validation gate) scores the real alerts; the ROC AUC of extragalactic
  transients against variable stars and AGN, averaged over replicates, with an interval that
  resamples replicates and then objects (:func:`alertlib.report.intervals.bootstrap_metric`).
- *Few-shot*: ResNet-18 fine-tuned on k labelled real objects per class (transient; variable star or
  AGN) from each initialisation, tested on every other labelled object, over repeated object-grouped
  splits shared by all initialisations (:mod:`alertlib.learn.fewshot`).
- *BTS samples*: the real labelled BTS triplets scored beside BTSbot's own production scores.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from alertlib.core.files import write_table
from alertlib.core.paths import data_dir, real_data_path
from alertlib.study import artefacts

EVALUATION_ORIGINS = ("fink-ztf-crossmatched", "zenodo-v10-layout", "btsbot-example")
REAL_PACKET_FOLDER = "alert-packets"
BTS_SAMPLE_FOLDERS = ("bts_release_sample", "bts_btsbot_example")
# The simulated sky's classes as the real set's coarse classes.
SIM_TO_REAL = {
    "sn": "transient",
    "nuclear": "transient",
    "agn": "agn",
    "varstar": "varstar",
    "asteroid": "asteroid",
    "bogus": "bogus",
}


@dataclass
class RealAlerts:
    """The real weak-labelled set: triplets and candidate rows (with ``evaluation`` marking held-out alerts)."""

    triplets: np.ndarray
    candidates: pd.DataFrame
    folder: Path


def evaluation_part(candidates: pd.DataFrame) -> np.ndarray:
    """Which alerts belong to the held-out evaluation part (see the module docstring)."""
    origin = candidates["origin"].astype(str)
    return origin.map(lambda o: o.split("/")[0] in EVALUATION_ORIGINS).to_numpy()


def real_alerts(progress_bar: bool = False) -> RealAlerts | None:
    """The real weak-labelled set, built once from the shared data into ``data/real/weak``; None when
    the shared data is absent."""
    from alertlib.io.realset import build_real_set, write_real_set
    from alertlib.io.release import read_split

    packets = real_data_path("ztf_packets")
    if packets is None:
        return None
    packet_root = packets.parent
    bts = [path for name in BTS_SAMPLE_FOLDERS if (path := real_data_path(name)) is not None]
    folder = data_dir() / "real" / "weak"
    inputs = {"packets": _files_key([packet_root, *bts]), "labels": _mapping_key()}
    marker = folder / "dataset.json"
    if not artefacts.is_current(marker, inputs):
        write_real_set(build_real_set([packet_root], bts, progress=progress_bar), folder)
        artefacts.record_inputs(marker, inputs)
    split = read_split(folder, "test", mmap=False)
    candidates = split.candidates.copy()  # one block: the release's many columns arrive fragmented
    candidates["evaluation"] = evaluation_part(candidates)
    return RealAlerts(np.asarray(split.triplets), candidates, folder)


def _files_key(folders: list[Path]) -> str:
    files = sorted((str(p), p.stat().st_size) for folder in folders for p in folder.rglob("*") if p.is_file())
    return artefacts.inputs_key({"files": files})


def _mapping_key() -> str:
    from alertlib.io.weaklabels import WEAK_LABELS_TABLE

    return artefacts.inputs_key({"table": WEAK_LABELS_TABLE.read_text()})


# --- zero-shot ---------------------------------------------------------------------------------------


def transfer_runs(results: pd.DataFrame) -> pd.DataFrame:
    """One row per simulated-sky run that zero-shot transfer scores: the chosen learning rate, all
    training sources, passing the validation gate (BTS task), and the multi-class runs.

    Image + metadata runs (``<arch>+meta``) are not transferred: the sky's metadata features are our
    measurement model, not calibrated on real candidates, and many real packets lack a feature
    (packets of 2018 carry no ``drb``), so such a score would say nothing about transfer of what the
    images teach; they are reported on the simulated sky only."""
    wide = results.pivot_table(index="run_id", columns="metric", values="value", aggfunc="first")
    runs = results.drop_duplicates("run_id").set_index("run_id")
    if "lr_selected" in runs.columns:
        runs = runs[runs["lr_selected"].astype(bool)]
    passed = wide.get("gate_passed", pd.Series(1.0, index=wide.index)).reindex(runs.index).fillna(0) > 0
    image_only = ~runs["arch"].astype(str).str.contains("+", regex=False)
    keep = (runs["train_fraction"] == 1.0) & ((runs["task"] == "multiclass") | passed) & image_only
    return runs[keep].reset_index()


def score_real_alerts(results: pd.DataFrame, real: RealAlerts) -> pd.DataFrame:
    """Scores of every real alert under every transfer run: one row per (alert, run), with the
    alert's weak label, class, label source and evaluation flag; multi-class runs add ``prob_<class>``."""
    from alertlib.learn.inference import load_model, score_triplets

    base = real.candidates[["objectId", "candid", "label", "alert_class", "label_source", "evaluation", "origin"]]
    rows = []
    for _, run in transfer_runs(results).iterrows():
        model = load_model(Path(run["run_dir"]) / "model.pt")
        scores = score_triplets(model, real.triplets, dtype="float32")
        frame = base.assign(
            run_id=run["run_id"], task=run["task"], arch=run["arch"], init=run["init"], seed=run["seed"]
        )
        if model.class_names:
            for index, name in enumerate(model.class_names):
                frame[f"prob_{name}"] = scores[:, index]
            frame["score"] = scores.max(axis=1)
            frame["predicted"] = np.asarray(model.class_names)[scores.argmax(axis=1)]
        else:
            frame["score"] = scores
        rows.append(frame)
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def zero_shot_table(scored: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per (arch, init) and part (evaluation, development): ROC AUC of transients against variable
    stars and AGN, the mean over replicates with an interval resampling replicates and objects."""
    from alertlib.report.intervals import bootstrap_metric

    binary = scored[(scored["task"] == "bts") & scored["label"].isin([0, 1])]
    rows = []
    for (arch, init, part), group in binary.groupby(["arch", "init", "evaluation"], sort=False):
        replicates = [
            run.rename(columns={"objectId": "group"})[["label", "group", "score"]] for _, run in group.groupby("seed")
        ]
        interval = bootstrap_metric(replicates, "roc_auc", n_boot=n_boot, seed=seed)
        first = group[group["seed"] == group["seed"].min()]
        rows.append(
            {
                "arch": arch,
                "init": init,
                "part": "evaluation" if part else "development",
                "replicates": interval.n,
                "transient_objects": first.loc[first["label"] == 1, "objectId"].nunique(),
                "variable_or_agn_objects": first.loc[first["label"] == 0, "objectId"].nunique(),
                "roc_auc": interval.estimate,
                "ci_low": interval.low,
                "ci_high": interval.high,
                "p_not_above_chance": interval.p_value,
            }
        )
    return pd.DataFrame(rows)


def class_confusion(scored: pd.DataFrame) -> pd.DataFrame:
    """How the multi-class simulated-sky models call real alerts: per real class, the fraction
    predicted as each simulated class (labelled classes only, all runs together)."""
    multiclass = scored[(scored["task"] == "multiclass") & (scored["alert_class"] != "unlabelled")]
    if multiclass.empty:
        return pd.DataFrame()
    table = pd.crosstab(multiclass["alert_class"], multiclass["predicted"], normalize="index")
    table.columns = [f"called_{c}" for c in table.columns]
    return table.assign(alerts=multiclass.groupby("alert_class").size()).reset_index()


# --- few-shot ------------------------------------------------------------------------------------------


def fewshot_encoders(profile: dict, results: pd.DataFrame, pretrain_results: pd.DataFrame) -> dict[str, str | None]:
    """The encoder of each few-shot initialisation: ``scratch`` (None), every pre-training of the
    few-shot architecture (notebook 01), and ``sim_alerts``: the encoder of that architecture trained
    from scratch on the simulated sky's multi-class task (notebook 02), saved as a checkpoint."""
    from alertlib.learn.inference import load_model
    from alertlib.learn.models import save_encoder_checkpoint
    from alertlib.study.grid import checkpoints_of

    block = profile["fewshot"]
    arch = block["arch"]
    encoders: dict[str, str | None] = {"scratch": None}
    if len(pretrain_results):
        encoders |= {init: path for (a, init), path in checkpoints_of(pretrain_results).items() if a == arch}
    runs = transfer_runs(results)
    sim = runs[
        (runs["arch"] == arch)
        & (runs["init"] == "scratch")
        & (runs["task"] == block.get("sim_alerts_task", "multiclass"))
    ]
    if len(sim):
        run = sim.sort_values("seed").iloc[0]
        path = artefacts.results_dir(profile) / "fewshot" / "sim_alerts_encoder.pt"
        if not path.is_file():
            model = load_model(Path(run["run_dir"]) / "model.pt")
            save_encoder_checkpoint(
                model, path, {"pretrain_init": "sim_alerts", "run_id": run["run_id"], "task": run["task"]}
            )
        encoders["sim_alerts"] = str(path)
    wanted = block.get("inits")
    return {init: path for init, path in encoders.items() if wanted is None or init in wanted}


def _fewshot_config(
    profile: dict, folder: Path, init: str, checkpoint: str | None, lr: float | None, seed: int
) -> dict:
    from alertlib.learn.finetune import full_config

    block = profile["fewshot"]
    settings = {
        k: v
        for k, v in block.items()
        if k not in ("arch", "inits", "ks", "repetitions", "min_test_objects", "sim_alerts_task")
    }
    return full_config(
        {
            **settings,
            "data": str(folder),
            "arch": block["arch"],
            "init": init,
            "checkpoint": checkpoint,
            "lr": lr,
            "seed": seed,
            "patience": int(settings.get("epochs", 10)) + 1,  # no validation split: train for the full budget
        }
    )


def _split_of(real: RealAlerts, rows: np.ndarray, labels: np.ndarray):
    from alertlib.io.release import Split

    return Split(
        real.triplets[rows], real.candidates.iloc[rows].assign(label=labels[rows]).reset_index(drop=True), "weak", None
    )


def fewshot(profile: dict, real: RealAlerts, encoders: dict[str, str | None], rates: dict[str, float]) -> pd.DataFrame:
    """Few-shot fine-tuning on real alerts: one row per (init, k, repetition) with the test metrics.

    Finished rows are read back from ``fewshot/results.parquet`` (a stopped study resumes).
    """
    from tqdm.auto import tqdm

    from alertlib.core import progress
    from alertlib.learn.fewshot import object_splits
    from alertlib.learn.finetune import fit_and_evaluate

    block = profile["fewshot"]
    labelled = np.flatnonzero(real.candidates["label"].isin([0, 1]).to_numpy())
    candidates = real.candidates.iloc[labelled].reset_index(drop=True)
    splits = object_splits(
        candidates, block["ks"], block["repetitions"], profile.get("seed", 0), "label", block.get("min_test_objects", 5)
    )
    path = artefacts.results_dir(profile) / "fewshot" / "results.parquet"
    done = pd.read_parquet(path) if path.is_file() else pd.DataFrame(columns=["key"])
    rows = done.to_dict("records")
    finished = set(done["key"])
    labels = real.candidates["label"].to_numpy().astype(int)
    jobs = [(init, split) for init in encoders for split in splits]
    for index, (init, split) in enumerate(tqdm(jobs, desc="few-shot", unit="run"), start=1):
        config = _fewshot_config(profile, real.folder, init, encoders[init], rates.get(init), split.repetition)
        key = artefacts.inputs_key({"config": config, "k": split.k, "rep": split.repetition, "set": str(real.folder)})
        if key in finished:
            continue
        train_rows, test_rows = labelled[split.train], labelled[split.test]
        data = {"train": _split_of(real, train_rows, labels), "test": _split_of(real, test_rows, labels)}
        data["val"] = data["train"]  # too few objects to hold some out: the full budget is trained
        with progress.job("fewshot", index, len(jobs), f"{init} k={split.k} rep {split.repetition}"):
            outcome = fit_and_evaluate(config, data, gate=False)
        rows.append(
            {
                "key": key,
                "init": init,
                "k": split.k,
                "repetition": split.repetition,
                "train_alerts": len(train_rows),
                "test_alerts": len(test_rows),
                "test_objects": int(candidates.iloc[split.test]["objectId"].nunique()),
                "learning_rate": outcome.values["learning_rate"],
                "roc_auc": outcome.values["roc_auc"],
                "balanced_accuracy": outcome.values.get("balanced_accuracy", np.nan),
            }
        )
        write_table(path, pd.DataFrame(rows))
    return pd.DataFrame(rows)


def fewshot_curves(table: pd.DataFrame, reference: str = "scratch") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Learning curves (mean ROC AUC per init and k with the corrected resampled t interval) and the
    paired difference of every init against ``reference`` at each k (same splits)."""
    from alertlib.learn.fewshot import corrected_t_interval

    curves, differences = [], []
    for (init, k), group in table.groupby(["init", "k"], sort=True):
        n_train, n_test = group["train_alerts"].mean(), group["test_alerts"].mean()
        mean, low, high, _ = corrected_t_interval(group["roc_auc"], n_train, n_test, bounds=(0.0, 1.0))
        curves.append(
            {"init": init, "k": k, "repetitions": len(group), "roc_auc": mean, "ci_low": low, "ci_high": high}
        )
        base = table[(table["init"] == reference) & (table["k"] == k)].set_index("repetition")["roc_auc"]
        if init == reference or base.empty:
            continue
        paired = group.set_index("repetition")["roc_auc"] - base
        mean, low, high, p = corrected_t_interval(paired.dropna(), n_train, n_test, bounds=(-1.0, 1.0))
        differences.append(
            {
                "init": init,
                "reference": reference,
                "k": k,
                "repetitions": int(paired.notna().sum()),
                "difference": mean,
                "ci_low": low,
                "ci_high": high,
                "p_value": p,
            }
        )
    return pd.DataFrame(curves), pd.DataFrame(differences)


# --- the BTS samples ------------------------------------------------------------------------------------


def bts_sample_scores(scored: pd.DataFrame) -> pd.DataFrame:
    """The real BTS samples' alerts under each BTS model (mean over replicates), beside BTSbot's score."""
    bts = scored[(scored["task"] == "bts") & scored["origin"].str.startswith(("zenodo-v10-layout", "btsbot-example"))]
    if bts.empty:
        return pd.DataFrame()
    table = bts.pivot_table(
        index=["origin", "objectId", "candid", "alert_class"], columns=["arch", "init"], values="score"
    )
    return table.round(3)


def fewshot_rates(profile: dict, lr_choice: pd.DataFrame) -> dict[str, float]:
    """The learning rate of each few-shot initialisation: the one the simulated-sky sweep chose for
    the same (arch, init), where there is one (other inits take the default of their family)."""
    arch = profile["fewshot"]["arch"]
    if lr_choice is None or lr_choice.empty:
        return {}
    chosen = lr_choice[lr_choice["chosen"].astype(bool) & (lr_choice["arch"] == arch)]
    return dict(zip(chosen["init"], chosen["learning_rate"].astype(float), strict=True))


def _real_inputs(profile: dict, results: pd.DataFrame) -> dict:
    return {
        "finetune_runs": sorted(results["run_id"].unique()),
        "fewshot": profile.get("fewshot"),
        "realism": profile.get("realism"),
        "labels": _mapping_key(),
    }


def write_real(profile: dict, results: pd.DataFrame, tables: dict[str, pd.DataFrame], summary: dict) -> None:
    """Write the ``real`` artefact of notebook 04: its tables, then ``real/summary.json`` with the inputs."""
    from alertlib.core.files import write_json

    for name, table in tables.items():
        write_table(artefacts.artefact_path(profile, name), table)
    path = artefacts.artefact_path(profile, "real")
    write_json(path, summary)
    artefacts.record_inputs(path, _real_inputs(profile, results))


def load_real(profile: dict, results: pd.DataFrame) -> tuple[dict, dict[str, pd.DataFrame]]:
    """The ``real`` artefact of notebook 04: (summary, tables by name; absent tables are empty)."""
    path = artefacts.require(profile, "real", _real_inputs(profile, results))
    tables = {}
    for name in (
        "zero_shot",
        "class_confusion",
        "fewshot_curves",
        "fewshot_differences",
        "realism_by_set",
        "real_scores",
    ):
        table_path = artefacts.artefact_path(profile, name)
        tables[name] = pd.read_parquet(table_path) if table_path.is_file() else pd.DataFrame()
    return json.loads(path.read_text()), tables
