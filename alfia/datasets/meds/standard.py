"""What a MEDS 0.4 dataset and a MEDS label file are, checked with the ``meds`` package's own schemas.

A dataset ``ROOT`` holds ``data/**/*.parquet`` (:class:`meds.DataSchema`: ``subject_id`` int64, ``time``
timestamp[us] (null: a static row), ``code`` string, ``numeric_value`` float32, ``text_value`` large_string; each
subject in one shard, sorted by time), ``metadata/codes.parquet`` (``code``, ``description``, ``parent_codes``),
optionally ``metadata/subject_splits.parquet`` (``subject_id``, ``split``) and ``metadata/dataset.json``. A label
file (ACES, MEDS-DEV) is :class:`meds.LabelSchema`: ``subject_id``, ``prediction_time``, ``boolean_value``.

Only the parquet footers are read here (schemas, row counts): a dataset of any size is checked in seconds. The
first difference from the standard is one ``AlfiaError`` line naming the file and what differs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import meds
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from flexible_schema.exceptions import SchemaValidationError

from alfia.errors import AlfiaError

MEDS_VERSION = "0.4"
WHAT = f"a MEDS {MEDS_VERSION} dataset folder (data/*.parquet, metadata/codes.parquet)"
SPLIT_NAMES = {meds.train_split: "train", meds.tuning_split: "val", meds.held_out_split: "test"}


@dataclass(frozen=True)
class MedsDataset:
    """A checked MEDS dataset: its shards (data files in path order), code descriptions and metadata."""

    root: Path
    shards: tuple[Path, ...]
    rows: int
    descriptions: dict[str, str]  # code -> its description in codes.parquet (codes without one are left out)
    metadata: dict  # metadata/dataset.json ({} when absent)
    splits_file: Path | None  # metadata/subject_splits.parquet, or None when absent

    @property
    def name(self) -> str:
        return str(self.metadata.get("dataset_name") or self.root.name)

    def shard_list(self) -> list[str]:
        return [str(p) for p in self.shards]


def open_dataset(root: str | Path) -> MedsDataset:
    """The MEDS dataset at ``root``, checked against the standard; raises one line on the first difference."""
    root = Path(root)
    if not root.is_dir():
        what = "does not exist" if not root.exists() else "is not a folder"
        raise AlfiaError(f"MEDS source {root} {what}; pass {WHAT}")
    data = root / meds.data_subdirectory
    shards = tuple(sorted(data.rglob("*.parquet"))) if data.is_dir() else ()
    if not shards:
        raise AlfiaError(f"{root} is not MEDS {MEDS_VERSION}: no data/**/*.parquet shards; pass {WHAT}")
    rows = 0
    for shard in shards:
        metadata = _footer(shard, root)
        _check(meds.DataSchema, metadata.schema.to_arrow_schema(), shard, root)
        rows += metadata.num_rows
    codes_file = root / meds.code_metadata_filepath
    if not codes_file.is_file():
        raise AlfiaError(f"{root} is not MEDS {MEDS_VERSION}: {meds.code_metadata_filepath} is missing; pass {WHAT}")
    _check(meds.CodeMetadataSchema, _footer(codes_file, root).schema.to_arrow_schema(), codes_file, root)
    codes = pq.read_table(codes_file, columns=["code", "description"]).to_pandas()
    codes = codes.dropna(subset=["code", "description"]).drop_duplicates("code", keep="first")
    splits_file = root / meds.subject_splits_filepath
    if splits_file.is_file():
        _check(meds.SubjectSplitSchema, _footer(splits_file, root).schema.to_arrow_schema(), splits_file, root)
    metadata = {}
    dataset_json = root / meds.dataset_metadata_filepath
    if dataset_json.is_file():
        try:
            metadata = json.loads(dataset_json.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise AlfiaError(f"{root} is not MEDS {MEDS_VERSION}: {meds.dataset_metadata_filepath} is not JSON "
                             f"({exc}); fix or remove it") from None
        if not isinstance(metadata, dict):
            raise AlfiaError(f"{root} is not MEDS {MEDS_VERSION}: {meds.dataset_metadata_filepath} is not a JSON "
                             "object; fix or remove it")
        version = str(metadata.get("meds_version") or "")
        if version and not version.startswith(MEDS_VERSION):
            raise AlfiaError(f"{root} is MEDS {version}, not {MEDS_VERSION} ({meds.dataset_metadata_filepath}); "
                             f"convert it with a MEDS {MEDS_VERSION} ETL")
    return MedsDataset(root=root, shards=shards, rows=rows,
                       descriptions=dict(zip(codes["code"].astype(str), codes["description"].astype(str),
                                             strict=True)),
                       metadata=metadata, splits_file=splits_file if splits_file.is_file() else None)


def read_labels(path: str | Path) -> pd.DataFrame:
    """The labels of a label file or a folder of them (``**/*.parquet``): ``subject_id``, ``prediction_time``,
    ``boolean_value``, one row per (subject, prediction time), sorted."""
    path = Path(path)
    files = sorted(path.rglob("*.parquet")) if path.is_dir() else [path]
    if not path.exists() or not files:
        raise AlfiaError(f"label path {path} {'holds no parquet file' if path.exists() else 'does not exist'}; "
                         "pass a MEDS label file or folder (subject_id, prediction_time, boolean_value)")
    parts = []
    for file in files:
        schema = _footer(file, None, what="a MEDS label file").schema.to_arrow_schema()
        _check(meds.LabelSchema, schema, file, None)
        if "boolean_value" not in schema.names:
            raise AlfiaError(f"label file {file} has no boolean_value column: ALFIA predicts a binary outcome; pass "
                             "labels of a binary task")
        parts.append(pq.read_table(file, columns=["subject_id", "prediction_time", "boolean_value"]))
    labels = pa.concat_tables(parts).to_pandas()
    if labels.isna().any().any():
        column = labels.columns[labels.isna().any()][0]
        raise AlfiaError(f"labels at {path}: column {column} has missing values; every row needs a subject, a "
                         "prediction time and a boolean label")
    duplicated = labels.duplicated(["subject_id", "prediction_time"])
    if duplicated.any():
        row = labels[duplicated].iloc[0]
        raise AlfiaError(f"labels at {path} give subject {row['subject_id']} at {row['prediction_time']} twice "
                         f"({int(duplicated.sum())} duplicated rows); keep one label per (subject_id, "
                         "prediction_time)")
    labels["boolean_value"] = labels["boolean_value"].astype(bool)
    return labels.sort_values(["subject_id", "prediction_time"], kind="stable").reset_index(drop=True)


def read_splits(dataset: MedsDataset) -> pd.Series | None:
    """ALFIA's split name (train/val/test) per subject from ``subject_splits.parquet``, or None when the file is
    absent or uses other split names (then ALFIA's own split is used; the caller says so)."""
    if dataset.splits_file is None:
        return None
    splits = pq.read_table(dataset.splits_file, columns=["subject_id", "split"]).to_pandas()
    if not splits["split"].isin(list(SPLIT_NAMES)).all():
        return None
    if splits["subject_id"].duplicated().any():
        raise AlfiaError(f"{dataset.splits_file} puts a subject in two splits (e.g. subject "
                         f"{splits.loc[splits['subject_id'].duplicated(), 'subject_id'].iloc[0]}); give each "
                         "subject one split")
    return splits.set_index("subject_id")["split"].map(SPLIT_NAMES)


def _footer(path: Path, root: Path | None, what: str = "") -> pq.FileMetaData:
    try:
        return pq.read_metadata(path)
    except (pa.ArrowInvalid, OSError) as exc:
        where = f"{root} is not MEDS {MEDS_VERSION}: " if root is not None else ""
        raise AlfiaError(f"{where}cannot read {path} as parquet ({str(exc).splitlines()[0]})"
                         f"{'; pass ' + (what or WHAT)}") from None


def _check(schema_class, schema: pa.Schema, path: Path, root: Path | None) -> None:
    """``schema`` checked with the ``meds`` package's schema class (types, required columns, extra columns)."""
    try:
        schema_class.validate(schema)
    except SchemaValidationError as exc:
        where = f"{root} is not MEDS {MEDS_VERSION}: " if root is not None else ""
        shown = path.relative_to(root) if root is not None else path
        fix = f"convert it with a MEDS {MEDS_VERSION} ETL" if root is not None else \
            "write it as MEDS label files are (subject_id int64, prediction_time timestamp[us], boolean_value)"
        raise AlfiaError(f"{where}{shown}: {str(exc).splitlines()[0].rstrip('.')}; {fix}") from None
