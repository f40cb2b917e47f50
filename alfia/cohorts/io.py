"""Reading and writing cohort tables (parquet) with their schema name, task and provenance in the file metadata; a
schema derived from the data (``Schema.derived_from``) is stored whole there (``schema_definition``), as no registry
can give it back by name."""

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
from alfia.cohorts.schema import ID, SPLIT, Schema
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


def read_cohort(path: str | os.PathLike, schema: str | Schema | None = None, require_outcome: bool = True) -> Cohort:
    """Read and validate a cohort parquet file.

    Files written by ``write_cohort`` name their schema (a derived one: with its definition); a plain parquet table
    needs ``schema`` (a registered name or a :class:`Schema`). ``require_outcome=False``: stays to score, which may
    lack the outcome and split columns.
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
    resolved, info, task = _described(table.schema.metadata or {}, schema, path)
    df = resolved.validate(table.to_pandas(), task=task, where=str(path), require_outcome=require_outcome)
    return Cohort(df=df, schema=resolved, info={**schema_info(info, resolved), "task": task.to_dict()}, task=task)


def read_cohort_info(path: str | os.PathLike) -> tuple[Schema, dict]:
    """The schema and info a cohort file records, from its footer alone: no row is read."""
    try:
        metadata = pq.read_schema(path).metadata or {}
    except (pa.ArrowInvalid, OSError) as exc:
        raise AlfiaError(f"cannot read {path} as a parquet cohort ({str(exc).splitlines()[0]}); "
                         "build it again with `alfia cohort`") from None
    resolved, info, _ = _described(metadata, None, Path(path))
    return resolved, info


def _described(meta: dict, schema: str | Schema | None, path: Path) -> tuple[Schema, dict, Task]:
    """The schema (a given one, the file's derived one, or a registered one by name), info and task of a file."""
    info = json.loads(meta[META_KEY]) if META_KEY in meta else {}
    name = schema or info.get("schema")
    if not name:
        raise AlfiaError(f"{path} names no schema in its metadata; pass --schema "
                         f"({', '.join(dataset_names())}) or build it with `alfia cohort`")
    definition = info.get("schema_definition")
    if isinstance(name, Schema):
        resolved = name
    elif definition is not None and name == info.get("schema"):  # a derived schema: the file holds it whole
        resolved = Schema.from_dict(definition)
    else:
        resolved = get_schema(name)
    # files written before tasks existed hold the schema's own task (every builder then was CW-24)
    task = Task.from_dict(info["task"]) if isinstance(info.get("task"), dict) else resolved.task
    return resolved, info, task


def write_cohort(cohort: Cohort, path: str | os.PathLike, require_outcome: bool = True) -> Path:
    """Validate and write atomically: on any error nothing is left at ``path``."""
    path = Path(path)
    df = cohort.schema.validate(cohort.df, task=cohort.task, where="cohort to write",
                                require_outcome=require_outcome)
    info = {**schema_info(cohort.info, cohort.schema), "task": cohort.task.to_dict()}
    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           META_KEY: json.dumps(info).encode()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path


class CohortWriter:
    """Write a cohort chunk by chunk, each chunk validated against the schema and written as one row group: a
    builder that streams its rows never holds the whole table. Atomic as :func:`write_cohort`::

        with CohortWriter(path, schema, task, info) as writer:
            for chunk in chunks:
                writer.write(chunk)
    """

    def __init__(self, path: str | os.PathLike, schema: Schema, task: Task, info: dict):
        self.path, self.schema, self.task = Path(path), schema, task
        info = {**schema_info(info, schema), "task": task.to_dict()}
        self.arrow = pa.schema([(name, _arrow_type(schema, task, name)) for name in schema.required_columns(task)],
                               metadata={META_KEY: json.dumps(info).encode()})
        self.rows = 0

    def __enter__(self) -> CohortWriter:
        self._atomic = atomic_path(self.path)
        self._writer = pq.ParquetWriter(self._atomic.__enter__(), self.arrow)
        return self

    def write(self, df: pd.DataFrame) -> None:
        if len(df) == 0:
            return
        valid = self.schema.validate(df, task=self.task, where="cohort to write")
        self._writer.write_table(pa.Table.from_pandas(valid, schema=self.arrow, preserve_index=False))
        self.rows += len(valid)

    def __exit__(self, *exc) -> bool | None:
        self._writer.close()
        if exc[0] is None and self.rows == 0:
            error = AlfiaError("the cohort to write has no rows; nothing was written")
            self._atomic.__exit__(AlfiaError, error, None)  # removes the temporary file
            raise error
        return self._atomic.__exit__(*exc)


def _arrow_type(schema: Schema, task: Task, name: str) -> pa.DataType:
    if name in (ID, task.label):
        return pa.int64()
    if name == SPLIT:
        return pa.string()
    kind = schema[name].kind
    return {"category": pa.string(), "time": pa.timestamp("us")}.get(kind, pa.float64())


def schema_info(info: dict, schema: Schema) -> dict:
    """``info`` naming ``schema``: with its definition when it is derived from the data, else without one (a
    registered schema is found by name)."""
    out = {**info, "schema": schema.name}
    out.pop("schema_definition", None)
    if schema.derived_from:
        out["schema_definition"] = schema.to_dict()
    return out
