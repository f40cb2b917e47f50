"""The sentence writer the per-schema templates use: number rounding, units, band words, abbreviations
expanded once, and one consistent rule for missing values (omitted where they occur, then listed once at the
end as "not recorded").

A template only says *what* to write; the writer decides *how* a value is shown in each text style:
``numeric`` writes "lactate 4.2 mmol/L", ``banded`` writes "lactate high" with cut points fitted on the
training split.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping

from alfia.cohorts.schema import Schema

BANDS = ("very low", "low", "typical", "high", "very high")
# Quantiles of the training split that separate the five bands.
BAND_QUANTILES = (0.05, 0.25, 0.75, 0.95)

ABBREVIATIONS = {
    "GCS": "Glasgow Coma Scale",
    "SOFA": "Sequential Organ Failure Assessment",
    "SAPS II": "Simplified Acute Physiology Score II",
    "OASIS": "Oxford Acute Severity of Illness Score",
    "SIRS": "Systemic Inflammatory Response Syndrome",
    "APACHE III": "Acute Physiology and Chronic Health Evaluation III",
    "APACHE IV": "Acute Physiology and Chronic Health Evaluation IV",
    "LODS": "Logistic Organ Dysfunction Score",
    "MELD": "Model for End-Stage Liver Disease",
    "BMI": "body mass index",
    "ICU": "intensive care unit",
    "MAP": "mean arterial pressure",
    "BUN": "blood urea nitrogen",
    "WBC": "white blood cell count",
    "PaO2/FiO2": "arterial oxygen tension / inspired oxygen fraction",
    "HCO3": "bicarbonate",
    "SD": "standard deviation",
}


# How a schema unit is written in a text (None: not written, e.g. points of a score).
UNIT_TEXT = {"points": None, "criteria": None, "score": None, "kg/m2": None, "degC": "°C",
             "10^3/uL": "K/uL", "breaths/min": "/min"}


def format_number(value: float, decimals: int) -> str:
    """Round half away from zero to ``decimals`` places; never prints "-0"."""
    scaled = abs(value) * 10**decimals
    rounded = math.floor(scaled + 0.5) / 10**decimals
    if rounded == 0:
        return f"{0:.{decimals}f}"
    return f"{math.copysign(rounded, value):.{decimals}f}"


def band_of(value: float, cuts: Iterable[float]) -> str:
    """The band word of ``value`` given four ascending cut points (a value equal to a cut is in the lower band)."""
    return BANDS[bisect.bisect_left(list(cuts), value)]


class Writer:
    """Writes one stay. Create one per text: it remembers which abbreviations it has already expanded."""

    def __init__(self, row: Mapping, schema: Schema, style: str, cuts: Mapping[str, list[float]]):
        self.row = row
        self.schema = schema
        self.style = style
        self.cuts = cuts
        self._expanded: set[str] = set()
        self.missing: list[str] = []
        # (columns, number as written), in text order: lets tests parse the numbers of a text back
        self.numbers: list[tuple[tuple[str, ...], str]] = []
        self.implied: list[tuple[str, float]] = []  # values the words imply ("throughout": SD 0)

    # -- values ---------------------------------------------------------------------------------
    def has(self, name: str) -> bool:
        value = self.row[name]
        return value is not None and not (isinstance(value, float) and math.isnan(value))

    def raw(self, name: str):
        return self.row[name] if self.has(name) else None

    def rounded(self, name: str) -> str | None:
        if not self.has(name):
            return None
        return format_number(float(self.row[name]), self.schema[name].text_decimals)

    def num(self, name: str, *same: str) -> str | None:
        """The rounded number alone (both styles), or None when missing. ``same``: other columns this one
        number stands for (e.g. the lowest and highest value when they are equal)."""
        text = self.rounded(name)
        if text is not None:
            self.numbers.append(((name, *same), text))
        return text

    def unit(self, name: str) -> str:
        unit = self.schema[name].unit
        unit = UNIT_TEXT.get(unit, unit)
        return f" {unit}" if unit else ""

    def banded(self, name: str) -> bool:
        return self.style == "banded" and name in self.cuts

    def band(self, name: str) -> str | None:
        return band_of(float(self.row[name]), self.cuts[name]) if self.has(name) else None

    def value(self, name: str, unit: bool = True) -> str | None:
        """The value as this style shows it: "4.2 mmol/L" (numeric) or "high" (banded); None when missing."""
        if not self.has(name):
            return None
        if self.banded(name):
            return self.band(name)
        return self.num(name) + (self.unit(name) if unit else "")

    def span(self, low: str, high: str, label: str) -> str | None:
        """"label 58 to 80 bpm" (numeric) or "lowest label low, highest typical" (banded); once when equal;
        None (and ``label`` noted as not recorded) when both are missing."""
        if not self.has(low) or not self.has(high):
            if not self.has(low) and not self.has(high):
                self.missing.append(label)
                return None
            name = low if self.has(low) else high
            return f"{'lowest' if name == low else 'highest'} {label} {self.value(name)}"
        if self.banded(low):  # each column has its own bands: say which band belongs to which
            a, b = self.band(low), self.band(high)
            return f"{label} {a}" if a == b else f"lowest {label} {a}, highest {b}"
        if self.rounded(low) == self.rounded(high):
            return f"{label} {self.num(low, high)}{self.unit(low)}"
        return f"{label} {self.num(low)} to {self.num(high)}{self.unit(high)}"

    def span_last(self, low: str, high: str, last: str, label: str) -> str | None:
        """:meth:`span` and the last value: "heart rate 62 to 110 bpm, last 80" (numeric) or "lowest heart rate low,
        highest high, last typical" (banded); the last value is left out when it adds nothing (the same band as both
        ends, or equal to one of them)."""
        span = self.span(low, high, label)
        if span is None or not self.has(last):
            return span
        if self.banded(last) and self.has(low) and self.has(high):
            if self.band(last) == self.band(low) == self.band(high):
                return span
            return f"{span}, last {self.band(last)}"
        if self.rounded(last) in (self.rounded(low), self.rounded(high)):
            return span
        return f"{span}, last {self.value(last, unit=False)}"

    def measure(self, name: str, label: str, unit: bool = True) -> str | None:
        """"label value", or None (and ``label`` noted as not recorded) when the value is missing."""
        shown = self.value(name, unit=unit)
        if shown is None:
            self.missing.append(label)
            return None
        return f"{label} {shown}"

    # -- words ----------------------------------------------------------------------------------
    def expanded(self, short: str) -> bool:
        return short in self._expanded

    def abbr(self, short: str) -> str:
        """"Glasgow Coma Scale (GCS)" the first time in this text, then "GCS"."""
        if short in self._expanded:
            return short
        self._expanded.add(short)
        return f"{ABBREVIATIONS[short]} ({short})"

    @staticmethod
    def sentence(parts: Iterable[str | None], lead: str = "") -> str:
        """Join the present parts into one sentence; "" when none is present."""
        present = [p for p in parts if p]
        if not present:
            return ""
        body = lead + ", ".join(present)
        return body[0].upper() + body[1:] + "."

    def missing_sentence(self) -> str:
        if not self.missing:
            return ""
        return "Not recorded: " + ", ".join(self.missing) + "."

    @staticmethod
    def join(sentences: Iterable[str]) -> str:
        return " ".join(s for s in sentences if s)
