"""Build the ``eicu`` CW-24 cohort from an eICU-CRD v2.0 database (DuckDB file or PostgreSQL server).

Cohort: the first unit stay of each hospital stay (``patienthealthsystemstayid``; the unit stay with the latest
``hospitaladmitoffset``, i.e. the earliest unit admission, then ``unitvisitnumber``, then ``patientunitstayid``),
kept when its age is >= 18 and the hospital discharge status is known. Outcome: ``hospitaldischargestatus =
'Expired'``.

All times are minutes from unit admission. Measurements (GCS, labs, vitals) are taken from 0 <= offset < 1440;
past history and diagnoses from offset < 1440 (entries before unit admission are history, not leakage).

How each score is obtained (see docs/databases.md for the differences from the paper):

* APACHE IV: ``apachepatientresult.apachescore`` of ``apacheversion = 'IV'`` (-1 is missing) -- eICU's own
  first-APACHE-day score.
* SAPS II and OASIS: computed here from the first-24-h worst values (vitalperiodic/vitalaperiodic, lab,
  nursecharting GCS) plus APACHE day-1 urine output and ventilation (``apacheapsvar``), chronic diseases and
  elective surgery (``apachepredvar``) and the unit admission source (``patient``); missing components score 0,
  as in mimic-code.
* SOFA (hourly, hours 1..24): for hour h the worst value of each component over [0, 60 h) minutes -- respiration
  (PaO2/FiO2 from lab, ventilated from ``apacheapsvar``), coagulation (platelets), liver (bilirubin),
  cardiovascular (MAP < 70 only; vasopressor doses are not used), CNS (GCS), renal (creatinine only; no urine
  output) -- summed with missing components as 0; hours before the first observation have no value. The window is
  fixed: the series is NOT cut at unit discharge, because a discharge (or death) inside the first 24 h is an
  outcome-related signal that would otherwise shape ``sofa_mean``/``sofa_std``.

Values outside eicu-code's plausible ranges (``LAB_RANGES``, ``VITAL_RANGES``; the real tables hold e.g.
non-invasive blood pressures of 0) are not selected. A present but empty input table is allowed (the open eICU
demo lacks ``lab``, ``vitalperiodic`` and ``nursecharting``): the cohort's info lists it and what it did to each
feature (``FEATURE_TABLES``); a feature whose tables are all empty is missing, a score keeps its convention.

Splits are by patient (``uniquepid``): a patient's hospital stays all land in one split.

Leakage check (always on): every timed row a feature query selects is counted in SQL with the same SQL text for
an offset >= 1440 or a missing offset; any such row raises ``AlfiaError``. The hourly SOFA series is checked too:
hours 1..24 only, and every stay's series runs without a gap from its first observed hour to hour 24 (a series
cut short by discharge or death is refused).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from alfia.cohorts.io import Cohort
from alfia.cohorts.registry import BuildOptions
from alfia.cohorts.schema import ID
from alfia.cohorts.sqldb import (
    SOURCE_HELP,
    Database,
    check_leakage,
    connect,
    dynamic_stats,
    finish_cohort,
    map_category,
    progress_line,
    sql_list,
)
from alfia.datasets.eicu.schema import ETHNICITIES, SCHEMA, UNIT_TYPES
from alfia.errors import AlfiaError

logger = logging.getLogger(__name__)

HOW_TO_BUILD = (
    "build it from the eICU-CRD v2.0 CSVs with eicu-code's build-db/postgres scripts (schema eicu_crd; "
    "github.com/MIT-LCP/eicu-code) or load the CSVs into a DuckDB file (schema eicu_crd or main); "
    "see docs/databases.md"
)
TABLES = ("patient", "hospital", "apachepatientresult", "apacheapsvar", "apachepredvar", "pasthistory",
          "diagnosis", "nursecharting", "lab", "vitalperiodic", "vitalaperiodic")

# The input tables of every feature of the schema (a name or the prefix of the gcs_*/sofa_* statistics). A feature
# whose tables are all empty is missing; a score with some empty tables keeps its convention (missing components
# score 0). Both are recorded in the cohort's info (a database may hold some tables empty, as the open demo does).
FEATURE_TABLES = {
    "region": ("hospital",), "ethnicity": ("patient",), "unit_type": ("patient",), "gender": ("patient",),
    "age": ("patient",), "height": ("patient",), "weight": ("patient",), "smoker": ("pasthistory",),
    "alcohol_abuse": ("pasthistory", "diagnosis"), "drug_abuse": ("pasthistory", "diagnosis"),
    "obesity": ("pasthistory", "diagnosis"), "apache_iv": ("apachepatientresult",),
    "sapsii": ("patient", "vitalperiodic", "vitalaperiodic", "lab", "nursecharting", "apacheapsvar", "apachepredvar"),
    "oasis": ("patient", "vitalperiodic", "vitalaperiodic", "nursecharting", "apacheapsvar", "apachepredvar"),
    "gcs": ("nursecharting",),
    "sofa": ("lab", "nursecharting", "vitalperiodic", "vitalaperiodic", "apacheapsvar"),
}
SCORES = ("sapsii", "oasis", "sofa")  # missing components score 0

# --- code lists: case-insensitive substrings of pasthistory.pasthistorypath and diagnosis.diagnosisstring ---------
SMOKER_TERMS = ("smok", "tobacco", "nicotine")
# eICU files alcohol withdrawal under drug withdrawal ("...|drug withdrawal syndrome|alcohol", "toxicology|drug
# withdrawal|alcohol withdrawal": most "drug withdrawal" rows of the real demo): such a string is alcohol abuse, and a
# drug term counts as drug abuse only when the string names no alcohol (DRUG_NOT)
ALCOHOL_TERMS = ("alcohol abuse", "alcoholism", "alcohol dependence", "alcohol withdrawal", "etoh abuse",
                 "withdrawal syndrome|alcohol", "etoh withdrawal")
DRUG_TERMS = ("drug abuse", "substance abuse", "drug dependence", "drug withdrawal")
DRUG_NOT = ("alcohol", "etoh", "ethanol")
OBESITY_TERMS = ("obesity",)
GCS_CELLS = (("Glasgow coma score", "GCS Total"), ("Score (Glasgow Coma Scale)", "Value"))
LABS = {"platelets x 1000": "platelets", "total bilirubin": "bilirubin", "creatinine": "creatinine",
        "paO2": "pao2", "FiO2": "fio2", "BUN": "bun", "WBC x 1000": "wbc", "potassium": "potassium",
        "sodium": "sodium", "bicarbonate": "bicarbonate"}
SURGICAL_SOURCES = ("OPERATING ROOM", "RECOVERY ROOM", "PACU")
# plausible values (eicu-code's concepts/pivoted/pivoted-vital.sql, -lab.sql, -bg.sql); anything else is an artefact
# (the real tables hold e.g. non-invasive blood pressures of 0) and is not selected
LAB_RANGES = {"platelets x 1000": "v > 0 AND v <= 9999", "total bilirubin": "v >= 0.2 AND v <= 70.175",
              "creatinine": "v >= 0.1 AND v <= 28.28", "paO2": "v >= 15 AND v <= 720",
              "FiO2": "(v >= 0.2 AND v <= 1) OR (v >= 20 AND v <= 100)", "BUN": "v >= 1 AND v <= 280",
              "WBC x 1000": "v > 0 AND v <= 100", "potassium": "v >= 0.05 AND v <= 12",
              "sodium": "v >= 90 AND v <= 215", "bicarbonate": "v >= 0 AND v <= 9999"}
VITAL_RANGES = {"heartrate": (25, 225), "systemicsystolic": (1, 300), "systemicmean": (1, 250),
                "temperature": (25, 46), "respiration": (0, 60), "noninvasivesystolic": (25, 250),
                "noninvasivemean": (1, 250)}

# --- category mappings -----------------------------------------------------------------------------------------------
REGION_MAP = {r.upper(): r for r in ("Midwest", "Northeast", "South", "West")}
ETHNICITY_MAP = {e.upper(): e for e in ETHNICITIES if e != "Unknown"}
UNIT_TYPE_MAP = {u.upper(): u for u in UNIT_TYPES}
GENDER_MAP = {"FEMALE": "Female", "MALE": "Male"}  # Other, Unknown and empty are Unknown

MEASURE_LO, LIMIT = 0, 1440  # [0, 1440) minutes for measurements; the leakage check is fixed at 1440
WINDOW_MINUTES = 1440


def in_window(t: str) -> str:
    """Portable SQL predicate for measurements: 0 <= t < WINDOW_MINUTES."""
    return f"{t} >= {MEASURE_LO} AND {t} < {WINDOW_MINUTES}"


def before_end(t: str) -> str:
    """Portable SQL predicate for history and diagnoses: t < WINDOW_MINUTES."""
    return f"{t} < {WINDOW_MINUTES}"


LEAK = f"r.t IS NULL OR r.t >= {LIMIT}"


def _ages() -> str:
    return sql_list([str(a) for a in range(0, 90)])


def plausible(col: str, name: str | None = None) -> str:
    """``col`` as DOUBLE PRECISION when inside its plausible range (VITAL_RANGES by ``name``), else NULL."""
    lo, hi = VITAL_RANGES[name or col.rsplit(".", 1)[-1]]
    return f"CASE WHEN {col} >= {lo} AND {col} <= {hi} THEN CAST({col} AS DOUBLE PRECISION) END"


def _lab_ranges() -> str:
    return " OR ".join(f"(l.labname = '{name}' AND ({ok.replace('v ', 'l.labresult ')}))"
                       for name, ok in LAB_RANGES.items())


def _text(col: str) -> str:
    """A text column compared without case or surrounding spaces; the cast makes it work on a table loaded with
    CSV type sniffing too (an all-numeric age column becomes an integer there)."""
    return f"UPPER(TRIM(CAST({col} AS VARCHAR(100))))"


def cohort_cte(s: str) -> str:
    return f"""
    ranked AS (
      SELECT p.*, ROW_NUMBER() OVER (PARTITION BY p.patienthealthsystemstayid
                                     ORDER BY p.hospitaladmitoffset DESC, p.unitvisitnumber,
                                              p.patientunitstayid) AS stay_rank,
             CASE WHEN REPLACE({_text('p.age')}, ' ', '') = '>89' THEN 90
                  WHEN {_text('p.age')} IN {_ages()} THEN CAST({_text('p.age')} AS INTEGER) END AS age_years
      FROM {s}.patient p
    ),
    cohort AS (
      SELECT patientunitstayid AS stay_id, r.* FROM ranked r
      WHERE r.stay_rank = 1 AND r.age_years >= 18 AND {_text('r.hospitaldischargestatus')} IN ('ALIVE', 'EXPIRED')
    )"""


def _terms(col: str, terms) -> str:
    return " OR ".join(f"LOWER({col}) LIKE '%{t}%'" for t in terms)


def timed_sources(s: str) -> dict[str, str]:
    """Row-selecting SQL per timed source; every one has stay_id and t (minutes from unit admission)."""
    cells = " OR ".join(f"(n.nursingchartcelltypevallabel = '{lab}' AND n.nursingchartcelltypevalname = '{name}')"
                        for lab, name in GCS_CELLS)
    gcs_values = sql_list([str(v) for v in range(3, 16)])
    history = " OR ".join(f"({_terms('h.pasthistorypath', terms)})" for terms in
                          (SMOKER_TERMS, ALCOHOL_TERMS, DRUG_TERMS, OBESITY_TERMS))
    diagnoses = " OR ".join(f"({_terms('d.diagnosisstring', terms)})" for terms in
                            (ALCOHOL_TERMS, DRUG_TERMS, OBESITY_TERMS))
    cte = f"WITH {cohort_cte(s)}"
    return {
        "nursecharting (GCS)": f"""{cte}
            SELECT c.stay_id, n.nursingchartoffset AS t, CAST(TRIM(n.nursingchartvalue) AS INTEGER) AS value
            FROM cohort c JOIN {s}.nursecharting n ON n.patientunitstayid = c.stay_id
            WHERE ({cells}) AND TRIM(n.nursingchartvalue) IN {gcs_values} AND {in_window('n.nursingchartoffset')}""",
        "lab": f"""{cte}
            SELECT c.stay_id, l.labresultoffset AS t, l.labname, CAST(l.labresult AS DOUBLE PRECISION) AS value
            FROM cohort c JOIN {s}.lab l ON l.patientunitstayid = c.stay_id
            WHERE l.labname IN {sql_list(LABS)} AND ({_lab_ranges()})
              AND {in_window('l.labresultoffset')}""",
        "vitalperiodic": f"""{cte}
            SELECT c.stay_id, v.observationoffset AS t, {plausible('v.heartrate')} AS heartrate,
                   {plausible('v.systemicsystolic')} AS sbp, {plausible('v.systemicmean')} AS map,
                   {plausible('v.temperature')} AS temperature, {plausible('v.respiration')} AS resprate
            FROM cohort c JOIN {s}.vitalperiodic v ON v.patientunitstayid = c.stay_id
            WHERE {in_window('v.observationoffset')}""",
        "vitalaperiodic": f"""{cte}
            SELECT c.stay_id, v.observationoffset AS t, CAST(NULL AS DOUBLE PRECISION) AS heartrate,
                   {plausible('v.noninvasivesystolic')} AS sbp, {plausible('v.noninvasivemean')} AS map,
                   CAST(NULL AS DOUBLE PRECISION) AS temperature, CAST(NULL AS DOUBLE PRECISION) AS resprate
            FROM cohort c JOIN {s}.vitalaperiodic v ON v.patientunitstayid = c.stay_id
            WHERE {in_window('v.observationoffset')}""",
        "pasthistory": f"""{cte}
            SELECT c.stay_id, h.pasthistoryoffset AS t, LOWER(h.pasthistorypath) AS text
            FROM cohort c JOIN {s}.pasthistory h ON h.patientunitstayid = c.stay_id
            WHERE ({history}) AND {before_end('h.pasthistoryoffset')}""",
        "diagnosis": f"""{cte}
            SELECT c.stay_id, d.diagnosisoffset AS t, LOWER(d.diagnosisstring) AS text
            FROM cohort c JOIN {s}.diagnosis d ON d.patientunitstayid = c.stay_id
            WHERE ({diagnoses}) AND {before_end('d.diagnosisoffset')}""",
    }


def static_sql(s: str) -> str:
    return f"""
    WITH {cohort_cte(s)},
    apache AS (
      SELECT patientunitstayid, MAX(apachescore) AS apachescore FROM {s}.apachepatientresult
      WHERE {_text('apacheversion')} = 'IV' GROUP BY patientunitstayid
    ),
    aps AS (
      SELECT patientunitstayid, MAX(urine) AS urine, MAX(vent) AS vent, MAX(intubated) AS intubated
      FROM {s}.apacheapsvar GROUP BY patientunitstayid
    ),
    pred AS (
      SELECT patientunitstayid, MAX(electivesurgery) AS electivesurgery, MAX(aids) AS aids,
             MAX(lymphoma) AS lymphoma, MAX(leukemia) AS leukemia, MAX(metastaticcancer) AS metastaticcancer
      FROM {s}.apachepredvar GROUP BY patientunitstayid
    )
    SELECT c.stay_id,
           CASE WHEN {_text('c.hospitaldischargestatus')} = 'EXPIRED' THEN 1 ELSE 0 END AS {SCHEMA.task.label},
           hp.region, c.ethnicity, c.unittype AS unit_type, c.gender, c.age_years AS age,
           CAST(c.admissionheight AS DOUBLE PRECISION) AS height,
           CAST(c.admissionweight AS DOUBLE PRECISION) AS weight,
           a.apachescore AS apache_iv,
           c.uniquepid, c.hospitaladmitoffset, c.unitadmitsource,
           aps.urine, aps.vent, aps.intubated,
           pred.electivesurgery, pred.aids, pred.lymphoma, pred.leukemia, pred.metastaticcancer
    FROM cohort c
    LEFT JOIN {s}.hospital hp ON hp.hospitalid = c.hospitalid
    LEFT JOIN apache a ON a.patientunitstayid = c.stay_id
    LEFT JOIN aps ON aps.patientunitstayid = c.stay_id
    LEFT JOIN pred ON pred.patientunitstayid = c.stay_id
    """


def hourly(sql: str, aggregates: str) -> str:
    """Aggregate a timed source per stay and hour bucket (0..23), reading the very rows the leakage check saw."""
    return (f"SELECT r.stay_id, CAST(FLOOR(r.t / 60.0) AS INTEGER) AS hr, {aggregates} FROM ({sql}) r "
            "GROUP BY r.stay_id, CAST(FLOOR(r.t / 60.0) AS INTEGER)")


# --- scores ---------------------------------------------------------------------------------------------------------
def _points(values: pd.Series, bins: list[tuple[float, float]]) -> pd.Series:
    """Points of the first ``(upper_exclusive, points)`` bin a value falls below; missing values score NaN."""
    v = pd.to_numeric(values, errors="coerce").astype("float64")
    out = pd.Series(np.nan, index=v.index)
    done = pd.Series(False, index=v.index)
    for upper, pts in bins:
        hit = ~done & (v < upper)
        out[hit] = pts
        done |= hit
    return out


def _worst(*series: pd.Series) -> pd.Series:
    return pd.concat(series, axis=1).max(axis=1).fillna(0.0)


def fio2_fraction(fio2: pd.Series) -> pd.Series:
    """FiO2 as a fraction: eICU records per cent (21-100); values <= 1 are already fractions."""
    return fio2.where(fio2 <= 1.0, fio2 / 100.0).where((fio2 > 0) & (fio2 <= 100))


def sapsii(w: pd.DataFrame) -> pd.Series:
    """SAPS II (Le Gall 1993) from per-stay first-24-h worst values; missing components score 0."""
    pf_pts = _points(w["pf_min"], [(100, 11), (200, 9), (np.inf, 6)]).where(w["vent"] == 1)
    admission = np.where(w["electivesurgery"] == 1, 0.0, np.where(w["surgical"], 8.0, 6.0))
    chronic = np.select([w["aids"] == 1, (w["lymphoma"] == 1) | (w["leukemia"] == 1), w["metastaticcancer"] == 1],
                        [17.0, 10.0, 9.0], 0.0)
    parts = [
        _points(w["age"], [(40, 0), (60, 7), (70, 12), (75, 15), (80, 16), (np.inf, 18)]),
        _worst(_points(w["hr_min"], [(40, 11), (70, 2), (120, 0), (160, 4), (np.inf, 7)]),
               _points(w["hr_max"], [(40, 11), (70, 2), (120, 0), (160, 4), (np.inf, 7)])),
        _worst(_points(w["sbp_min"], [(70, 13), (100, 5), (200, 0), (np.inf, 2)]),
               _points(w["sbp_max"], [(70, 13), (100, 5), (200, 0), (np.inf, 2)])),
        _points(w["temp_max"], [(39, 0), (np.inf, 3)]),
        pf_pts,
        _points(w["urine"] / 1000.0, [(0.5, 11), (1.0, 4), (np.inf, 0)]),
        _points(w["bun_max"], [(28, 0), (84, 6), (np.inf, 10)]),
        _worst(_points(w["wbc_min"], [(1, 12), (20, 0), (np.inf, 3)]),
               _points(w["wbc_max"], [(1, 12), (20, 0), (np.inf, 3)])),
        _worst(_points(w["potassium_min"], [(3, 3), (5, 0), (np.inf, 3)]),
               _points(w["potassium_max"], [(3, 3), (5, 0), (np.inf, 3)])),
        _worst(_points(w["sodium_min"], [(125, 5), (145, 0), (np.inf, 1)]),
               _points(w["sodium_max"], [(125, 5), (145, 0), (np.inf, 1)])),
        _points(w["bicarbonate_min"], [(15, 6), (20, 3), (np.inf, 0)]),
        _points(w["bilirubin_max"], [(4, 0), (6, 4), (np.inf, 9)]),
        _points(w["gcs_min"], [(6, 26), (9, 13), (11, 7), (14, 5), (np.inf, 0)]),
        pd.Series(chronic, index=w.index),
        pd.Series(admission, index=w.index),
    ]
    return sum(p.fillna(0.0) for p in parts)


def oasis(w: pd.DataFrame) -> pd.Series:
    """OASIS (Johnson 2013, mimic-code's cut-offs) from per-stay first-24-h worst values; missing scores 0."""
    preicu = -w["hospitaladmitoffset"]  # minutes from hospital to unit admission
    hr = np.select([w["hr_max"] > 125, w["hr_min"] < 33, w["hr_max"] >= 107, w["hr_max"] >= 89], [6, 4, 3, 1], 0)
    mbp = np.select([w["map_min"] < 20.65, w["map_min"] < 51, w["map_max"] > 143.44, w["map_min"] < 61.33],
                    [4, 3, 3, 2], 0)
    rr = np.select([w["rr_min"] < 6, w["rr_max"] > 44, w["rr_max"] > 30, w["rr_max"] > 22, w["rr_min"] < 13],
                   [10, 9, 6, 1, 1], 0)
    tmax, tmin = w["temp_max"], w["temp_min"]
    temp = np.select([tmax > 39.88, tmin.between(33.22, 35.93), tmax.between(33.22, 35.93), tmin < 33.22,
                      (tmin > 35.93) & (tmin <= 36.39), tmax.between(36.89, 39.88)], [6, 4, 4, 3, 2, 2], 0)
    urine = w["urine"]
    uo = np.select([urine < 671.09, urine > 6896, urine.between(671.09, 1426.99), urine.between(1427, 2544.14)],
                   [10, 8, 5, 1], 0)
    parts = [
        _points(preicu, [(10.2, 5), (297, 3), (1440, 0), (18708, 2), (np.inf, 1)]),
        _points(w["age"], [(24, 0), (54, 3), (78, 6), (90, 9), (np.inf, 7)]),
        _points(w["gcs_min"], [(8, 10), (14, 4), (15, 3), (np.inf, 0)]),
        pd.Series(hr + mbp + rr + temp + uo, index=w.index, dtype="float64"),
        pd.Series(np.where(w["vent"] == 1, 9.0, 0.0), index=w.index),
        pd.Series(np.where(w["electivesurgery"] == 1, 0.0, 6.0), index=w.index),
    ]
    return sum(p.fillna(0.0) for p in parts)


SOFA_COMPONENTS = ("respiration", "coagulation", "liver", "cardiovascular", "cns", "renal")


def sofa_hourly(h: pd.DataFrame, static: pd.DataFrame) -> pd.DataFrame:
    """Hourly SOFA rows (stay_id, t = hour 1..24, value) from per-hour worst values ``h`` (stay_id, hr, ...)."""
    vent = h["stay_id"].map(static["vent"]).eq(1)
    pf = h["pf_min"]
    comp = pd.DataFrame({
        "stay_id": h["stay_id"], "hr": h["hr"],
        "respiration": np.where(vent & (pf < 100), 4, np.where(vent & (pf < 200), 3, np.select(
            [pf < 300, pf < 400, pf >= 400], [2, 1, 0], np.nan))),
        "coagulation": _points(h["platelets_min"], [(20, 4), (50, 3), (100, 2), (150, 1), (np.inf, 0)]),
        "liver": _points(h["bilirubin_max"], [(1.2, 0), (2, 1), (6, 2), (12, 3), (np.inf, 4)]),
        "cardiovascular": _points(h["map_min"], [(70, 1), (np.inf, 0)]),
        "cns": _points(h["gcs_min"], [(6, 4), (10, 3), (13, 2), (15, 1), (np.inf, 0)]),
        "renal": _points(h["creatinine_max"], [(1.2, 0), (2, 1), (3.5, 2), (5, 3), (np.inf, 4)]),
    })
    comp = comp.groupby(["stay_id", "hr"], as_index=False).max()
    stays = comp["stay_id"].unique()
    grid = pd.MultiIndex.from_product([stays, range(24)], names=["stay_id", "hr"])
    comp = comp.set_index(["stay_id", "hr"]).reindex(grid)
    observed = comp.notna().any(axis=1).astype(int).groupby(level=0).cummax().astype(bool)
    # worst so far, from unit admission to the end of each hour (cummax leaves gaps as NaN: carry it forward)
    worst = comp.groupby(level=0).cummax().groupby(level=0).ffill()
    out = worst.fillna(0).sum(axis=1)[observed].reset_index()
    out.columns = ["stay_id", "hr", "value"]
    out["t"] = out["hr"] + 1  # the hour's end, in hours from unit admission
    return out[["stay_id", "t", "value"]]


def check_sofa_window(series: pd.DataFrame) -> int:
    """The leakage check of the hourly SOFA series: hours 1..24 only, and each stay's series unbroken from its first
    hour to hour 24, so that its length carries no outcome-related timing (discharge, death). Returns rows checked."""
    t = pd.to_numeric(series["t"], errors="coerce")
    bad = int((t.isna() | (t < 1) | (t > WINDOW_MINUTES // 60)).sum())
    per_stay = t.groupby(series["stay_id"]).agg(["min", "max", "count"])
    cut = int(((per_stay["max"] != WINDOW_MINUTES // 60) |
               (per_stay["count"] != per_stay["max"] - per_stay["min"] + 1)).sum())
    if bad or cut:
        raise AlfiaError(f"leakage check failed for eICU: the hourly SOFA series has {bad} rows outside hours 1-24 "
                         f"and {cut} stays whose series does not run to hour 24; no cohort was written")
    return len(series)


# --- builder ---------------------------------------------------------------------------------------------------------
def build_eicu(db: str, progress: bool = True, schema: str | None = None) -> Cohort:
    """Build the ``eicu`` cohort from a DuckDB file or ``postgresql://`` URL (tables in ``eicu_crd`` by default;
    a database with the tables in ``main``/``public`` is found too)."""
    with connect(db, what="eICU database", how=HOW_TO_BUILD) as conn:
        s = schema or _find_schema(conn)
        missing = conn.missing(f"{s}.{t}" for t in TABLES)
        if missing:
            raise AlfiaError(f"eICU database {conn.label} lacks table{'s' if len(missing) > 1 else ''} "
                             f"{', '.join(missing)}; {HOW_TO_BUILD}")
        return _build(conn, s, progress)


def _find_schema(conn: Database) -> str:
    present = conn.tables()
    for s in ("eicu_crd", "eicu", "main", "public"):
        if (s, "patient") in present:
            return s
    return "eicu_crd"


def feature_columns(feature: str) -> list[str]:
    """The schema columns of a FEATURE_TABLES entry: the column itself, or the gcs_*/sofa_* statistics."""
    return [c.name for c in SCHEMA.columns if c.name == feature or c.name.startswith(f"{feature}_")]


def empty_tables(conn: Database, s: str) -> list[str]:
    """The input tables that hold no row."""
    return [t for t in TABLES if not int(conn.scalar(f"SELECT COUNT(*) FROM (SELECT 1 FROM {s}.{t} LIMIT 1) x"))]


def inputs_report(empty: list[str]) -> dict[str, str]:
    """What the empty tables do to each feature: missing (every input table empty), or a score computed without
    some of its components (they score 0)."""
    report = {}
    for feature, tables in FEATURE_TABLES.items():
        gone = [t for t in tables if t in empty]
        if not gone:
            continue
        if len(gone) == len(tables):
            report[feature] = f"missing: its input table{'s are' if len(gone) > 1 else ' is'} empty ({', '.join(gone)})"
        elif feature in SCORES:
            report[feature] = f"computed without the components from {', '.join(gone)} (empty; they score 0)"
        else:
            report[feature] = f"from {', '.join(t for t in tables if t not in gone)} only ({', '.join(gone)} empty)"
    return report


def _blank_features(out: pd.DataFrame, report: dict[str, str]) -> pd.DataFrame:
    """Set the features whose input tables are all empty to missing (a category to its Unknown, if it has one)."""
    for feature, effect in report.items():
        if not effect.startswith("missing"):
            continue
        for name in feature_columns(feature):
            col = SCHEMA[name]
            if col.kind == "category":
                out[name] = "Unknown" if "Unknown" in (col.categories or ()) else None
            else:
                out[name] = np.nan
    return out


def _build(conn: Database, s: str, progress: bool) -> Cohort:
    empty = empty_tables(conn, s)
    report = inputs_report(empty)
    if empty:
        logger.warning("eICU database %s: table%s %s %s empty; %s", conn.label, "s" if len(empty) > 1 else "",
                       ", ".join(empty), "are" if len(empty) > 1 else "is",
                       "; ".join(f"{k}: {v}" for k, v in report.items()))
    sources = timed_sources(s)
    progress_line(progress, f"eICU ({conn.dialect}): leakage check on {', '.join(sources)}")
    checked = check_leakage(conn, sources, LEAK, where="eICU")
    progress_line(progress, "eICU: cohort and demographics")
    st = _unit_stays(conn, s)
    progress_line(progress, "eICU: first-24-h measurements")
    gcs_rows = conn.query(sources["nursecharting (GCS)"])
    hours = _hourly_values(conn, sources, gcs_rows)
    worst = hours.drop(columns="hr").groupby("stay_id").agg(
        {c: ("min" if c.endswith("_min") else "max") for c in hours.columns if c not in ("stay_id", "hr")})
    w = st.join(worst, how="left")
    for col in worst.columns:
        w[col] = w[col].astype("float64")

    progress_line(progress, "eICU: SAPS II, OASIS, GCS and SOFA statistics")
    out = st[[ID, SCHEMA.task.label, "region", "ethnicity", "unit_type", "gender", "age", "height", "weight",
              "apache_iv"]].copy()
    unmapped: dict[str, int] = {}
    for name, mapping, unknown in (("region", REGION_MAP, "Unknown"), ("ethnicity", ETHNICITY_MAP, "Unknown"),
                                   ("unit_type", UNIT_TYPE_MAP, None), ("gender", GENDER_MAP, "Unknown")):
        out[name], n = map_category(out[name], mapping, unknown=unknown)
        if n and name != "gender":
            unmapped[name] = n
    out = _history_flags(conn, sources, out)
    out["sapsii"] = sapsii(w).round()
    out["oasis"] = oasis(w).round()
    out = out.join(dynamic_stats(gcs_rows, "gcs"), how="left")
    sofa = sofa_hourly(hours, st)
    checked["SOFA hourly series"] = check_sofa_window(sofa)
    out = out.join(dynamic_stats(sofa, "sofa"), how="left")
    out = _blank_features(out, report)

    approximations = ["SAPS II and OASIS computed from first-24-h worst values with APACHE day-1 urine output and "
                      "ventilation", "SOFA without vasopressor doses and urine output",
                      "smoker is Yes or Unknown (no explicit non-smoker source)"]
    cohort = finish_cohort(out, SCHEMA, where="eICU cohort",
                           source=f"eICU-CRD v2.0 database ({conn.dialect}: {conn.label}, schema {s})",
                           builder=f"{__name__}.build_eicu", checked=checked, unmapped=unmapped,
                           split_by="patient (patient.uniquepid)",
                           extra_info={"approximations": approximations, "empty_tables": empty,
                                       "features_from_empty_tables": report},
                           patient_ids=st["uniquepid"])
    progress_line(progress, f"eICU: {len(cohort.df)} stays, {cohort.df[SCHEMA.task.label].mean():.2%} deaths")
    return cohort


def _unit_stays(conn: Database, s: str) -> pd.DataFrame:
    """One row per adult unit stay with a known outcome (indexed by stay id): demographics and the day-1 APACHE
    values (urine, ventilation), numeric, with the unknowns as NaN."""
    st = conn.query(static_sql(s))
    if st.empty:
        raise AlfiaError(f"eICU database {conn.label} has no adult unit stays with a known outcome; {HOW_TO_BUILD}")
    st[ID] = st[ID].astype("int64")
    st = st.set_index(ID, drop=False)
    for col in ("hospitaladmitoffset", "urine", "vent", "intubated", "electivesurgery",
                "aids", "lymphoma", "leukemia", "metastaticcancer", "age", "height", "weight", "apache_iv"):
        st[col] = pd.to_numeric(st[col], errors="coerce").astype("float64")
    st["urine"] = st["urine"].where(st["urine"] >= 0)
    st["apache_iv"] = st["apache_iv"].where(st["apache_iv"] >= 0)
    st["vent"] = ((st["vent"] == 1) | (st["intubated"] == 1)).astype("float64")
    st["surgical"] = st["unitadmitsource"].fillna("").str.strip().str.upper().isin(SURGICAL_SOURCES)
    return st


def _hourly_values(conn: Database, sources: dict, gcs_rows: pd.DataFrame) -> pd.DataFrame:
    """Labs, vitals and GCS of the first 24 h, each stay-hour's worst value per measurement, and the P/F ratio."""
    labs = conn.query(hourly(sources["lab"], ", ".join(
        f"MIN(CASE WHEN r.labname = '{raw}' THEN r.value END) AS {name}_min, "
        f"MAX(CASE WHEN r.labname = '{raw}' THEN r.value END) AS {name}_max" for raw, name in LABS.items())))
    vitals = [conn.query(hourly(sources[v], "MIN(r.heartrate) AS hr_min, MAX(r.heartrate) AS hr_max, "
                                "MIN(r.sbp) AS sbp_min, MAX(r.sbp) AS sbp_max, MIN(r.map) AS map_min, "
                                "MAX(r.map) AS map_max, MIN(r.temperature) AS temp_min, "
                                "MAX(r.temperature) AS temp_max, MIN(r.resprate) AS rr_min, MAX(r.resprate) AS rr_max"))
              for v in ("vitalperiodic", "vitalaperiodic")]
    gcs_hourly = gcs_rows.assign(hr=(pd.to_numeric(gcs_rows["t"]) // 60).astype("int64"))
    gcs_hourly = gcs_hourly.groupby(["stay_id", "hr"], as_index=False)["value"].min().rename(
        columns={"value": "gcs_min"})
    parts = [labs, *vitals, gcs_hourly]
    columns = list(dict.fromkeys(c for p in parts for c in p.columns))
    # numeric first (DECIMAL and NULL-only columns come back as objects), empty parts left out (a table may be empty)
    parts = [p.apply(pd.to_numeric, errors="coerce").astype("float64") for p in parts if not p.empty]
    hours = (pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns, dtype="float64"))
    hours = hours.reindex(columns=columns)
    hours = hours.groupby(["stay_id", "hr"], as_index=False).agg(
        {c: ("min" if c.endswith("_min") else "max") for c in hours.columns if c not in ("stay_id", "hr")})
    fio2_max = fio2_fraction(hours["fio2_max"])
    hours["pf_min"] = hours["pao2_min"] / fio2_max
    return hours.astype({"stay_id": "int64", "hr": "int64"})


def _history_flags(conn: Database, sources: dict, out: pd.DataFrame) -> pd.DataFrame:
    """Smoker, alcohol and drug abuse, obesity: a term in the stay's past history or diagnoses."""
    flags = pd.concat([conn.query(sources["pasthistory"]), conn.query(sources["diagnosis"])], ignore_index=True)
    for col, terms in (("smoker", SMOKER_TERMS), ("alcohol_abuse", ALCOHOL_TERMS), ("drug_abuse", DRUG_TERMS),
                       ("obesity", OBESITY_TERMS)):
        text = flags["text"].fillna("")
        hit = text.apply(lambda x, terms=terms: any(t in x for t in terms))
        if col == "drug_abuse":
            hit &= ~text.apply(lambda x: any(t in x for t in DRUG_NOT))
        ids = set(pd.to_numeric(flags.loc[hit, "stay_id"]).astype("int64"))
        out[col] = out[ID].isin(ids).astype("float64")
    out["smoker"] = np.where(out["smoker"] == 1, "Yes", "Unknown").astype(object)
    return out


def build(options: BuildOptions) -> Cohort:
    """``alfia cohort eicu --source DATABASE``."""
    return build_eicu(options.require_source("eicu", SOURCE_HELP))
