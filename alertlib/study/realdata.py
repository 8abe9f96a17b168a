"""Real labelled BTS triplets scored by the study's models (notebook 05).

The models were trained on the simulated sky only; here they score the real sample in
``../shared/data`` (or a copy of the release), beside the scores of the authors' production BTSbot
where the data carry them. The labelled real rows are far too few to train on: they are used to show
and score, never to tune.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def _real_datasets(release: Path, example: Path | None) -> list[tuple[str, np.ndarray, pd.DataFrame]]:
    """The real labelled triplets to score: every split of a release-layout folder, and BTSbot's example."""
    from alertlib.core.vocab import SPLITS
    from alertlib.io.release import read_split

    sets = []
    for split in SPLITS:
        data = read_split(release, split)
        sets.append((f"{release.name}/{split}", np.asarray(data.triplets), data.candidates))
    triplets_file = example / "btsbot-example_usage_triplets.npy" if example else None
    if triplets_file is not None and triplets_file.is_file():
        candidates = pd.read_csv(example / "btsbot-example_usage_candidates.csv")
        sets.append(("btsbot-example", np.load(triplets_file), candidates))
    return sets


def score_real_alerts(results: pd.DataFrame, release: str | Path, example: str | Path | None = None) -> pd.DataFrame:
    """Score real labelled BTS triplets with the fine-tuned BTS models in ``results`` (all sources, first seed).

    ``results`` is the ``finetune`` artefact (:func:`alertlib.study.stages.load_finetune`). Returns one row per (alert, model): dataset,
    objectId, candid, label, arch, init, score, ``inference`` (device/format/variant used,
    :func:`alertlib.learn.finetune.score_triplets`), and ``btsbot_score`` (the authors' production model)
    where the data carry it.
    """
    from alertlib.learn.inference import load_model, score_triplets

    runs = results.drop_duplicates("run_id")
    runs = runs[(runs["task"] == "bts") & (runs["train_fraction"] == 1.0)]
    runs = runs[runs["seed"] == runs["seed"].min()]
    datasets = _real_datasets(Path(release), Path(example) if example else None)
    rows = []
    for _, run in runs.iterrows():
        model = load_model(Path(run["run_dir"]) / "model.pt")
        for name, triplets, candidates in datasets:
            frame = candidates[["objectId", "candid", "label"]].copy()
            frame["btsbot_score"] = candidates["expected_scores"] if "expected_scores" in candidates else np.nan
            scores, choice = score_triplets(model, triplets, return_choice=True)
            rows.append(
                frame.assign(
                    dataset=name,
                    arch=run["arch"],
                    init=run["init"],
                    score=scores,
                    inference=f"{choice['device']}/{choice['dtype']}/{choice['variant']}",
                )
            )
    return pd.concat(rows, ignore_index=True)


def real_score_summary(scored: pd.DataFrame) -> pd.DataFrame:
    """Per model: alerts scored, mean score of real BTS trues and of the rest, ROC AUC, and agreement
    (Spearman) with the authors' production scores where present."""
    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score

    rows = []
    for (arch, init), group in scored.groupby(["arch", "init"], sort=False):
        with_btsbot = group.dropna(subset=["btsbot_score"])
        rows.append(
            {
                "arch": arch,
                "init": init,
                "n_alerts": len(group),
                "mean_score_label1": group.loc[group["label"] == 1, "score"].mean(),
                "mean_score_label0": group.loc[group["label"] == 0, "score"].mean(),
                "roc_auc": roc_auc_score(group["label"], group["score"]) if group["label"].nunique() == 2 else np.nan,
                "spearman_vs_btsbot": spearmanr(with_btsbot["score"], with_btsbot["btsbot_score"]).statistic
                if len(with_btsbot) > 2
                else np.nan,
            }
        )
    return pd.DataFrame(rows)


def real_examples_for_figure(release: str | Path, scored: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The release sample's triplets, labels, and each alert's mean score over the models that scored it."""
    sets = _real_datasets(Path(release), None)
    triplets = np.concatenate([t for _, t, _ in sets])
    candidates = pd.concat([c for _, _, c in sets], ignore_index=True)
    mean_scores = scored.groupby("candid")["score"].mean()
    return triplets, candidates["label"].to_numpy(), candidates["candid"].map(mean_scores).to_numpy()
