"""The ``yaib`` schema: a YAIB "mortality24" cohort (ricu's concepts) summarised CW-24 style, one row per ICU stay.

A YAIB cohort folder (github rvandewater/YAIB; made with the R package ricu) holds four static variables per stay
(``sta.parquet``) and 48 hourly variables (``dyn.parquet``: ricu averages each concept per hour, the hour floored).
This schema keeps the static variables as they are and, for every hourly variable, the CW-24 aggregates over the
hourly values of the first 24 hours (first, last, lowest, highest, mean and standard deviation; the one definition
of ``alfia.cohorts.sqldb.dynamic_stats``); urine output, which ricu sums per hour, is kept as its 24-hour total.
Names, units and plausible ranges are ricu's concept dictionary (``concept-dict.json``); where ricu sets no bound,
the range here is wide enough for every real value (values outside are set to missing by the builder, counted in
the cohort's info). The label column is the task's: ``icu_mortality`` (YAIB's mortality24, death in the ICU).
"""

from __future__ import annotations

from typing import NamedTuple

from alfia.cohorts.schema import Column, Schema
from alfia.cohorts.sqldb import STATS
from alfia.cohorts.task import YAIB_MORTALITY24

AT_ADMISSION = "at ICU admission (ricu's static concept)"
HOURS = "hourly values of [ICU admission, ICU admission + 24 h) (ricu's hours 0 to 23)"


class Variable(NamedTuple):
    """One of ricu's hourly concepts as YAIB exports it."""

    name: str  # ricu's concept name, the column of dyn.parquet
    words: str  # how a text names it
    unit: str | None  # ricu's unit (the first of its concept dictionary)
    valid: tuple[float, float]  # ricu's plausible range; a wide one where ricu sets no bound
    decimals: int  # rounding in the numeric text style
    group: str  # vitals, respiratory support, blood gas, chemistry, liver, cardiac, blood count, coagulation


# the 48 hourly variables of YAIB's mortality24 cohorts, in dyn.parquet's order (alphabetical)
VARIABLES: tuple[Variable, ...] = (
    Variable("alb", "albumin", "g/dL", (0, 6), 1, "liver"),
    Variable("alp", "alkaline phosphatase", "IU/L", (0, 20000), 0, "liver"),
    Variable("alt", "ALT", "IU/L", (0, 50000), 0, "liver"),
    Variable("ast", "AST", "IU/L", (0, 50000), 0, "liver"),
    Variable("be", "base excess", "mmol/L", (-25, 25), 0, "blood gas"),
    Variable("bicar", "bicarbonate", "mmol/L", (5, 50), 0, "chemistry"),
    Variable("bili", "bilirubin", "mg/dL", (0, 100), 1, "liver"),
    Variable("bili_dir", "direct bilirubin", "mg/dL", (0, 50), 1, "liver"),
    Variable("bnd", "band neutrophils", "%", (0, 100), 0, "blood count"),
    Variable("bun", "urea nitrogen", "mg/dL", (0, 200), 0, "chemistry"),
    Variable("ca", "calcium", "mg/dL", (4, 20), 1, "chemistry"),
    Variable("cai", "ionized calcium", "mmol/L", (0.5, 2), 2, "blood gas"),
    Variable("ck", "creatine kinase", "IU/L", (0, 500000), 0, "cardiac"),
    Variable("ckmb", "CK-MB", "ng/mL", (0, 10000), 1, "cardiac"),
    Variable("cl", "chloride", "mmol/L", (80, 130), 0, "chemistry"),
    Variable("crea", "creatinine", "mg/dL", (0, 15), 1, "chemistry"),
    Variable("crp", "C-reactive protein", "mg/L", (0, 10000), 0, "chemistry"),
    Variable("dbp", "diastolic pressure", "mmHg", (0, 200), 0, "vitals"),
    Variable("fgn", "fibrinogen", "mg/dL", (0, 1500), 0, "coagulation"),
    Variable("fio2", "inspired oxygen", "%", (21, 100), 0, "respiratory support"),
    Variable("glu", "glucose", "mg/dL", (0, 1000), 0, "chemistry"),
    Variable("hgb", "hemoglobin", "g/dL", (4, 18), 1, "blood count"),
    Variable("hr", "heart rate", "bpm", (0, 300), 0, "vitals"),
    Variable("inr_pt", "INR", None, (0, 50), 1, "coagulation"),
    Variable("k", "potassium", "mmol/L", (0, 10), 1, "chemistry"),
    Variable("lact", "lactate", "mmol/L", (0, 50), 1, "blood gas"),
    Variable("lymph", "lymphocytes", "%", (0, 100), 0, "blood count"),
    Variable("map", "mean arterial pressure", "mmHg", (0, 250), 0, "vitals"),
    Variable("mch", "MCH", "pg", (0, 100), 1, "blood count"),
    Variable("mchc", "MCHC", "%", (20, 50), 1, "blood count"),
    Variable("mcv", "MCV", "fL", (50, 150), 0, "blood count"),
    Variable("methb", "methemoglobin", "%", (0, 100), 1, "blood gas"),
    Variable("mg", "magnesium", "mg/dL", (0.5, 5), 1, "chemistry"),
    Variable("na", "sodium", "mmol/L", (110, 165), 0, "chemistry"),
    Variable("neut", "neutrophils", "%", (0, 100), 0, "blood count"),
    Variable("o2sat", "oxygen saturation", "%", (50, 100), 0, "vitals"),
    Variable("pco2", "PaCO2", "mmHg", (10, 150), 0, "blood gas"),
    Variable("ph", "pH", None, (6.8, 8), 2, "blood gas"),
    Variable("phos", "phosphate", "mg/dL", (0, 40), 1, "chemistry"),
    Variable("plt", "platelets", "K/uL", (5, 1200), 0, "blood count"),
    Variable("po2", "PaO2", "mmHg", (40, 600), 0, "blood gas"),
    Variable("ptt", "PTT", "sec", (0, 500), 0, "coagulation"),
    Variable("resp", "respiratory rate", "insp/min", (0, 120), 0, "vitals"),
    Variable("sbp", "systolic pressure", "mmHg", (0, 300), 0, "vitals"),
    Variable("temp", "temperature", "degC", (32, 42), 1, "vitals"),
    Variable("tnt", "troponin T", "ng/mL", (0, 1000), 2, "cardiac"),
    Variable("urine", "urine output", "mL", (0, 2000), 0, "vitals"),
    Variable("wbc", "white cells", "K/uL", (0, 1000), 1, "blood count"),
)
BY_NAME = {v.name: v for v in VARIABLES}
HOURLY = tuple(v.name for v in VARIABLES)  # the columns of dyn.parquet besides stay_id and time
AGGREGATED = tuple(v for v in HOURLY if v != "urine")  # the variables with the six CW-24 aggregates
URINE_TOTAL = "urine_total"  # urine: ricu's hourly sums added up over the 24 hours
URINE_HOURS = 24  # the most hours a 24-hour total can add up
SEXES = ("Female", "Male")
STAT_WORDS = {"max": "highest hourly value", "min": "lowest hourly value", "first": "first hourly value",
              "last": "last hourly value", "mean": "mean of the hourly values",
              "std": "standard deviation of the hourly values (ddof=1; 0 for a single value)"}


def _full_name(v: Variable) -> str:
    from_ricu = {"alt": "alanine aminotransferase", "ast": "aspartate aminotransferase", "ckmb": "creatine kinase MB",
                 "inr_pt": "prothrombin time, international normalized ratio",
                 "mch": "mean corpuscular hemoglobin", "mchc": "mean corpuscular hemoglobin concentration",
                 "mcv": "mean corpuscular volume", "pco2": "CO2 partial pressure (blood gas)",
                 "po2": "O2 partial pressure (blood gas)", "ptt": "partial thromboplastin time",
                 "bnd": "band form neutrophils", "fio2": "fraction of inspired oxygen",
                 "bun": "blood urea nitrogen", "wbc": "white blood cell count", "plt": "platelet count",
                 "dbp": "diastolic blood pressure", "sbp": "systolic blood pressure", "ph": "pH of blood"}
    return from_ricu.get(v.name, v.words)


def _aggregate_columns(v: Variable) -> list[Column]:
    lo, hi = v.valid
    cols = []
    for stat in STATS:
        valid = (0.0, float(hi - lo)) if stat == "std" else (float(lo), float(hi))
        cols.append(Column(f"{v.name}_{stat}", "float", f"{_full_name(v).capitalize()} ({v.name}): "
                           f"{STAT_WORDS[stat]}", unit=v.unit, valid=valid, window=HOURS,
                           decimals=v.decimals + (1 if stat == "std" else 0)))
    return cols


SCHEMA = Schema(
    name="yaib",
    description="YAIB mortality24 ICU stays (ricu concepts, any YAIB source): age, sex, height, weight and the "
                "CW-24 aggregates of 48 hourly variables over the first 24 hours",
    columns=(
        Column("age", "float", "Age (ricu; ages above 89 are recorded as 90)", unit="years", valid=(0, 120),
               window=AT_ADMISSION, decimals=0),
        Column("sex", "category", "Sex (ricu: Female or Male)", categories=SEXES, window=AT_ADMISSION),
        Column("height", "float", "Height (ricu)", unit="cm", valid=(10, 230), window=AT_ADMISSION, decimals=0),
        Column("weight", "float", "Weight (ricu)", unit="kg", valid=(1, 500), window=AT_ADMISSION, decimals=0),
        *[c for name in AGGREGATED for c in _aggregate_columns(BY_NAME[name])],
        Column(URINE_TOTAL, "float", "Urine output over the first 24 hours: the sum of ricu's hourly urine output "
               "(hours without a record add nothing; missing when no hour has one)", unit="mL",
               valid=(0.0, 2000.0 * URINE_HOURS), window=HOURS, decimals=0),
    ),
    notes=(
        "Every aggregate is over ricu's hourly values (each the mean of the measurements in that hour), not over the "
        "raw measurements: 'mean' is the mean of the hourly means, 'first' the first hour with a value.",
        "ricu floors times to the hour, so YAIB's row at 24 h holds 24:00-24:59, after the prediction time: the "
        "builder drops it (counted in the cohort's info).",
        "Ages above 89 are 90 (ricu); a variable a database does not record is missing for every stay.",
        "The label is YAIB's: death in the ICU (ricu's death_icu), not death in hospital.",
    ),
    task=YAIB_MORTALITY24,
)
