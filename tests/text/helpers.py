"""Parsing clinical texts back, for the round-trip tests of every schema's template."""

import math
import re

import pandas as pd

from alfia.text.encoder import TextEncoder
from alfia.text.writer import format_number

NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?")
# digits that are part of words, not values (e.g. "SAPS II" has none; "PaO2/FiO2" has digits inside words)
WORD_DIGITS = re.compile(r"[A-Za-z]+\d+")


FIXED_PHRASES = ("24 hours",)  # numbers the templates write as words of their own


def numbers_in(text: str) -> list[str]:
    for phrase in FIXED_PHRASES:
        text = text.replace(phrase, " ")
    return NUMBER.findall(WORD_DIGITS.sub(" ", text))


def assert_round_trip(encoder: TextEncoder, row: dict) -> None:
    """Every number in the text, read back in order, equals the row's value after the documented rounding;
    every feature that has a value is in the text (as a number or implied by words)."""
    features = {k: row[k] for k in encoder.columns_}
    writer = encoder.writer(features)
    text = encoder._describe(writer)
    assert numbers_in(text) == [t for _, t in writer.numbers], text
    shown = set()
    for names, written in writer.numbers:
        for name in names:
            col = encoder.schema[name]
            assert float(written) == float(format_number(float(row[name]), col.text_decimals)), (name, text)
            shown.add(name)
    for name, value in writer.implied:
        assert math.isclose(float(row[name]), value, abs_tol=1e-9), (name, text)
        shown.add(name)
    numeric = [c.name for c in encoder.schema.columns
               if c.role == "feature" and c.kind in ("float", "int") and not pd.isna(row[c.name])]
    assert set(numeric) <= shown, (set(numeric) - shown, text)
