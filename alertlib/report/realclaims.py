"""The study's claims asked again on real alerts, and set beside what the simulated sky says.

Each primary contrast of the profile (``claims.primary``: treatment against baseline) is measured
twice more on the real weak-labelled alerts (notebook 04):

- *zero-shot*: the two simulated-sky models' scores on the same real alerts of the evaluation part,
  transient against variable star and AGN; the ROC AUC difference paired by replicate, with the
  hierarchical bootstrap (replicates, then objects) of :mod:`alertlib.report.intervals`;
- *few-shot* (for contrasts between initialisations of the few-shot architecture): the paired
  differences of :func:`alertlib.study.realdata.fewshot_curves` at the smallest and largest k.

:func:`evidence_table` then says, claim by claim, what the simulated sky shows, what the real
alerts show, and whether they agree. A direction counts only when its interval excludes zero
(Holm-adjusted for the simulated primary contrasts); otherwise it is "inconclusive".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alertlib.report.intervals import hierarchical_bootstrap


def _side(spec: dict) -> tuple[str, str]:
    return spec["arch"], spec["init"]


def zero_shot_contrasts(scored: pd.DataFrame, contrasts: list[dict], n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Each contrast's ROC AUC difference on the real evaluation alerts (zero-shot, paired by seed)."""
    binary = scored[(scored["task"] == "bts") & scored["label"].isin([0, 1]) & scored["evaluation"].astype(bool)]
    rows = []
    for contrast in contrasts:
        (t_arch, t_init), (b_arch, b_init) = _side(contrast["treatment"]), _side(contrast["baseline"])
        treatment = binary[(binary["arch"] == t_arch) & (binary["init"] == t_init)]
        baseline = binary[(binary["arch"] == b_arch) & (binary["init"] == b_init)]
        replicates = []
        for seed_value in sorted(set(treatment["seed"]) & set(baseline["seed"])):
            pair = treatment[treatment["seed"] == seed_value].merge(
                baseline[baseline["seed"] == seed_value][["candid", "score"]], on="candid", suffixes=("", "_baseline")
            )
            replicates.append(
                pd.DataFrame(
                    {
                        "label": pair["label"],
                        "group": pair["objectId"],
                        "treatment": pair["score"],
                        "baseline": pair["score_baseline"],
                    }
                )
            )
        row = {"name": contrast["name"], "evidence": "real, zero-shot", "n_replicates": len(replicates)}
        if replicates:
            interval = hierarchical_bootstrap(replicates, "roc_auc", n_boot=n_boot, seed=seed)
            row |= {
                "difference": interval.estimate,
                "ci_low": interval.low,
                "ci_high": interval.high,
                "p_value": interval.p_value,
            }
        rows.append(row)
    return pd.DataFrame(rows)


def fewshot_contrasts(differences: pd.DataFrame, contrasts: list[dict], arch: str) -> pd.DataFrame:
    """The few-shot paired differences for the contrasts between two initialisations of ``arch``
    against scratch, at the smallest and the largest k."""
    rows = []
    if differences is None or differences.empty:
        return pd.DataFrame(rows)
    for contrast in contrasts:
        (t_arch, t_init), (b_arch, b_init) = _side(contrast["treatment"]), _side(contrast["baseline"])
        if not (t_arch == b_arch == arch and b_init == "scratch"):
            continue
        own = differences[differences["init"] == t_init].sort_values("k")
        for _, row in own.iloc[[0, -1]].drop_duplicates("k").iterrows() if len(own) else []:
            rows.append(
                {
                    "name": contrast["name"],
                    "evidence": f"real, few-shot k={int(row['k'])}",
                    "n_replicates": int(row["repetitions"]),
                    "difference": row["difference"],
                    "ci_low": row["ci_low"],
                    "ci_high": row["ci_high"],
                    "p_value": row["p_value"],
                }
            )
    return pd.DataFrame(rows)


def direction(low: float, high: float) -> str:
    """``better``, ``worse`` or ``inconclusive`` from an interval of treatment minus baseline."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return "not measured"
    if low > 0:
        return "better"
    if high < 0:
        return "worse"
    return "inconclusive"


def evidence_table(primary: pd.DataFrame, real: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Claim by claim: the simulated sky's verdict (Holm-adjusted), each piece of real evidence, and
    whether the two agree (both the same direction), disagree (opposite directions), are
    inconclusive (one of them is) or are not compared (nothing measured on real alerts)."""
    rows = []
    for _, claim in primary.iterrows():
        significant = np.isfinite(claim["p_holm"]) and claim["p_holm"] < alpha
        simulated = direction(claim["ci_low"], claim["ci_high"]) if significant else "inconclusive"
        base = {
            "claim": claim["name"],
            "metric": claim["metric"],
            "simulated": simulated,
            "simulated_difference": claim["difference"],
        }
        evidence = real[real["name"] == claim["name"]] if len(real) else real
        if evidence is None or evidence.empty:
            rows.append(base | {"evidence": "real: not measured", "real": "not measured", "agreement": "not compared"})
            continue
        for _, item in evidence.iterrows():
            observed = direction(item.get("ci_low", np.nan), item.get("ci_high", np.nan))
            if observed == "not measured":  # e.g. image + metadata models, which are not transferred
                agreement = "not compared"
            elif "inconclusive" in (simulated, observed):
                agreement = "inconclusive"
            else:
                agreement = "agree" if simulated == observed else "disagree"
            rows.append(
                base
                | {
                    "evidence": item["evidence"],
                    "real": observed,
                    "real_difference": item.get("difference", np.nan),
                    "real_ci_low": item.get("ci_low", np.nan),
                    "real_ci_high": item.get("ci_high", np.nan),
                    "agreement": agreement,
                }
            )
    return pd.DataFrame(rows)


def evidence_sentences(table: pd.DataFrame, decimals: int = 3) -> list[str]:
    """One sentence per claim and piece of evidence, generated from the numbers."""
    sentences = []
    for _, row in table.iterrows():
        real = row.get("real_difference", np.nan)
        numbers = (
            f" ({real:+.{decimals}f} [{row['real_ci_low']:+.{decimals}f}, {row['real_ci_high']:+.{decimals}f}])"
            if np.isfinite(real)
            else ""
        )
        sentences.append(
            f"{row['claim']}: simulated sky {row['simulated']}; {row['evidence']} {row['real']}{numbers}: {row['agreement']}."
        )
    return sentences
