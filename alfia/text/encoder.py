"""The clinical-text encoder: an estimator that turns each cohort row into a fluent, deterministic description.

    encoder = TextEncoder("physionet2012", style="banded").fit(cohort.df)   # cut points from the train split
    texts = encoder.transform(cohort.df)
    encoded = encoder.encode(cohort)                                         # the cohort with its text column
    encoder.save("encoder.json"); TextEncoder.load("encoder.json")

It records the feature columns it was built for and refuses a table whose columns differ. Its schema is a registered
name or a :class:`~alfia.cohorts.schema.Schema`; a schema derived from the data is saved whole with the encoder
(``schema_definition``), so a run's encoder.json gives it back where no registry knows its name.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from alfia import __version__
from alfia.codec import config_from_dict
from alfia.cohorts.io import Cohort
from alfia.cohorts.registry import get_dataset
from alfia.cohorts.schema import ID, SPLIT, TEXT, Schema, column_mismatch
from alfia.cohorts.task import task_labels
from alfia.errors import AlfiaError
from alfia.io import write_text_atomic
from alfia.run_folder import RunFolder
from alfia.text.writer import BAND_QUANTILES, Writer

STYLES = ("numeric", "banded")
DEFAULT_STYLE = "banded"


@dataclass
class EncoderState:
    """What a fitted encoder saves (``TextEncoder.to_dict``), read back by the one config codec."""

    schema: str
    style: str
    columns: tuple[str, ...]
    cuts: dict
    alfia_version: str = ""
    schema_definition: dict | None = None  # a schema derived from the data (Schema.to_dict), else None


class TextEncoder:
    def __init__(self, schema: str | Schema, style: str = DEFAULT_STYLE):
        if style not in STYLES:
            raise AlfiaError(f"unknown text style {style!r}; choose one of {', '.join(STYLES)}")
        self.schema = schema if isinstance(schema, Schema) else get_dataset(schema).load_schema()
        self.schema_name = self.schema.name
        self.style = style
        self.columns_: list[str] | None = None
        self.cuts_: dict[str, list[float]] = {}
        self._describe = _template(self.schema)

    # -- estimator API ----------------------------------------------------------------------------
    def fit(self, df: pd.DataFrame) -> TextEncoder:
        """Record the columns; in the banded style, fit cut points on the rows of the train split only."""
        self._check_columns(df, self.schema.feature_columns)
        self.columns_ = list(self.schema.feature_columns)
        self.cuts_ = {}
        if self.style == "banded":
            if SPLIT not in df.columns or not (df[SPLIT] == "train").any():
                raise AlfiaError("the banded text style fits its cut points on the train split, "
                                 "but the table has no train rows; pass a cohort with its split column")
            train = df[df[SPLIT] == "train"]
            for col in self.schema.columns:
                if col.role != "feature" or col.kind not in ("float", "int"):
                    continue
                values = pd.to_numeric(train[col.name], errors="coerce").dropna().to_numpy(float)
                if len(values):
                    self.cuts_[col.name] = [float(q) for q in np.quantile(values, BAND_QUANTILES)]
        return self

    def transform(self, df: pd.DataFrame) -> pd.Series:
        if self.columns_ is None:
            raise AlfiaError("the text encoder is not fitted; call fit() or load a saved encoder")
        self._check_columns(df, self.columns_)
        # values a cohort would refuse (out of range, infinite, wrong type) are refused here too: never a wrong text
        rows = self.schema.check_features(df, self.columns_, where="the table to encode")
        texts = [self.describe_row(row) for row in rows.to_dict("records")]
        return pd.Series(texts, index=df.index, name=TEXT)

    def fit_transform(self, df: pd.DataFrame) -> pd.Series:
        return self.fit(df).transform(df)

    def encode(self, cohort: Cohort) -> Cohort:
        """The cohort with its ``text`` column written by this encoder, which it records in its ``info``."""
        if cohort.schema.name != self.schema_name:
            raise AlfiaError(f"the text encoder was built for schema {self.schema_name!r}, "
                             f"the cohort is {cohort.schema.name!r}")
        df = cohort.df.copy()
        df[TEXT] = self.transform(df)
        return Cohort(df=df, schema=cohort.schema, info={**cohort.info, "text_encoder": self.to_dict()})

    def writer(self, row: dict) -> Writer:
        return Writer(row, self.schema, self.style, self.cuts_)

    def describe_row(self, row: dict) -> str:
        return self._describe(self.writer(row))

    # -- persistence ----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        out = {"schema": self.schema_name, "style": self.style, "columns": self.columns_,
               "cuts": self.cuts_, "alfia_version": __version__}
        if self.schema.derived_from:   # no registry knows a derived schema by name: it is saved whole
            out["schema_definition"] = self.schema.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict) -> TextEncoder:
        state = config_from_dict(EncoderState, data, "the saved text encoder", "encode the cohort again")
        schema = state.schema
        if state.schema_definition is not None:
            schema = Schema.from_dict(state.schema_definition)
            if schema.name != state.schema:
                raise AlfiaError(f"the saved text encoder names schema {state.schema!r} but defines {schema.name!r}; "
                                 "encode the cohort again")
        encoder = cls(schema, state.style)
        encoder.columns_ = list(state.columns)
        try:
            encoder.cuts_ = {str(k): [float(x) for x in v] for k, v in state.cuts.items()}
        except (TypeError, ValueError):
            raise AlfiaError("the saved text encoder's cut points are not lists of numbers; "
                             "encode the cohort again") from None
        return encoder

    def save(self, path: str | os.PathLike) -> None:
        write_text_atomic(path, json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: str | os.PathLike) -> TextEncoder:
        path = Path(path)
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise AlfiaError(f"cannot read the text encoder {path} ({exc}); encode the cohort again") from None

    # -- checks ---------------------------------------------------------------------------------
    def _check_columns(self, df: pd.DataFrame, expected: list[str]) -> None:
        mismatch = column_mismatch(df.columns, expected,
                                   ignored={ID, SPLIT, TEXT, *task_labels(), *self.schema.reference_columns})
        if mismatch:
            raise AlfiaError(f"the table does not match the text encoder for {self.schema_name!r}: {mismatch}")


def _template(schema: Schema):
    """The text template of the data set that writes ``schema``'s texts (a derived schema: the one that derived it)."""
    if schema.derived_from:
        from alfia.cohorts.registry import dataset_names

        if schema.derived_from not in dataset_names():
            raise AlfiaError(f"schema {schema.name!r} was derived by data set {schema.derived_from!r}, which is not "
                             "registered here; install or import the package that registers it")
    return get_dataset(schema.dataset).load_template()


def load_encoder(source: str | os.PathLike) -> TextEncoder:
    """The text encoder saved in an encoded cohort (its metadata), a run folder, or an encoder JSON file."""
    source = Path(source)
    if source.is_dir():
        source = source / RunFolder.ENCODER
        if not source.exists():
            raise AlfiaError(f"{source.parent} holds no {RunFolder.ENCODER}; pass an encoded cohort or a run folder")
    if source.suffix == ".parquet":
        from alfia.cohorts import read_cohort

        info = read_cohort(source).info
        if "text_encoder" not in info:
            raise AlfiaError(f"{source} is not encoded; run `alfia encode` on it first")
        return TextEncoder.from_dict(info["text_encoder"])
    return TextEncoder.load(source)


def saved_encoder(files: RunFolder) -> TextEncoder | None:
    """The run's text encoder, or None for a run trained on given texts."""
    saved = files.encoder()
    return None if saved is None else TextEncoder.from_dict(saved)
