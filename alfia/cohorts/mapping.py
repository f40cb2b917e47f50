"""External validation across schemas (paper section 3.3, Figure 5a-b): a cohort of another schema is mapped onto
the training schema through a declared feature mapping.

- A variable both schemas hold is mapped by meaning and unit (each link below is declared by hand, with its
  category translation; a value with no counterpart, or outside the target's valid range, becomes missing and is
  counted).
- A variable the target schema has and the source lacks is imputed with its mode on the training cohort's train
  split, as the paper did; it is then written into the text as a real value would be, so every imputed variable
  is listed in the mapping report that travels with the cohort (``cohort.info["mapping"]``).
- A source that shares fewer than half of the training schema's features is refused: too little of what the
  model learned from would be real.

A data set declares the mappings onto its schema with its registration (``mappings=``: source schema ->
:class:`FeatureMapping`), e.g. ``alfia/datasets/eicu/mapping.py`` (MIMIC-IV -> eICU).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from alfia.cohorts.io import Cohort
from alfia.cohorts.registry import dataset_names, get_dataset
from alfia.cohorts.schema import ID, SPLIT
from alfia.errors import AlfiaError

MIN_OVERLAP = 0.5


@dataclass(frozen=True)
class Link:
    """The target variable ``target`` read from the source variable ``source``; ``values`` translates
    categories (a source value not listed becomes missing)."""

    target: str
    source: str
    values: dict | None = None
    note: str = ""


@dataclass(frozen=True)
class FeatureMapping:
    source: str
    target: str
    links: tuple[Link, ...] = field(default=())


def same(*names: str) -> tuple[Link, ...]:
    """Links of variables both schemas hold under the same name, meaning and unit."""
    return tuple(Link(n, n) for n in names)


def declared_mapping(source: str, target: str) -> FeatureMapping:
    """The mapping of schema ``source`` onto ``target``, declared with the target's data set."""
    mapping = get_dataset(target).load_mapping(source)
    if mapping is None:
        known = ", ".join(f"{a} -> {b}" for b in dataset_names() for a in get_dataset(b).mappings) or "none"
        raise AlfiaError(f"no feature mapping is declared from schema {source!r} to {target!r} (declared: {known}); "
                         "predict on a cohort of the training schema")
    return mapping


def training_modes(training: Cohort, names: list[str]) -> dict:
    """The most frequent value of each variable on the train split (the smallest one on a tie; None when the
    variable is never recorded there)."""
    train = training.df[training.df[SPLIT] == "train"]
    modes = {}
    for name in names:
        mode = train[name].dropna().mode()
        value = mode.iloc[0] if len(mode) else None
        modes[name] = value.item() if isinstance(value, np.generic) else value
    return modes


def map_cohort(cohort: Cohort, training: Cohort, mapping: FeatureMapping | None = None) -> Cohort:
    """``cohort`` written in the schema of ``training``; the report is ``info["mapping"]``."""
    target = training.schema
    mapping = mapping or declared_mapping(cohort.schema.name, target.name)
    features = target.feature_columns
    linked = [link.target for link in mapping.links]
    if len(linked) < MIN_OVERLAP * len(features):
        raise AlfiaError(f"the cohort (schema {cohort.schema.name!r}) shares only {len(linked)} of the "
                         f"{len(features)} features of the training schema {target.name!r}, fewer than half: "
                         "the model would read mostly imputed values; validate on a cohort closer to the training "
                         "data")
    src = cohort.df
    df = pd.DataFrame({ID: src[ID].to_numpy(), cohort.label: src[cohort.label].to_numpy()})  # the source's task
    mapped = []
    for link in mapping.links:
        col = target[link.target]
        values = src[link.source]
        if link.values is not None:
            values = values.map(lambda v, table=link.values: table.get(v) if pd.notna(v) else None)
        if col.kind == "category":
            values = values.astype(object).where(values.notna(), None)
            untranslated = int((src[link.source].notna() & values.isna()).sum())
            outside = 0
        else:
            values = pd.to_numeric(values, errors="coerce").astype("float64")
            untranslated = int((src[link.source].notna() & values.isna()).sum())
            lo, hi = col.valid if col.valid is not None else (-np.inf, np.inf)
            bad = values.notna() & ((values < lo) | (values > hi))
            outside = int(bad.sum())
            values = values.where(~bad)
        df[link.target] = values.to_numpy()
        mapped.append({"variable": link.target, "from": link.source, "note": link.note,
                       "set_missing": untranslated + outside})
    imputed_names = [n for n in features if n not in linked]
    modes = training_modes(training, imputed_names)
    for name in imputed_names:
        df[name] = modes[name]
    for name in target.reference_columns:  # never a model input: nothing to carry over
        df[name] = np.nan
    df[SPLIT] = src[SPLIT].to_numpy()
    df = df[target.required_columns(cohort.task)]
    report = {"source_schema": cohort.schema.name, "target_schema": target.name,
              "shared": f"{len(linked)} of {len(features)} features", "mapped": mapped,
              "imputed": [{"variable": n, "value": modes[n], "from": "mode of the training cohort's train split"}
                          for n in imputed_names]}
    info = {**cohort.info, "schema": target.name, "mapping": report}
    info.pop("text_encoder", None)  # the source's texts are not the target's
    return Cohort(df=target.validate(df, task=cohort.task, where="mapped cohort"), schema=target, info=info,
                  task=cohort.task)


def describe(report: dict) -> str:
    """The mapping report as lines for a terminal."""
    lines = [f"mapped schema {report['source_schema']} onto {report['target_schema']}: {report['shared']} shared"]
    for m in report["mapped"]:
        extra = f" ({m['note']})" if m["note"] else ""
        lost = f"; {m['set_missing']} values without a counterpart set missing" if m["set_missing"] else ""
        lines.append(f"  mapped  {m['variable']} <- {m['from']}{extra}{lost}")
    for m in report["imputed"]:
        lines.append(f"  imputed {m['variable']} = {m['value']!r} (mode of the training cohort; written into "
                     "the text as a recorded value)")
    return "\n".join(lines)
