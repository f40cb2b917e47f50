"""Cohort schemas: each schema is declared once (names, types, units, valid ranges, roles) and every
cohort table is validated against it when it is read or written.

A cohort is one row per ICU stay with the id column ``stay_id``, the label column of its task (0/1; e.g.
``hospital_mortality`` for CW-24, :mod:`alfia.cohorts.task`), the schema's columns and a ``split`` column
(train/val/test). An encoded cohort may also carry ``text``.
Stays to score (new patients) need neither outcome nor split: ``validate(..., require_outcome=False)``, as
scikit-learn checks new data against a fitted estimator without asking for ``y``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal, get_args

import numpy as np
import pandas as pd

from alfia.cohorts.task import CW24, Task, task_labels
from alfia.errors import AlfiaError

ID = "stay_id"
SPLIT = "split"
TEXT = "text"
SPLITS = ("train", "val", "test")

Kind = Literal["float", "int", "category", "binary", "time"]  # time: a timestamp, reference columns only
Role = Literal["feature", "reference"]


@dataclass(frozen=True)
class Column:
    """One column of a schema.

    ``role="feature"`` columns are model inputs (tabular baselines and text); ``role="reference"`` columns
    (e.g. the challenge's own SAPS-I) are kept for comparison only and never reach a model or a text. A severity
    score carries its ``label`` (e.g. ``"SAPS II"``): the baselines also score it on its own, as a risk score.
    """

    name: str
    kind: Kind
    description: str
    unit: str | None = None
    valid: tuple[float, float] | None = None  # inclusive range for numeric kinds
    categories: tuple[str, ...] | None = None  # allowed values for "category"
    role: Role = "feature"
    window: str = "first 24 h of the ICU stay"
    decimals: int | None = None  # rounding used in the clinical text; None: 0 for int/binary, 1 for float
    label: str | None = None  # a severity score's display name; None: not a severity score

    @property
    def text_decimals(self) -> int:
        if self.decimals is not None:
            return self.decimals
        return 1 if self.kind == "float" else 0

    def __post_init__(self) -> None:
        if self.kind == "category" and not self.categories:
            raise ValueError(f"category column {self.name!r} needs its categories")
        if self.kind == "time" and self.role != "reference":  # a date says nothing a model may read
            raise ValueError(f"time column {self.name!r} must be a reference column")


@dataclass(frozen=True)
class Schema:
    name: str
    description: str
    columns: tuple[Column, ...]
    notes: tuple[str, ...] = field(default=())  # documented approximations and missing components
    task: Task = CW24  # the task its builder produces (a cohort may carry another: Cohort.task)
    # the registered data set whose builder derived this schema from the data (e.g. "meds" for "meds-1a2b3c4d");
    # None for a schema declared in code. A derived schema travels with its cohort file and run (to_dict).
    derived_from: str | None = None

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"schema {self.name!r} declares a column twice")
        if {ID, SPLIT, TEXT, self.task.label, *task_labels()} & set(names):
            raise ValueError(f"schema {self.name!r} must not declare the fixed columns or a task's label")

    @property
    def dataset(self) -> str:
        """The registered data set whose text template writes this schema's texts."""
        return self.derived_from or self.name

    def to_dict(self) -> dict:
        """The whole definition as JSON-ready data: a derived schema is stored this way in the cohort file's
        metadata and the run's encoder.json, since no registry can give it back by name."""
        columns = []
        for col in self.columns:
            data = asdict(col)
            data["valid"] = None if col.valid is None else list(col.valid)
            data["categories"] = None if col.categories is None else list(col.categories)
            columns.append(data)
        return {"name": self.name, "description": self.description, "columns": columns, "notes": list(self.notes),
                "task": self.task.to_dict(), "derived_from": self.derived_from}

    @classmethod
    def from_dict(cls, data: dict) -> Schema:
        """The schema :meth:`to_dict` wrote; AlfiaError in one line when ``data`` is not one."""
        from alfia.codec import config_from_dict

        remedy = "rebuild the cohort with `alfia cohort`"
        try:
            columns = tuple(config_from_dict(Column, c, "the schema recorded in the file", remedy)
                            for c in data["columns"])
            for col in columns:
                if col.kind not in get_args(Kind) or col.role not in get_args(Role):
                    raise ValueError(f"column {col.name!r} has kind {col.kind!r} and role {col.role!r}")
                if col.valid is not None and len(col.valid) != 2:
                    raise ValueError(f"column {col.name!r} has a valid range of {len(col.valid)} numbers, not 2")
            derived_from = data.get("derived_from")
            return cls(name=_text(data["name"]), description=_text(data["description"]), columns=columns,
                       notes=tuple(_text(n) for n in data.get("notes", ())), task=Task.from_dict(data["task"]),
                       derived_from=None if derived_from is None else _text(derived_from))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise AlfiaError(f"the schema recorded in the file is not readable ({exc}); {remedy}") from None

    def __getitem__(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def feature_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.role == "feature"]

    @property
    def reference_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.role == "reference"]

    @property
    def score_labels(self) -> dict[str, str]:
        """Severity-score column -> its display name, in schema order."""
        return {c.name: c.label for c in self.columns if c.label}

    def required_columns(self, task: Task | None = None) -> list[str]:
        """The columns of a cohort of this schema under ``task`` (default: the schema's own), in order."""
        return [ID, (task or self.task).label, *[c.name for c in self.columns], SPLIT]

    def validate(self, df: pd.DataFrame, *, task: Task | None = None, where: str = "cohort",
                 require_outcome: bool = True) -> pd.DataFrame:
        """Check ``df`` against the schema under ``task`` (default: the schema's own; its label column) and return
        it with canonical dtypes and column order.

        ``require_outcome=False`` (stays to score): the label and split columns may be absent, and a present label
        may be missing for some stays (then a nullable integer column). Raises ``AlfiaError`` with one line naming
        what is wrong.
        """
        if len(df) == 0:
            raise AlfiaError(f"{where} is empty: it has no rows; build it again with `alfia cohort`")
        label = (task or self.task).label
        optional = set() if require_outcome else {label, SPLIT}
        expected = [c for c in self.required_columns(task) if c not in optional or c in df.columns]
        other_labels = task_labels() - {label}
        mismatch = column_mismatch(df.columns, expected, ignored={TEXT} | (set() if require_outcome else other_labels))
        if mismatch:
            raise AlfiaError(f"{where} does not match schema {self.name!r} under task {(task or self.task).name!r}: "
                             f"{mismatch}; rebuild it with `alfia cohort` or pass the right schema")
        out: dict[str, pd.Series] = {}  # one frame built at the end: hundreds of columns, inserted once
        out[ID] = _stay_ids(df[ID], where)
        if label in df.columns:
            out[label] = _labels(df[label], label, where, allow_missing=not require_outcome)
        for col in self.columns:
            out[col.name] = _column(df[col.name].reset_index(drop=True), col, where)
        if SPLIT in df.columns:
            splits = df[SPLIT].reset_index(drop=True)
            bad = ~splits.isin(SPLITS)
            if bad.any():
                raise AlfiaError(
                    f"{where}: column {SPLIT!r} has values {sorted(map(str, splits[bad].unique()))[:5]}; "
                    f"allowed are {', '.join(SPLITS)}"
                )
            out[SPLIT] = splits.astype(str)
        if TEXT in df.columns:
            text = df[TEXT].reset_index(drop=True)
            if text.isna().any():
                raise AlfiaError(f"{where}: column {TEXT!r} has missing texts; encode the cohort again")
            out[TEXT] = text.astype(str)
        return pd.DataFrame(out, index=pd.RangeIndex(len(df)))


    def check_features(self, df: pd.DataFrame, columns: list[str], *, where: str = "table") -> pd.DataFrame:
        """The feature ``columns`` of ``df`` checked as :meth:`validate` checks them (types, ranges, categories),
        with canonical dtypes; raises ``AlfiaError`` with one line naming what is wrong."""
        return pd.DataFrame({name: _column(df[name].reset_index(drop=True), self[name], where)
                             for name in columns}, index=pd.RangeIndex(len(df)))


def _text(value) -> str:
    """A string of a saved schema, refused (TypeError) when it is anything else."""
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def column_mismatch(columns, expected: list[str], ignored: set[str] = frozenset()) -> str:
    """"missing columns a, b; unexpected columns c" (expected order, then table order), or "" when they match."""
    missing = [c for c in expected if c not in columns]
    unexpected = [c for c in columns if c not in expected and c not in ignored]
    parts = []
    if missing:
        parts.append(f"missing columns {', '.join(missing)}")
    if unexpected:
        parts.append(f"unexpected columns {', '.join(map(str, unexpected))}")
    return "; ".join(parts)


def _stay_ids(s: pd.Series, where: str) -> pd.Series:
    if s.isna().any():
        raise AlfiaError(f"{where}: column {ID!r} has missing values; every stay needs an id")
    ids = _numbers(s, where, ID)
    if not np.all(np.equal(np.mod(ids, 1), 0)) or (ids.abs() >= 2**53).any():
        raise AlfiaError(f"{where}: column {ID!r} must hold integer ids (below 2^53)")
    ids = ids.astype("int64").reset_index(drop=True)
    dup = ids[ids.duplicated()]
    if len(dup):
        raise AlfiaError(
            f"{where}: duplicate {ID} values (e.g. {', '.join(map(str, dup.unique()[:3]))}); "
            "each ICU stay must appear once"
        )
    return ids


def _numbers(s: pd.Series, where: str, name: str, *, booleans: bool = False, refuse: bool = True) -> pd.Series:
    """``s`` as float64 (missing values NaN). Numbers and numeric strings are accepted; anything else (complex
    numbers, dates, bytes, containers; booleans unless ``booleans``) is an AlfiaError naming the column, or NaN
    when not ``refuse`` (the caller reports it)."""
    if s.dtype.kind in "iuf":  # the common case, vectorised
        return s.astype("float64")
    if s.dtype.kind == "b" and booleans:
        return s.astype("float64")
    out = np.empty(len(s), dtype="float64")
    for i, v in enumerate(s.to_numpy(dtype=object)):
        number = _number(v, booleans)
        if number is None:
            if refuse:
                # the type and row only: the value itself may be patient data (a note pasted in a column)
                raise AlfiaError(f"{where}: column {name!r} must be numeric, found a {type(v).__name__} value "
                                 f"in row {i}; fix that cell or leave it missing")
            number = float("nan")
        out[i] = number
    return pd.Series(out, index=s.index)


def _number(v, booleans: bool) -> float | None:
    """One cell as a float (NaN when missing), or None when it is not a number."""
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and np.isnan(v)):
        return float("nan")
    if isinstance(v, (bool, np.bool_)):
        return float(v) if booleans else None
    try:
        if isinstance(v, (int, float, np.integer, np.floating)):
            return float(v)
        if isinstance(v, str):
            return float(v.strip())
    except (ValueError, OverflowError):
        return None
    return None


def _labels(s: pd.Series, label: str, where: str, allow_missing: bool = False) -> pd.Series:
    values = _numbers(s, where, label, refuse=False)
    missing = s.isna().to_numpy() if allow_missing else np.zeros(len(s), dtype=bool)
    bad = (values.isna() | ~values.isin([0, 1])).to_numpy() & ~missing
    if bad.any():
        shown = sorted(map(str, s[bad].astype(str).unique()))[:5]
        raise AlfiaError(f"{where}: label {label!r} must be 0 or 1, found {', '.join(shown)}")
    return values.astype("Int64" if missing.any() else "int64").reset_index(drop=True)


def _column(s: pd.Series, col: Column, where: str) -> pd.Series:
    if col.kind == "time":
        try:
            return pd.Series(pd.to_datetime(s), index=s.index).astype("datetime64[us]")
        except (ValueError, TypeError, OverflowError):
            raise AlfiaError(f"{where}: column {col.name!r} must hold timestamps") from None
    if col.kind == "category":
        present = s.dropna().astype(str)
        bad = present[~present.isin(col.categories)]
        if len(bad):
            raise AlfiaError(
                f"{where}: column {col.name!r} has unknown values {sorted(bad.unique())[:5]}; "
                f"allowed are {', '.join(col.categories)}"
            )
        # every missing marker (None, NaN, NA, NaT) becomes None: the text writer has one notion of missing
        return pd.Series([None if pd.isna(v) else str(v) for v in s], index=s.index, dtype=object)
    values = _numbers(s, where, col.name, booleans=col.kind == "binary")
    if np.isinf(values).any():
        raise AlfiaError(f"{where}: column {col.name!r} has infinite values; use a number or leave it missing")
    if col.kind == "binary":
        bad = values.notna() & ~values.isin([0.0, 1.0])
        if bad.any():
            raise AlfiaError(f"{where}: column {col.name!r} must be 0 or 1 (or missing)")
    if col.kind == "int":
        present = values.dropna()
        if not np.all(np.equal(np.mod(present, 1), 0)):
            raise AlfiaError(f"{where}: column {col.name!r} must hold whole numbers")
    if col.valid is not None:
        lo, hi = col.valid
        bad = values.notna() & ((values < lo) | (values > hi))
        if bad.any():
            raise AlfiaError(
                f"{where}: column {col.name!r} has {int(bad.sum())} values outside its valid range "
                f"[{lo:g}, {hi:g}] {col.unit or ''}".rstrip()
            )
    return values
