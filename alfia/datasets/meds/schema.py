"""The ``meds`` schema: what every MEDS cohort has before its features are chosen from the data (age, the MEDS
subject and prediction time). A MEDS cohort's own schema (``meds-<digest>``) is derived from the data by
:mod:`alfia.datasets.meds.builder` and travels in the cohort file and the run folder."""

from __future__ import annotations

from alfia.cohorts.schema import Column, Schema
from alfia.datasets.meds.tasks import CW24_IN_HOSPITAL

SCHEMA = Schema(
    name="meds",
    description="prediction rows of a MEDS dataset; the features are derived from the data (alfia cohort meds)",
    columns=(Column("age", "float", "age in years at the start of the input window (MEDS_BIRTH)", unit="years",
                    decimals=0),
             Column("subject_id", "int", "MEDS subject_id", role="reference"),
             Column("prediction_time", "time", "MEDS prediction time", role="reference")),
    task=CW24_IN_HOSPITAL,
)
