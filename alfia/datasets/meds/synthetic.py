"""A synthetic MEDS 0.4 dataset in MIMIC-IV-MEDS's code style, of any size, written shard by shard.

``write_synthetic_meds(root, n_subjects)`` writes ``root/data/{train,tuning,held_out}/{k}.parquet`` (at most
``shard_size`` subjects a shard, split 80/10/10 as MIMIC-IV-MEDS's ETL shards by split), ``metadata/codes.parquet``
(a description, and a LOINC parent where one applies, for every code), ``metadata/subject_splits.parquet`` and
``metadata/dataset.json``. Each shard is drawn with numpy, vectorised, sorted by subject then time (static rows,
``time`` null, first) and written in row groups of about a million rows; only one shard is ever in memory (about
``shard_size x days x 24 x 7`` rows: 10,000 subjects x a week is ~12 M rows and a peak RSS of ~0.8 GiB). With the
defaults, 10,000 subjects are ~11.7 M events, 46 MiB of zstd parquet, written in ~5 s (2 cores); 100,000 subjects
~117 M events, 457 MiB, ~60 s, peak RSS ~1 GiB.

Every subject has one hospital stay: ``GENDER//F|M`` (static), ``MEDS_BIRTH`` (18 to 90 years before the hospital
admission), ``HOSPITAL_ADMISSION//EW EMER.//EMERGENCY ROOM``, ``ICU_ADMISSION//Medical Intensive Care Unit (MICU)``
1 to 12 h later, hourly vitals in the ICU (every 4 h on the ward) as chartevents codes (``LAB//220045//bpm`` ...),
a lab panel every 6 to 12 h in the ICU (daily on the ward), hourly Foley urine output
(``SUBJECT_FLUID_OUTPUT//226559//ml``), other chart items (rhythm, GCS, alarm limits, some with a ``text_value``)
until the subject has about ``events_per_hour`` events an hour of the stay (a floor: the clinical events alone
are ~8.6 an hour in the ICU and ~2 on the ward, so the default 6 gives ~7 an hour overall), ``ICU_DISCHARGE//...`` and
``HOSPITAL_DISCHARGE//HOME`` (or another place; ``//DIED`` with ``MEDS_DEATH`` at the same time for those who die).
About 4 % of subjects (5 % of the survivors with over 2 days in the ICU) have a second ICU stay in the hospital
stay; about 3 % of stays are short (6 to 30 h).
Hospital stays last ``days`` on average (gamma, shape 4).

Labs come in MIMIC-IV-MEDS's newest form by default (``lab_style="result"``: ``LAB//SPECIMEN_COLLECTED//{itemid}``,
no value, at the draw and ``LAB//RESULT//{itemid}//{valueuom}`` with the value 0.5 to 3 h later, at the store time;
the ETL's commit b688fc7, April 2026) or its older form (``lab_style="legacy"``: ``LAB//{itemid}//{valueuom}`` at the
draw). Death is more likely with age and with a latent severity that raises heart rate, respiratory rate,
lactate, creatinine and urea and lowers blood pressure, SpO2, platelets and urine output (values also worsen in
the last 24 h of those who die), so a model of the first 24 h has signal; the intercept is solved so that the
expected death rate is ``death_rate``. Times have microsecond precision (2110 to 2120, MIMIC-style shifted years).
The data say nothing about real patients.
"""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime
from pathlib import Path
from statistics import NormalDist
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from alfia import __version__
from alfia.io import atomic_path, write_text_atomic

HOUR = 3_600_000_000  # microseconds
DAY = 24 * HOUR
YEAR = 31_557_600_000_000  # 365.25 days
BASE = int((datetime(2110, 1, 1) - datetime(1970, 1, 1)).total_seconds()) * 1_000_000
NULL_TIME = np.iinfo(np.int64).min  # sorts static rows first
ROW_GROUP = 1_000_000
SPLITS = (("train", 0.8), ("tuning", 0.1), ("held_out", 0.1))
FIRST_SUBJECT_ID = 10_000_000

# the MEDS 0.4 data schema (meds.DataSchema.schema(); tests check they agree)
DATA_SCHEMA = pa.schema([("subject_id", pa.int64()), ("time", pa.timestamp("us")), ("code", pa.string()),
                         ("numeric_value", pa.float32()), ("text_value", pa.large_string())])
CODES_SCHEMA = pa.schema([("code", pa.string()), ("description", pa.string()),
                          ("parent_codes", pa.list_(pa.string()))])
SPLITS_SCHEMA = pa.schema([("subject_id", pa.int64()), ("split", pa.string())])

MICU = "Medical Intensive Care Unit (MICU)"
GENDER = ("GENDER//F", "GENDER//M")
ADMISSION = "HOSPITAL_ADMISSION//EW EMER.//EMERGENCY ROOM"
ICU_IN, ICU_OUT = f"ICU_ADMISSION//{MICU}", f"ICU_DISCHARGE//{MICU}"
DISCHARGES = ("HOSPITAL_DISCHARGE//HOME", "HOSPITAL_DISCHARGE//HOME HEALTH CARE",
              "HOSPITAL_DISCHARGE//SKILLED NURSING FACILITY")
DISCHARGE_SHARES = (0.55, 0.3, 0.15)
DIED = "HOSPITAL_DISCHARGE//DIED"
EVENT_CODES = {  # code: description
    "GENDER//F": "Gender: F", "GENDER//M": "Gender: M", "MEDS_BIRTH": "Birth (MEDS reserved code)",
    "MEDS_DEATH": "Death (MEDS reserved code)", ADMISSION: "Hospital admission: EW EMER. from EMERGENCY ROOM",
    ICU_IN: f"ICU admission to the {MICU}", ICU_OUT: f"ICU discharge from the {MICU}",
    **{c: f"Hospital discharge to {c.split('//')[1]}" for c in DISCHARGES}, DIED: "Hospital discharge: DIED",
}


class Measure(NamedTuple):
    """A numeric item: its MIMIC-IV item, unit and how its values are drawn."""

    itemid: int
    uom: str
    label: str  # d_items / d_labitems label, the code's description
    loinc: str | None
    log: bool  # drawn on the log scale (skewed positive values)
    center: float  # typical value (median for log items)
    between: float  # SD of a subject's own level around the center (log units for log items)
    within: float  # SD of a measurement around the subject's level
    severity: float  # change of the subject's level per SD of severity
    dying: float  # extra change over the last 24 h before death
    lo: float
    hi: float
    decimals: int
    present: float  # chance of a value at each round / panel


VITALS = (
    Measure(220045, "bpm", "Heart Rate", "8867-4", False, 84, 12, 7, 7, 15, 25, 220, 0, 0.98),
    Measure(220179, "mmHg", "Non Invasive Blood Pressure systolic", "8480-6", False, 121, 15, 10, -7, -20, 40,
            250, 0, 0.9),
    Measure(220180, "mmHg", "Non Invasive Blood Pressure diastolic", "8462-4", False, 64, 9, 7, -4, -10, 20, 160,
            0, 0.9),
    Measure(220181, "mmHg", "Non Invasive Blood Pressure mean", "8478-0", False, 83, 0, 3, 0, 0, 25, 190, 0, 0.9),
    Measure(220210, "insp/min", "Respiratory Rate", "9279-1", False, 19, 3, 3, 2.5, 5, 4, 60, 0, 0.95),
    Measure(220277, "%", "O2 saturation pulseoxymetry", "59408-5", False, 96.5, 1.5, 1.5, -1.0, -4, 60, 100, 0,
            0.95),
    Measure(223762, "°C", "Temperature Celsius", "8310-5", False, 37.0, 0.35, 0.25, 0.25, 0.3, 33, 42, 1, 0.35),
)
LABS = (
    Measure(50912, "mg/dL", "Creatinine", "2160-0", True, 1.0, 0.45, 0.12, 0.25, 0.3, 0.1, 15, 1, 0.95),
    Measure(50983, "mEq/L", "Sodium", "2951-2", False, 139, 3.5, 1.5, -0.8, 0, 110, 170, 0, 0.95),
    Measure(50971, "mEq/L", "Potassium", "2823-3", False, 4.1, 0.4, 0.3, 0.15, 0.3, 2, 8, 1, 0.95),
    Measure(50813, "mmol/L", "Lactate", "32693-4", True, 1.4, 0.35, 0.2, 0.35, 0.6, 0.3, 25, 1, 0.5),
    Measure(51301, "K/uL", "White Blood Cells", "804-5", True, 9.5, 0.35, 0.15, 0.2, 0.2, 0.1, 100, 1, 0.95),
    Measure(51222, "g/dL", "Hemoglobin", "718-7", False, 10.8, 1.6, 0.5, -0.5, -0.5, 4, 18, 1, 0.95),
    Measure(51265, "K/uL", "Platelet Count", "777-3", True, 210, 0.4, 0.1, -0.18, -0.2, 5, 1000, 0, 0.95),
    Measure(50931, "mg/dL", "Glucose", "2345-7", True, 130, 0.25, 0.2, 0.08, 0.1, 40, 800, 0, 0.95),
    Measure(51006, "mg/dL", "Urea Nitrogen", "3094-0", True, 20, 0.5, 0.12, 0.3, 0.3, 2, 200, 0, 0.95),
)
URINE = Measure(226559, "ml", "Foley", "9187-6", True, 70, 0.5, 0.5, -0.35, -1.0, 0, 2000, 0, 0.85)
URINE_CODE = f"SUBJECT_FLUID_OUTPUT//{URINE.itemid}//{URINE.uom}"


class Filler(NamedTuple):
    """Another chart item, drawn to reach the event rate: integer values in [lo, hi] and/or texts."""

    code: str
    label: str
    lo: int | None
    hi: int | None
    texts: tuple[str, ...]


FILLERS = (
    Filler("LAB//220048//UNK", "Heart Rhythm", None, None,
           ("SR (Sinus Rhythm)", "ST (Sinus Tachycardia)", "SB (Sinus Bradycardia)", "AF (Atrial Fibrillation)")),
    Filler("LAB//220739//UNK", "GCS - Eye Opening", 1, 4, ("No Response", "To Pain", "To Speech", "Spontaneously")),
    Filler("LAB//223900//UNK", "GCS - Verbal Response", 1, 5,
           ("No Response-ETT", "Incomprehensible sounds", "Inappropriate Words", "Confused", "Oriented")),
    Filler("LAB//223901//UNK", "GCS - Motor Response", 1, 6,
           ("No response", "Abnormal extension", "Abnormal Flexion", "Flex-withdraws", "Localizes Pain",
            "Obeys Commands")),
    Filler("LAB//220046//bpm", "Heart rate Alarm - High", 110, 140, ()),
    Filler("LAB//220047//bpm", "Heart Rate Alarm - Low", 45, 60, ()),
    Filler("LAB//224641//UNK", "Alarms On", None, None, ("Yes",)),
)


def chart_code(m: Measure) -> str:
    return f"LAB//{m.itemid}//{m.uom}"


def lab_codes(m: Measure, lab_style: str) -> tuple[str, str | None]:
    """(code with the value, specimen code or None) of a lab item in ``lab_style``."""
    if lab_style == "legacy":
        return f"LAB//{m.itemid}//{m.uom}", None
    return f"LAB//RESULT//{m.itemid}//{m.uom}", f"LAB//SPECIMEN_COLLECTED//{m.itemid}"


class _Vocab:
    """The codes (and text values) of the dataset, indexed."""

    def __init__(self, lab_style: str):
        self.rows: list[tuple[str, str, list[str] | None]] = []
        for code, words in EVENT_CODES.items():
            self.add(code, words, None)
        for m in VITALS:
            self.add(chart_code(m), m.label, [f"LOINC/{m.loinc}"] if m.loinc else None)
        for m in LABS:
            value_code, specimen = lab_codes(m, lab_style)
            self.add(value_code, m.label, [f"LOINC/{m.loinc}"] if m.loinc else None)
            if specimen:
                self.add(specimen, f"{m.label} (specimen collected)", None)
        self.add(URINE_CODE, URINE.label, [f"LOINC/{URINE.loinc}"])
        for f in FILLERS:
            self.add(f.code, f.label, None)
        self.index = {code: i for i, (code, _, _) in enumerate(self.rows)}
        self.texts = sorted({t for f in FILLERS for t in f.texts})
        self.text_index = {t: i for i, t in enumerate(self.texts)}
        self.code_array = pa.array([r[0] for r in self.rows], pa.string())
        self.text_array = pa.array(self.texts, pa.large_string())

    def add(self, code: str, description: str, parents: list[str] | None) -> None:
        self.rows.append((code, description, parents))

    def __getitem__(self, code: str) -> int:
        return self.index[code]


class _Rows:
    """Columns of a shard, appended stream by stream (subject index, time, code, value, text)."""

    def __init__(self):
        self.parts: list[tuple[np.ndarray, ...]] = []

    def add(self, subj, times, code, value=None, text=None) -> None:
        n = len(subj)
        if n == 0:
            return
        code = np.full(n, code, np.int16) if np.isscalar(code) else code.astype(np.int16)
        value = np.full(n, np.nan, np.float32) if value is None else np.asarray(value, np.float32)
        text = np.full(n, -1, np.int16) if text is None else text.astype(np.int16)
        self.parts.append((subj.astype(np.int32), np.asarray(times, np.int64), code, value, text))

    def columns(self) -> tuple[np.ndarray, ...]:
        cols = tuple(np.concatenate([p[k] for p in self.parts]) for k in range(5))
        self.parts = []
        order = np.lexsort((cols[2], cols[1], cols[0]))  # subject, then time (static first), then code
        return tuple(c[order] for c in cols)


def _death_intercept(death_rate: float) -> float:
    """The intercept making the expected death rate ``death_rate`` (age uniform 18-90, severity normal)."""
    if death_rate <= 0:
        return -math.inf
    if death_rate >= 1:
        return math.inf
    age = np.linspace(18, 90, 145)[:, None]
    normal = NormalDist()
    severity = np.array([normal.inv_cdf(q) for q in (np.arange(400) + 0.5) / 400])[None, :]
    logit = _death_logit(age, severity)
    lo, hi = -30.0, 30.0
    for _ in range(60):
        mid = (lo + hi) / 2
        rate = float(np.mean(1 / (1 + np.exp(-(mid + logit)))))
        lo, hi = (mid, hi) if rate < death_rate else (lo, mid)
    return (lo + hi) / 2


def _death_logit(age, severity):
    return 0.045 * (age - 62) + 1.15 * severity


def _grid(rng: np.random.Generator, subj: np.ndarray, start: np.ndarray, end: np.ndarray, period,
          jitter: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Regular times in [start, end) of each interval, every ``period`` µs (a scalar or one per interval), each
    moved by up to ``jitter`` periods; (subject index, time) of every one."""
    period = np.broadcast_to(np.asarray(period, np.float64), start.shape)
    span = np.maximum(end - start, 0)
    count = np.ceil(span / period).astype(np.int64)
    idx = np.repeat(np.arange(len(start)), count)
    k = np.arange(len(idx)) - np.repeat(np.cumsum(count) - count, count)
    t = start[idx] + ((k + 0.5 + rng.uniform(-jitter, jitter, len(idx))) * period[idx]).astype(np.int64)
    keep = (t >= start[idx]) & (t < end[idx])
    return subj[idx[keep]], t[keep]


def _measure(rng, m: Measure, subj, times, level, severity, died, death_time) -> np.ndarray:
    """Values of measure ``m`` for the events (subject index, time): the subject's level, noise, and the worsening
    of the last 24 h of those who die."""
    closing = np.where(died[subj], np.clip(1 - (death_time[subj] - times) / DAY, 0, 1), 0.0)
    x = level[subj] + m.severity * severity[subj] + m.dying * closing
    x = x + rng.normal(0, m.within, len(subj))
    if m.log:
        x = np.exp(x)
    return np.round(np.clip(x, m.lo, m.hi), m.decimals)


def _level(rng, m: Measure, n: int) -> np.ndarray:
    center = math.log(m.center) if m.log else m.center
    return center + rng.normal(0, m.between, n) if m.between else np.full(n, center)


def _shard(rng: np.random.Generator, n: int, vocab: _Vocab, *, days: float, events_per_hour: float,
           intercept: float, lab_style: str) -> tuple[tuple[np.ndarray, ...], int]:
    """The rows of ``n`` subjects (subject index 0..n-1), sorted; and how many died."""
    rows = _Rows()
    everyone = np.arange(n)
    female = rng.random(n) < 0.44
    age = rng.uniform(18, 90, n)
    severity = rng.standard_normal(n)
    died = rng.random(n) < 1 / (1 + np.exp(-(intercept + _death_logit(age, severity))))

    admit = BASE + rng.integers(0, 10 * 365 * DAY, n)
    length = (days * DAY * rng.gamma(4.0, 0.25, n)).astype(np.int64)
    short = rng.random(n) < 0.03
    length[short] = (rng.uniform(6, 30, short.sum()) * HOUR).astype(np.int64)
    length = np.maximum(length, 6 * HOUR)
    pre = np.minimum(rng.uniform(1, 12, n) * HOUR, 0.3 * length).astype(np.int64)
    icu_in = admit + pre
    discharge = admit + length
    in_icu_death = died & (rng.random(n) < 0.7)
    post = np.where(in_icu_death, 0, ((length - pre) * rng.uniform(0.05, 0.4, n)).astype(np.int64))
    icu_out = discharge - post
    icu_span = icu_out - icu_in
    second = ~died & (rng.random(n) < 0.05) & (icu_span > 2 * DAY)
    first_out = np.where(second, icu_in + (0.45 * icu_span).astype(np.int64), icu_out)
    second_in = icu_in + (0.65 * icu_span).astype(np.int64)

    # static rows and the stay's events
    rows.add(everyone, np.full(n, NULL_TIME), np.where(female, vocab["GENDER//F"], vocab["GENDER//M"]))
    rows.add(everyone, admit - (age * YEAR).astype(np.int64), vocab["MEDS_BIRTH"])
    rows.add(everyone, admit, vocab[ADMISSION])
    rows.add(everyone, icu_in, vocab[ICU_IN])
    rows.add(everyone, first_out, vocab[ICU_OUT])
    two = np.flatnonzero(second)
    rows.add(two, second_in[two], vocab[ICU_IN])
    rows.add(two, icu_out[two], vocab[ICU_OUT])
    places = np.array([vocab[c] for c in DISCHARGES])[rng.choice(len(DISCHARGES), n, p=DISCHARGE_SHARES)]
    rows.add(everyone, discharge, np.where(died, vocab[DIED], places))
    dead = np.flatnonzero(died)
    rows.add(dead, discharge[dead], vocab["MEDS_DEATH"])

    # ICU and ward intervals (subject index, start, end)
    icu = (np.concatenate([everyone, two]), np.concatenate([icu_in, second_in[two]]),
           np.concatenate([first_out, icu_out[two]]))
    after = np.flatnonzero(post > 0)
    ward = (np.concatenate([everyone, two, after]), np.concatenate([admit, first_out[two], icu_out[after]]),
            np.concatenate([icu_in, second_in[two], discharge[after]]))

    # vitals: rounds hourly in the ICU, every 4 h on the ward; NIBP's three values together
    subj, t = (np.concatenate(x) for x in zip(_grid(rng, *icu, HOUR), _grid(rng, *ward, 4 * HOUR), strict=True))
    values = {}
    for m in VITALS:
        if m.itemid == 220181:
            values[m.itemid] = np.round((values[220179] + 2 * values[220180]) / 3 + rng.normal(0, m.within, len(t)))
        else:
            values[m.itemid] = _measure(rng, m, subj, t, _level(rng, m, n), severity, died, discharge)
    bp = rng.random(len(t)) < VITALS[1].present
    for m in VITALS:
        keep = bp if m.itemid in (220179, 220180, 220181) else rng.random(len(t)) < m.present
        rows.add(subj[keep], t[keep], vocab[chart_code(m)], values[m.itemid][keep])

    # lab panels: every 6-12 h in the ICU (one period per subject), daily on the ward; results 0.5-3 h after the
    # draw in the newest form (never after the hospital discharge)
    period = rng.uniform(6, 12, n) * HOUR
    subj, t = (np.concatenate(x) for x in zip(_grid(rng, *icu, period[icu[0]]), _grid(rng, *ward, DAY),
                                              strict=True))
    for m in LABS:
        keep = rng.random(len(t)) < m.present
        s, drawn = subj[keep], t[keep]
        value_code, specimen = lab_codes(m, lab_style)
        stored = drawn
        if specimen:
            rows.add(s, drawn, vocab[specimen])
            stored = np.minimum(drawn + (rng.uniform(0.5, 3, len(s)) * HOUR).astype(np.int64), discharge[s])
        rows.add(s, stored, vocab[value_code], _measure(rng, m, s, drawn, _level(rng, m, n), severity, died,
                                                        discharge))

    # urine output: hourly in the ICU (Foley)
    subj, t = _grid(rng, *icu, HOUR, jitter=0.45)
    keep = rng.random(len(t)) < URINE.present
    rows.add(subj[keep], t[keep], vocab[URINE_CODE],
             _measure(rng, URINE, subj[keep], t[keep], _level(rng, URINE, n), severity, died, discharge))

    # other chart items up to about events_per_hour an hour of the stay
    so_far = np.bincount(np.concatenate([p[0] for p in rows.parts]), minlength=n)
    wanted = rng.poisson(events_per_hour * length / HOUR)
    extra = np.maximum(wanted - so_far, 0)
    subj = np.repeat(everyone, extra)
    t = admit[subj] + (rng.random(len(subj)) * length[subj]).astype(np.int64)
    which = rng.integers(0, len(FILLERS), len(subj))
    for k, f in enumerate(FILLERS):
        sel = which == k
        s, tt = subj[sel], t[sel]
        value = text = None
        if f.lo is not None:
            value = rng.integers(f.lo, f.hi + 1, len(s)).astype(np.float32)
        if f.texts:
            lookup = np.array([vocab.text_index[x] for x in f.texts])
            if value is not None:  # a scale's text goes with its value (GCS: 4 = Spontaneously)
                text = lookup[value.astype(np.int64) - f.lo]
            else:
                text = lookup[rng.integers(0, len(f.texts), len(s))]
        rows.add(s, tt, vocab[f.code], value, text)
    return rows.columns(), int(died.sum())


def _write_shard(path: Path, cols: tuple[np.ndarray, ...], subject_ids: np.ndarray, vocab: _Vocab) -> None:
    subj, times, code, value, text = cols
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, DATA_SCHEMA, compression="zstd") as writer:
        for lo in range(0, len(subj), ROW_GROUP):
            sl = slice(lo, lo + ROW_GROUP)
            t, v, x = times[sl], value[sl], text[sl]
            table = pa.table({
                "subject_id": pa.array(subject_ids[subj[sl]], pa.int64()),
                "time": pa.array(t, pa.timestamp("us"), mask=t == NULL_TIME),
                "code": vocab.code_array.take(pa.array(code[sl])),
                "numeric_value": pa.array(v, pa.float32(), mask=np.isnan(v)),
                "text_value": vocab.text_array.take(pa.array(x, pa.int16(), mask=x < 0)),
            }, schema=DATA_SCHEMA)
            writer.write_table(table, row_group_size=ROW_GROUP)


def write_synthetic_meds(root, n_subjects: int, *, seed: int = 42, days: float = 7.0, events_per_hour: float = 6.0,
                         shard_size: int = 10_000, death_rate: float = 0.12, lab_style: str = "result") -> dict:
    """Write a synthetic MEDS 0.4 dataset of ``n_subjects`` subjects into ``root`` (see the module docstring).

    Returns ``{"root", "subjects", "events", "shards", "bytes", "deaths", "splits": {split: subjects},
    "seconds"}`` (``bytes``: all files written, data and metadata). The same arguments give the same data.
    """
    if n_subjects < 1 or shard_size < 1:
        raise ValueError("n_subjects and shard_size must be at least 1")
    if days <= 0 or events_per_hour < 0 or not 0 <= death_rate <= 1:
        raise ValueError("days must be positive, events_per_hour non-negative and death_rate in [0, 1]")
    if lab_style not in ("result", "legacy"):
        raise ValueError("lab_style is 'result' (LAB//RESULT//itemid//unit) or 'legacy' (LAB//itemid//unit)")
    started = time.perf_counter()
    root = Path(root)
    (root / "metadata").mkdir(parents=True, exist_ok=True)
    vocab = _Vocab(lab_style)
    intercept = _death_intercept(death_rate)

    ids = FIRST_SUBJECT_ID + np.arange(n_subjects, dtype=np.int64)
    order = np.random.default_rng([seed, 0]).permutation(n_subjects)
    bounds = np.round(np.cumsum([0] + [share for _, share in SPLITS]) * n_subjects).astype(int)
    split_of = np.empty(n_subjects, dtype=object)
    members = {}
    for (name, _), lo, hi in zip(SPLITS, bounds[:-1], bounds[1:], strict=True):
        members[name] = np.sort(ids[order[lo:hi]])
        split_of[order[lo:hi]] = name
    splits = pa.table({"subject_id": pa.array(ids, pa.int64()), "split": pa.array(split_of, pa.string())},
                      schema=SPLITS_SCHEMA)
    with atomic_path(root / "metadata" / "subject_splits.parquet") as tmp:
        pq.write_table(splits, tmp)

    events = deaths = shards = 0
    for name, _ in SPLITS:
        subjects = members[name]
        for k, lo in enumerate(range(0, len(subjects), shard_size)):
            shard_ids = subjects[lo:lo + shard_size]
            rng = np.random.default_rng([seed, 1, shards])
            cols, died = _shard(rng, len(shard_ids), vocab, days=days, events_per_hour=events_per_hour,
                                intercept=intercept, lab_style=lab_style)
            _write_shard(root / "data" / name / f"{k}.parquet", cols, shard_ids, vocab)
            events += len(cols[0])
            deaths += died
            shards += 1
            del cols

    codes, words, parents = zip(*vocab.rows, strict=True)
    table = pa.table({"code": list(codes), "description": list(words), "parent_codes": list(parents)},
                     schema=CODES_SCHEMA)
    with atomic_path(root / "metadata" / "codes.parquet") as tmp:
        pq.write_table(table, tmp)
    meta = {"dataset_name": "alfia-synthetic-MIMIC-IV-MEDS", "dataset_version": f"{n_subjects}-seed{seed}",
            "etl_name": "alfia.datasets.meds.synthetic", "etl_version": __version__, "meds_version": "0.4.1",
            "created_at": datetime.now(UTC).isoformat(timespec="seconds")}
    write_text_atomic(root / "metadata" / "dataset.json", json.dumps(meta, indent=2) + "\n")
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    return {"root": str(root), "subjects": n_subjects, "events": events, "shards": shards, "bytes": size,
            "deaths": deaths, "splits": {name: len(members[name]) for name, _ in SPLITS},
            "seconds": round(time.perf_counter() - started, 2)}
