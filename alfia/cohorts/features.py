"""A cohort's tabular features as models read them: the schema's feature columns only (never a reference column,
the id, the label, the split or the text), with categories encoded alike on every split and cohort."""

from __future__ import annotations

import pandas as pd

from alfia.cohorts.io import Cohort
from alfia.cohorts.schema import ID, SPLIT, TEXT
from alfia.errors import AlfiaError


def forbidden_columns(cohort: Cohort) -> set[str]:
    """Columns that never reach a model: id, label, split, text and the reference columns."""
    return {ID, cohort.label, SPLIT, TEXT, *cohort.schema.reference_columns}


def check_feature_columns(columns, cohort: Cohort, allowed_extra=()) -> None:
    """Raise unless every column is a schema feature (or an allowed extra such as an ALF embedding)."""
    columns = list(columns)
    leaked = sorted(set(columns) & forbidden_columns(cohort))
    if leaked:
        raise AlfiaError(f"refusing to train on {', '.join(leaked)}: reference/id/split/label columns never reach "
                         "a model")
    unknown = sorted(set(columns) - set(cohort.schema.feature_columns) - set(allowed_extra))
    if unknown:
        raise AlfiaError(f"columns {', '.join(unknown)} are not features of schema {cohort.schema.name!r}")


def feature_frame(cohort: Cohort, rows: pd.Series | None = None) -> pd.DataFrame:
    """The feature columns of ``cohort`` (optionally a row mask), categories as pandas categoricals with the
    schema's categories, so every split and the external cohort are encoded alike."""
    df = cohort.df if rows is None else cohort.df[rows.to_numpy()]
    out = {}  # one frame built at the end: a schema may have hundreds of columns
    for name in cohort.schema.feature_columns:
        col = cohort.schema[name]
        values = df[name].reset_index(drop=True)
        if col.kind == "category":
            out[name] = pd.Categorical(values.astype(object).where(values.notna(), None), categories=col.categories)
        else:
            out[name] = values.astype("float64")
    frame = pd.DataFrame(out, index=pd.RangeIndex(len(df)))
    check_feature_columns(frame.columns, cohort)
    return frame
