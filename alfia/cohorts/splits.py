"""The fixed, stratified 75 / 12.5 / 12.5 split (seed 42), deterministic across runs and machines.

Schemas whose source has a patient id split by patient, so that no patient has stays in two splits:

- ``eicu``: ``patient.uniquepid`` (one patient can have several hospital stays, each giving a cohort row);
- ``mimic_iv``: ``subject_id`` -- the cohort already keeps one stay per subject, so stay and patient coincide;
- ``physionet2012`` and ``synthetic``: no patient id exists (PhysioNet 2012 gives one record per ICU stay,
  de-identified), so they split by stay.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FRACTIONS = (0.75, 0.125, 0.125)
SEED = 42


def assign_splits(stay_ids: pd.Series, labels: pd.Series, seed: int = SEED,
                  patient_ids: pd.Series | None = None) -> pd.Series:
    """Return a train/val/test label per row, stratified by ``labels``.

    Rows are ordered by stay id before shuffling, so the result depends on the ids and labels only,
    not on the row order of the input table. With ``patient_ids``, whole patients are assigned (stratified on
    whether the patient died in any of their stays); with one stay per patient the result is the stay-level one.
    """
    if patient_ids is None:
        return pd.Series(_split_units(np.asarray(stay_ids), np.asarray(labels), seed),
                         index=stay_ids.index, name="split")
    patients = np.asarray(patient_ids)
    if pd.isna(patient_ids).any():
        raise ValueError("patient ids must not be missing")
    frame = pd.DataFrame({"patient": patients, "y": np.asarray(labels)})
    died = frame.groupby("patient", sort=True)["y"].max()
    unit_split = dict(zip(died.index, _split_units(died.index.to_numpy(), died.to_numpy(), seed), strict=True))
    return pd.Series([unit_split[p] for p in patients], index=stay_ids.index, name="split", dtype=object)


def _split_units(ids: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
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
    return out
