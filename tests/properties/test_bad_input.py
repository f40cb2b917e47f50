"""Property-based tests (hypothesis): random bad values in a cohort row -- NaN, infinities, negative ages, GCS 0 or
20, empty strings, unicode, huge numbers, wrong types, duplicate ids -- are either refused with one clear
AlfiaError line or written into a correct text; never a crash, never a silently wrong text."""

from __future__ import annotations

import datetime
import functools

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alfia.cohorts.bundled import load_bundled
from alfia.cohorts.schema import ID, SPLIT
from alfia.cohorts.synthetic import generate_synthetic
from alfia.cohorts.task import CW24
from alfia.errors import AlfiaError
from alfia.text.encoder import TextEncoder

LABEL = CW24.label  # the outcome column of the CW-24 cohorts these tests build

SCHEMAS = ("physionet2012", "mimic-iv", "eicu")
ROWS = 30


@functools.cache
def base(schema: str) -> tuple[pd.DataFrame, TextEncoder]:
    cohort = load_bundled("p12-a") if schema == "physionet2012" else generate_synthetic(schema, 200, seed=3)
    df = cohort.df.head(ROWS).reset_index(drop=True)
    return df, TextEncoder(schema, style="numeric").fit(df)


NASTY = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0, 20, -1, -45.5, 1e308, -1e308, 3, 15, 0.5, 2**63, -(2**63) - 1]),
    st.text(max_size=12),  # empty strings and any unicode
    st.sampled_from(["", " ", "nan", "inf", "12", "١٢", "Ⅻ", "😀", "Female", "MICU", "\x00", "1e400"]),
    st.none(), st.booleans(),
    st.sampled_from([pd.NA, pd.NaT, b"bytes", (1, 2), datetime.date(2020, 1, 1), np.datetime64("2020-01-01"),
                     complex(1, 1)]),
)

BAD_TEXT = ("nan", "inf", "None", "<NA>", "NaT", "e+")


def _mutate(df: pd.DataFrame, column: str, row: int, value) -> pd.DataFrame:
    out = df.copy()
    out[column] = out[column].astype(object)
    out.at[row, column] = value
    return out


def _check_texts(texts: pd.Series, n: int) -> None:
    assert len(texts) == n
    for text in texts:
        assert isinstance(text, str) and text.strip()
        words = text.replace(",", " ").replace(".", " ").split()
        for bad in BAD_TEXT:
            assert bad not in words and not any(bad in w for w in words if bad == "e+"), (bad, text)


def _refused_clearly(exc: AlfiaError) -> None:
    message = str(exc)
    assert message and "\n" not in message and len(message) < 600


@pytest.mark.parametrize("schema", SCHEMAS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_validation_refuses_or_accepts_and_then_encodes(schema, data):
    df, encoder = base(schema)
    columns = [ID, LABEL, SPLIT, *encoder.columns_]
    column = data.draw(st.sampled_from(columns), label="column")
    row = data.draw(st.integers(0, ROWS - 1), label="row")
    value = data.draw(NASTY, label="value")
    bad = _mutate(df, column, row, value)
    try:
        valid = encoder.schema.validate(bad)
    except AlfiaError as exc:
        _refused_clearly(exc)
        return
    _check_texts(encoder.transform(valid), ROWS)


@pytest.mark.parametrize("schema", SCHEMAS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_encoder_refuses_what_validation_refuses_and_never_crashes(schema, data):
    df, encoder = base(schema)
    column = data.draw(st.sampled_from(encoder.columns_), label="column")
    row = data.draw(st.integers(0, ROWS - 1), label="row")
    value = data.draw(NASTY, label="value")
    bad = _mutate(df, column, row, value)
    try:
        texts = encoder.transform(bad)
    except AlfiaError as exc:
        _refused_clearly(exc)
        with pytest.raises(AlfiaError):
            encoder.schema.validate(bad)
        return
    encoder.schema.validate(bad)  # what the encoder wrote, validation accepts
    _check_texts(texts, ROWS)
    assert texts.tolist() == encoder.transform(encoder.schema.validate(bad)).tolist()


@settings(max_examples=30, deadline=None)
@given(i=st.integers(0, ROWS - 1), j=st.integers(0, ROWS - 1))
def test_duplicate_stay_ids_are_refused(i, j):
    df, encoder = base("physionet2012")
    bad = df.copy()
    bad.at[i, ID] = bad.at[j, ID]
    if i == j:
        encoder.schema.validate(bad)
        return
    with pytest.raises(AlfiaError, match="duplicate stay_id"):
        encoder.schema.validate(bad)


@settings(max_examples=25, deadline=None)
@given(note=st.text(min_size=8, max_size=60).filter(lambda t: t.strip() and not _is_number(t)))
def test_a_refusal_never_echoes_a_free_text_cell(note):
    """A note pasted into a numeric column is refused without repeating it (it may identify a patient)."""
    df, encoder = base("physionet2012")
    bad = _mutate(df, "age", 3, note)
    with pytest.raises(AlfiaError) as info:
        encoder.schema.validate(bad)
    assert note not in str(info.value) and "row 3" in str(info.value)


def _is_number(text: str) -> bool:
    try:
        float(text.strip())
    except ValueError:
        return False
    return True
