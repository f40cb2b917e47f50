"""CW-24-style cohorts: one row per ICU stay, features from the first 24 hours only."""

from alfia.cohorts.io import Cohort, read_cohort, write_cohort
from alfia.cohorts.schema import ID, LABEL, SPLIT, SPLITS, TEXT, Column, Schema
from alfia.cohorts.schemas import get_schema

__all__ = ["Cohort", "Column", "Schema", "read_cohort", "write_cohort", "get_schema",
           "ID", "LABEL", "SPLIT", "SPLITS", "TEXT"]
