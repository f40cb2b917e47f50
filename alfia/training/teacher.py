"""A tabular teacher for distillation: out-of-fold LightGBM probabilities of the training rows.

ALFIA reads only the text, but the trees read the same variables better on 3,000 stays; their probabilities are
softer targets than 0/1 labels (Hinton et al. 2015). Each training row's target comes from a LightGBM fitted on
the other folds of the training split, so no row's soft target was fitted on its own label, and the validation
and test rows are never seen (``tests/training/test_readout_teacher.py`` holds the traps). Fixed iterations, one
thread and a fixed seed: the same targets on every machine.
"""

from __future__ import annotations

import numpy as np

from alfia.cohorts import Cohort
from alfia.cohorts.features import feature_frame

LGBM_PARAMS = {"objective": "binary", "learning_rate": 0.03, "num_leaves": 15, "min_child_samples": 20,
               "subsample": 0.8, "subsample_freq": 1, "colsample_bytree": 0.8, "reg_lambda": 1.0,
               "n_estimators": 300, "verbose": -1, "n_jobs": 1, "deterministic": True}


def out_of_fold_teacher(cohort: Cohort, folds: int = 5, seed: int = 42, rows: np.ndarray | None = None) -> np.ndarray:
    """P(death) for every training row (cohort order of ``split == "train"``), each from a LightGBM that did not
    see that row: ``folds``-fold cross-fitting inside the training split only (folds drawn from the row order and
    the seed, never from the labels, so that which model scores a row does not depend on any label). ``rows`` (a boolean
    mask over the cohort) narrows the rows further, for cross-fitting inside cross-fitting."""
    import lightgbm as lgb
    import pandas as pd
    from sklearn.model_selection import KFold

    train = (cohort.df["split"] == "train").to_numpy()
    if rows is not None:
        train = train & rows
    train = pd.Series(train, index=cohort.df.index)
    x = feature_frame(cohort, train)
    y = cohort.df.loc[train, cohort.label].to_numpy(dtype=np.int64)
    p = np.zeros(len(y))
    for fit_rows, held_out in KFold(folds, shuffle=True, random_state=seed).split(x):
        model = lgb.LGBMClassifier(**LGBM_PARAMS, random_state=seed)
        model.fit(x.iloc[fit_rows], y[fit_rows])
        p[held_out] = model.predict_proba(x.iloc[held_out])[:, 1]
    return p
