"""The fixed, stratified 75 / 12.5 / 12.5 split (seed 42), deterministic across runs and machines."""

from __future__ import annotations

import numpy as np
import pandas as pd

FRACTIONS = (0.75, 0.125, 0.125)
SEED = 42


def assign_splits(stay_ids: pd.Series, labels: pd.Series, seed: int = SEED) -> pd.Series:
    """Return a train/val/test label per row, stratified by ``labels``.

    Rows are ordered by stay id before shuffling, so the result depends on the ids and labels only,
    not on the row order of the input table.
    """
    ids = np.asarray(stay_ids)
    y = np.asarray(labels)
    out = np.empty(len(ids), dtype=object)
    rng = np.random.Generator(np.random.PCG64(seed))
    for cls in np.unique(y):
        rows = np.flatnonzero(y == cls)
        rows = rows[np.argsort(ids[rows], kind="stable")]
        rows = rows[rng.permutation(len(rows))]
        n_train = int(round(FRACTIONS[0] * len(rows)))
        n_val = int(round(FRACTIONS[1] * len(rows)))
        out[rows[:n_train]] = "train"
        out[rows[n_train : n_train + n_val]] = "val"
        out[rows[n_train + n_val :]] = "test"
    return pd.Series(out, index=stay_ids.index, name="split")
