"""Clinical severity scores used directly as risk scores (family ``"score"`` of the leaderboard).

A score is not a probability: it is mapped onto [0, 1] by the fixed, increasing map
``(score - lo) / (hi - lo)`` with ``[lo, hi]`` the column's valid range in the schema. The map is the same for
every split and cohort, so AUPRC, AUROC and best F1/F2 are those of the raw score, and a threshold chosen on
the validation split transfers unchanged to test and external rows. A score is points, not a probability: the
calibration metrics (Brier, ECE, O:E, calibration intercept and slope) do not apply and are left out. Rows where a
score is missing are left out of that score's metrics (``n`` says how many rows were scored).

The scores are the columns a data set's schema labels (``Column(..., label="SAPS II")``), reference columns
included (they are scored here and nowhere else); a schema without labelled columns has none.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alfia.cohorts import ID, SPLIT, Cohort
from alfia.errors import AlfiaError
from alfia.evaluation.metrics import choose_threshold, evaluate


def scaled_score(cohort: Cohort, column: str, df: pd.DataFrame | None = None) -> pd.Series:
    """The score mapped onto [0, 1] with the schema's valid range (NaN where the score is missing)."""
    col = cohort.schema[column]
    if col.valid is None:
        raise AlfiaError(f"score column {column!r} has no valid range in schema {cohort.schema.name!r}")
    lo, hi = col.valid
    values = (cohort.df if df is None else df)[column].astype("float64")
    return ((values - lo) / (hi - lo)).clip(0.0, 1.0)


def evaluate_score(y: np.ndarray, p: np.ndarray, threshold: float | None = None, n_boot: int = 1000,
                   seed: int = 42) -> dict:
    """``evaluate`` without the calibration metrics (Brier, ECE, O:E, calibration intercept and slope), which do
    not apply to a score."""
    return evaluate(y, p, threshold=threshold, n_boot=n_boot, seed=seed, calibration=False)


def score_severity(dev: Cohort, external: Cohort | None = None, *, n_boot: int = 1000, seed: int = 42,
                   by_split: bool = True) -> tuple[dict, list[pd.DataFrame]]:
    """Results entries (family ``"score"``) and prediction rows of every severity score of the schema, in schema
    order: ``test`` (and ``external``, all rows of ``external``) at the threshold chosen on the validation split.
    ``by_split=False``: every row of ``dev`` as one set, ``"all"``, with no threshold chosen (``ALFIAPredictor
    .leaderboard``: stays of any split). Rows whose score or outcome is missing are left out; a score that does
    not rank both outcomes on every set is left out."""
    models, frames = {}, []
    if by_split:
        data = {where: (dev, dev.df[dev.df[SPLIT] == where]) for where in ("val", "test")}
    else:
        data = {"all": (dev, dev.df)}
    if external is not None:
        data["external"] = (external, external.df)
    for column, name in dev.schema.score_labels.items():
        if any(column not in df.columns for _, df in data.values()):
            continue
        probs, ys, ids = {}, {}, {}
        for where, (cohort, df) in data.items():
            p = scaled_score(cohort, column, df)
            known = (p.notna() & df[cohort.label].notna()).to_numpy()
            probs[where], ys[where], ids[where] = p.to_numpy()[known], \
                df[cohort.label].to_numpy()[known].astype(int), df[ID].to_numpy()[known]
        if any(len(np.unique(ys[w])) < 2 for w in ys):
            continue  # a score missing on (almost) every row cannot be ranked
        threshold = choose_threshold(ys["val"], probs["val"]) if by_split else None
        entry = {"family": "score"}
        for where in ("test", "external", "all"):
            if where in probs:
                entry[where] = evaluate_score(ys[where], probs[where], threshold, n_boot=n_boot, seed=seed)
        if threshold is not None:
            entry["threshold"] = float(threshold)
        models[name] = entry
        frames += [pd.DataFrame({"model": name, "where": where, "stay_id": ids[where], "probability": probs[where]})
                   for where in probs]
    return models, frames
