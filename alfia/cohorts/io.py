"""Reading and writing cohort tables (parquet) with their schema name, task and provenance in the file metadata."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from alfia.cohorts.registry import dataset_names, get_schema
from alfia.cohorts.schema import SPLIT, Schema
from alfia.cohorts.task import Task
from alfia.errors import AlfiaError
from alfia.io import atomic_path

META_KEY = b"alfia.cohort"


@dataclass
class Cohort:
    """A validated cohort table with its schema, its prediction task (default: the schema's own) and provenance
    (``info``: source, synthetic, license ...). The label column is ``cohort.task.label`` (``cohort.label``)."""

    df: pd.DataFrame
    schema: Schema
    info: dict = field(default_factory=dict)
    task: Task | None = None

    def __post_init__(self) -> None:
        if self.task is None:
            self.task = self.schema.task

    @property
    def label(self) -> str:
        """The label column (the task's)."""
        return self.task.label

    def checksum(self) -> str:
        """SHA-256 of the rows a model sees (ids, labels, split, text): a run or study says which data made it."""
        from alfia.cohorts.schema import ID, TEXT

        rows = self.df[[ID, self.label, SPLIT, TEXT]]
        return hashlib.sha256(pd.util.hash_pandas_object(rows, index=False).values.tobytes()).hexdigest()

    @property
    def synthetic(self) -> bool:
        return bool(self.info.get("synthetic", False))

    def split(self, name: str) -> pd.DataFrame:
        return self.df[self.df[SPLIT] == name].reset_index(drop=True)


def read_cohort(path: str | os.PathLike, schema: str | None = None, require_outcome: bool = True) -> Cohort:
    """Read and validate a cohort parquet file.

    Files written by ``write_cohort`` name their schema; a plain parquet table needs ``schema``.
    ``require_outcome=False``: stays to score, which may lack the outcome and split columns.
    """
    path = Path(path)
    if not path.exists():
        raise AlfiaError(f"cohort file {path} does not exist; build one with `alfia cohort`")
    if path.is_dir():
        raise AlfiaError(f"{path} is a directory, not a cohort file; pass the .parquet file")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise AlfiaError(f"cannot read {path} as a parquet cohort ({str(exc).splitlines()[0]}); "
                         "build it again with `alfia cohort`") from None
    meta = table.schema.metadata or {}
    info = json.loads(meta[META_KEY]) if META_KEY in meta else {}
    name = schema or info.get("schema")
    if not name:
        raise AlfiaError(f"{path} names no schema in its metadata; pass --schema "
                         f"({', '.join(dataset_names())}) or build it with `alfia cohort`")
    resolved = get_schema(name)
    # files written before tasks existed hold the schema's own task (every builder then was CW-24)
    task = Task.from_dict(info["task"]) if isinstance(info.get("task"), dict) else resolved.task
    df = resolved.validate(table.to_pandas(), task=task, where=str(path), require_outcome=require_outcome)
    return Cohort(df=df, schema=resolved, info={**info, "schema": resolved.name, "task": task.to_dict()}, task=task)


def write_cohort(cohort: Cohort, path: str | os.PathLike, require_outcome: bool = True) -> Path:
    """Validate and write atomically: on any error nothing is left at ``path``."""
    path = Path(path)
    df = cohort.schema.validate(cohort.df, task=cohort.task, where="cohort to write",
                                require_outcome=require_outcome)
    info = {**cohort.info, "schema": cohort.schema.name, "task": cohort.task.to_dict()}
    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           META_KEY: json.dumps(info).encode()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path
