"""Schemas: one module per schema, each declaring ``SCHEMA``, registered with its data set in ``alfia.datasets``."""

from __future__ import annotations

from alfia.cohorts.schema import Schema


def get_schema(name: str) -> Schema:
    from alfia.datasets import get_dataset  # the registry imports this package's modules on first use

    return get_dataset(name).load_schema()
