"""Table 1: baseline characteristics by outcome (the cohort task's label), for a cohort of any schema.

Rows follow the paper's layout: the label rate, then numeric features as "mean ± SD", or as "median [IQR]"
when skewed (|sample skewness| > 1 over all stays, e.g. urine output), and categorical/binary features (and small
ordinal scores such as SIRS, with at most 5 values) as "n (%)" per category. Columns: Survived, Died, Overall,
each with its N, and the standardised mean difference Died vs Survived (SMD, from the ``tableone`` package:
Cohen's d for numeric features, Yang & Dalton's multi-level SMD for categorical ones; |SMD| > 0.1 is the usual
mark of imbalance). Missing values are excluded from the statistics and shown as a "Missing" line with their
count; percentages of categories are of all stays in the column (Missing included). Only feature columns are
shown (reference columns never are). A synthetic cohort says so in the title.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from alfia.cohorts.io import Cohort
from alfia.cohorts.schema import SPLIT, SPLITS, Column
from alfia.errors import AlfiaError
from alfia.io import write_text_atomic

SYNTHETIC_MARK = "SYNTHETIC — says nothing about patients"
CHARACTERISTIC = "Characteristic"
MAX_ORDINAL_LEVELS = 5
SKEWED = 1.0  # |sample skewness| above which a numeric feature is summarised by median [IQR]
SMD = "SMD"


def _as_levels(col: Column) -> bool:
    if col.kind in ("category", "binary"):
        return True
    return col.kind == "int" and col.valid is not None and col.valid[1] - col.valid[0] + 1 <= MAX_ORDINAL_LEVELS


def _label(col: Column) -> str:
    return f"{col.name} ({col.unit})" if col.unit else col.name


def _count(k: int, n: int) -> str:
    return f"{k:,} ({100 * k / n:.2f}%)" if n else f"{k:,} (–)"


def _mean_sd(x: pd.Series) -> str:
    x = x.dropna()
    if len(x) == 0:
        return "–"
    sd = x.std(ddof=1) if len(x) > 1 else float("nan")
    return f"{x.mean():.2f} ± {sd:.2f}" if np.isfinite(sd) else f"{x.mean():.2f}"


def _median_iqr(x: pd.Series) -> str:
    x = x.dropna()
    if len(x) == 0:
        return "–"
    q1, q2, q3 = np.percentile(x, [25, 50, 75])
    return f"{q2:.2f} [{q1:.2f}, {q3:.2f}]"


def is_skewed(x: pd.Series) -> bool:
    skew = x.dropna().skew()
    return bool(np.isfinite(skew) and abs(skew) > SKEWED)


def standardised_differences(df: pd.DataFrame, numeric: list[str], categorical: list[str],
                             label: str) -> dict[str, float]:
    """SMD Died vs Survived (the ``label`` column) of each feature, by ``tableone`` (NaN where a group has no
    value)."""
    from tableone import TableOne

    columns = [c for c in [*numeric, *categorical] if df[c].notna().any()]
    if df[label].nunique() < 2 or not columns:
        return {}
    with warnings.catch_warnings():
        # tableone 0.9.6 writes one row with a partial MultiIndex key, which pandas 3 flags as deprecated
        warnings.simplefilter("ignore", category=FutureWarning)
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=RuntimeWarning)  # a constant column's SMD is 0/0
        t = TableOne(df[[*columns, label]], columns=columns, categorical=[c for c in categorical if c in columns],
                     groupby=label, smd=True, pval=False, display_all=True)
    smd = t.smd_table.iloc[:, 0]
    return {str(k): float(v) for k, v in smd.items()}


def _smd_cell(value: float | None) -> str:
    return "" if value is None or not np.isfinite(value) else f"{value:.3f}"


def title_for(cohort: Cohort, split: str | None = None) -> str:
    title = f"Baseline characteristics by {cohort.task.outcome} — {cohort.schema.name}"
    if split:
        title += f", {split} split"
    return f"{SYNTHETIC_MARK}: {title}" if cohort.synthetic else title


def table1(cohort: Cohort, split: str | None = None) -> pd.DataFrame:
    """The baseline table of ``cohort`` (or of one split) as strings; the title is in ``.attrs["title"]``."""
    df = cohort.df
    if split is not None:
        if split not in SPLITS:
            raise AlfiaError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        df = df[df[SPLIT] == split]
    if len(df) == 0:
        raise AlfiaError("the cohort has no rows for Table 1" + (f" in split {split!r}" if split else ""))
    label = cohort.label
    groups = {"Survived": df[df[label] == 0], "Died": df[df[label] == 1], "Overall": df}
    headers = [f"{name} (N={len(g):,})" for name, g in groups.items()]
    rows: list[list[str]] = []
    features = [c for c in cohort.schema.columns if c.role == "feature"]
    numeric = [c for c in features if not _as_levels(c)]
    levels = [c for c in features if _as_levels(c)]
    smd = standardised_differences(df, [c.name for c in numeric], [c.name for c in levels], label)

    def line(text: str, cells: list[str] | None = None, name: str | None = None) -> None:
        rows.append([text, *(cells if cells is not None else [""] * len(groups)), _smd_cell(smd.get(name))])

    outcome = cohort.task.outcome[:1].upper() + cohort.task.outcome[1:]
    line(f"{outcome}, n (%)", [_count(int(g[label].sum()), len(g)) for g in groups.values()])
    skewed = [c for c in numeric if is_skewed(df[c.name])]
    for title, cols, summary in (("Numeric characteristics, mean ± SD", [c for c in numeric if c not in skewed],
                                  _mean_sd),
                                 (f"Skewed numeric characteristics (|skewness| > {SKEWED:g}), median [IQR]", skewed,
                                  _median_iqr)):
        if not cols:
            continue
        line(title)
        for col in cols:
            line(_label(col), [summary(g[col.name]) for g in groups.values()], col.name)
            if df[col.name].isna().any():
                line("  Missing, n (%)", [_count(int(g[col.name].isna().sum()), len(g)) for g in groups.values()])
    if levels:
        line("Categorical characteristics, n (%)")
        for col in levels:
            line(_label(col), name=col.name)
            if col.kind == "category":
                values = [(v, v) for v in col.categories]
            elif col.kind == "binary":
                values = [("No", 0.0), ("Yes", 1.0)]
            else:
                lo, hi = int(col.valid[0]), int(col.valid[1])
                values = [(str(v), float(v)) for v in range(lo, hi + 1)]
            for text, v in values:
                line(f"  {text}", [_count(int((g[col.name] == v).sum()), len(g)) for g in groups.values()])
            if df[col.name].isna().any():
                line("  Missing", [_count(int(g[col.name].isna().sum()), len(g)) for g in groups.values()])
    table = pd.DataFrame(rows, columns=[CHARACTERISTIC, *headers, SMD])
    table.attrs["title"] = title_for(cohort, split)
    table.attrs["synthetic"] = cohort.synthetic
    return table


def to_markdown(table: pd.DataFrame, title: str | None = None) -> str:
    """A GitHub-flavoured markdown table with the title (default ``table.attrs["title"]``) above it."""
    cells = [[str(h) for h in table.columns], *[[str(v) for v in r] for r in table.itertuples(index=False)]]
    cells = [[c.replace("|", "\\|") for c in r] for r in cells]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]

    def fmt(r: list[str]) -> str:
        first = r[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]
        return "| " + " | ".join([first, *rest]) + " |"

    sep = "| " + " | ".join(["-" * widths[0], *[("-" * (w - 1)) + ":" for w in widths[1:]]]) + " |"
    out = [fmt(cells[0]), sep, *[fmt(r) for r in cells[1:]]]
    title = title if title is not None else table.attrs.get("title")
    return (f"**{title}**\n\n" if title else "") + "\n".join(out) + "\n"


def to_csv(table: pd.DataFrame, title: str | None = None) -> str:
    """CSV text; the title is a first ``# ...`` comment line (read back with ``pd.read_csv(f, comment="#")``)."""
    title = title if title is not None else table.attrs.get("title")
    body = table.to_csv(index=False, lineterminator="\n")
    return (f"# {title}\n" if title else "") + body


def write_table1(table: pd.DataFrame, path: str | os.PathLike, title: str | None = None) -> Path:
    """Write ``.csv`` or ``.md`` atomically (by the file's suffix); both keep the title (synthetic mark)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        write_text_atomic(path, to_csv(table, title))
    elif suffix in (".md", ".markdown"):
        write_text_atomic(path, to_markdown(table, title))
    else:
        raise AlfiaError(f"cannot write Table 1 to {path}: use a .csv or .md file name")
    return path
