"""The schema registry: one module per schema, each declaring ``SCHEMA``."""

from __future__ import annotations

import importlib

from alfia.cohorts.schema import Schema
from alfia.errors import AlfiaError

SCHEMA_MODULES = {
    "physionet2012": "alfia.cohorts.schemas.physionet2012",
    "mimic-iv": "alfia.cohorts.schemas.mimic_iv",
    "eicu": "alfia.cohorts.schemas.eicu",
}


def get_schema(name: str) -> Schema:
    if name not in SCHEMA_MODULES:
        raise AlfiaError(f"unknown schema {name!r}; known schemas are {', '.join(SCHEMA_MODULES)}")
    return importlib.import_module(SCHEMA_MODULES[name]).SCHEMA
