"""CW-24-style cohorts: one row per ICU stay, features from the first 24 hours only."""

from alfia.cohorts.io import Cohort, read_cohort, write_cohort
from alfia.cohorts.registry import get_schema, load_cohort
from alfia.cohorts.schema import ID, SPLIT, SPLITS, TEXT, Column, Schema
from alfia.cohorts.task import CW24, Task, get_task

__all__ = ["Cohort", "Column", "Schema", "read_cohort", "write_cohort", "get_schema", "load_cohort",
           "ID", "SPLIT", "SPLITS", "TEXT", "Task", "CW24", "get_task"]
