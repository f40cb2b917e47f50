"""Build the ``mimic-iv`` CW-24 cohort from a MIMIC-IV database with mimic-code's derived concepts.

``build_mimic_iv(db)`` reads a DuckDB file or a PostgreSQL server built with mimic-code (schemas ``mimiciv_hosp``,
``mimiciv_icu`` and ``mimiciv_derived``) and returns a validated ``Cohort`` (splits from ``assign_splits``).

Cohort: the first ICU stay of each patient's first hospital admission with an ICU stay (ordered by admission time,
then ICU admission time, then ``stay_id``); the patient is kept when that admission's age is >= 18. Later stays and
later admissions of the same patient are excluded; no diagnostic exclusion. Outcome: ``admissions.
hospital_expire_flag``.

Windows: demographics and admission data are known at admission; height, weight and the severity scores are
mimic-code's first-day tables (6 h before to 24 h after ICU admission; ``first_day_weight`` also uses weights
charted before that); GCS values are ``mimiciv_derived.gcs`` rows charted in [intime, intime + 24 h); SOFA values
are the hourly ``mimiciv_derived.sofa.sofa_24hours`` rows whose hour ends in [intime, intime + 24 h). Smoker and
alcohol abuse come from the admission's ``diagnoses_icd`` (code lists below; see docs/databases.md for the caveat
that ICD codes are assigned at discharge).

Leakage check (always on): every timed row a feature query selects is counted in SQL, with the same SQL text,
for a time at or after intime + 24 h or a missing time; any such row raises ``AlfiaError``.
"""

from __future__ import annotations

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
)
from alfia.datasets.mimic_iv.schema import ADMISSION_LOCATIONS, ADMISSION_TYPES, CARE_UNITS, SCHEMA
from alfia.errors import AlfiaError

HOW_TO_BUILD = (
    "build it with mimic-code (github.com/MIT-LCP/mimic-code, v2.4 or later): mimic-iv/buildmimic/duckdb "
    "(or buildmimic/postgres) to load the MIMIC-IV CSVs, then the mimic-iv concepts (concepts_duckdb or "
    "concepts_postgres, schema mimiciv_derived); see docs/databases.md"
)

REQUIRED_TABLES = (
    "mimiciv_hosp.patients", "mimiciv_hosp.admissions", "mimiciv_hosp.diagnoses_icd", "mimiciv_icu.icustays",
    "mimiciv_derived.age", "mimiciv_derived.first_day_height", "mimiciv_derived.first_day_weight",
    "mimiciv_derived.apsiii", "mimiciv_derived.sapsii", "mimiciv_derived.sirs", "mimiciv_derived.lods",
    "mimiciv_derived.meld", "mimiciv_derived.oasis", "mimiciv_derived.gcs", "mimiciv_derived.sofa",
)

# --- code lists (diagnoses_icd.icd_code, stored without dots; matched as prefixes per ICD version) ---------------
# Current tobacco use. History-of codes (ICD-9 V15.82, ICD-10 Z87.891) are deliberately not included.
SMOKER_ICD9 = ("3051", "6490")  # 305.1 tobacco use disorder; 649.0x tobacco use complicating pregnancy
SMOKER_ICD10 = ("F17", "Z720", "O9933")  # F17.x nicotine dependence; Z72.0 tobacco use; O99.33x in pregnancy
# Alcohol abuse (not dependence: ICD-9 303.x and ICD-10 F10.2x are not included).
ALCOHOL_ICD9 = ("3050",)  # 305.0x alcohol abuse
ALCOHOL_ICD10 = ("F101",)  # F10.1x alcohol abuse

# --- category mappings (raw values compared stripped and upper-cased) --------------------------------------------
GENDER_MAP = {"F": "Female", "M": "Male"}
MARITAL_MAP = {"DIVORCED": "Divorced", "MARRIED": "Married", "SINGLE": "Single", "WIDOWED": "Widowed"}
INSURANCE_MAP = {"MEDICAID": "Medicaid", "MEDICARE": "Medicare", "NO CHARGE": "No Charge", "OTHER": "Other",
                 "PRIVATE": "Private"}
RACE_UNKNOWN = ("UNKNOWN", "UNABLE TO OBTAIN", "PATIENT DECLINED TO ANSWER")


def race_group(race: str) -> str:
    """admissions.race (upper case) -> White, Black, Hispanic/Latino, Asian, Other or Unknown."""
    if race in RACE_UNKNOWN:
        return "Unknown"
    if race.startswith("WHITE") or race == "PORTUGUESE":
        return "White"
    if race.startswith("BLACK"):
        return "Black"
    if race.startswith("HISPANIC") or race == "SOUTH AMERICAN":
        return "Hispanic/Latino"
    if race.startswith("ASIAN"):
        return "Asian"
    return "Other"  # AMERICAN INDIAN/ALASKA NATIVE, NATIVE HAWAIIAN OR OTHER PACIFIC ISLANDER, MULTIPLE ..., OTHER


def language_group(language: str) -> str:
    """admissions.language: English; '?' (v2.x unknown) is Unknown; any other language is Other."""
    if language == "ENGLISH":
        return "English"
    if language == "?":
        return "Unknown"
    return "Other"


# --- SQL -----------------------------------------------------------------------------------------------------------
WINDOW_HOURS = 24  # the feature window; the leakage check below is fixed at 24 h and independent of it


def in_window(t: str, t0: str) -> str:
    """Portable SQL predicate: ``t`` in [t0, t0 + WINDOW_HOURS h)."""
    return f"{t} >= {t0} AND {t} < {t0} + INTERVAL '{WINDOW_HOURS} hours'"


LEAK = "r.t IS NULL OR r.t0 IS NULL OR r.t >= r.t0 + INTERVAL '24 hours'"


def cohort_cte() -> str:
    return """
    ranked AS (
      SELECT ie.subject_id, ie.hadm_id, ie.stay_id, ie.intime, ie.first_careunit,
             ROW_NUMBER() OVER (PARTITION BY ie.subject_id
                                ORDER BY adm.admittime, ie.intime, ie.stay_id) AS stay_rank
      FROM mimiciv_icu.icustays ie
      JOIN mimiciv_hosp.admissions adm ON adm.hadm_id = ie.hadm_id
      WHERE ie.intime IS NOT NULL
    ),
    cohort AS (
      SELECT r.subject_id, r.hadm_id, r.stay_id, r.intime, r.first_careunit, ag.age
      FROM ranked r
      JOIN mimiciv_derived.age ag ON ag.hadm_id = r.hadm_id
      WHERE r.stay_rank = 1 AND ag.age >= 18
    )"""


def _icd_flag(v9: tuple[str, ...], v10: tuple[str, ...]) -> str:
    like9 = " OR ".join(f"TRIM(d.icd_code) LIKE '{c}%'" for c in v9)
    like10 = " OR ".join(f"TRIM(d.icd_code) LIKE '{c}%'" for c in v10)
    return (f"CASE WHEN EXISTS (SELECT 1 FROM mimiciv_hosp.diagnoses_icd d WHERE d.hadm_id = c.hadm_id AND "
            f"((d.icd_version = 9 AND ({like9})) OR (d.icd_version = 10 AND ({like10})))) THEN 1 ELSE 0 END")


def static_sql() -> str:
    return f"""
    WITH {cohort_cte()}
    SELECT c.stay_id, adm.hospital_expire_flag AS hospital_mortality,
           p.gender, c.age, adm.marital_status, adm.race, adm.insurance, adm.language,
           adm.admission_type, adm.admission_location, c.first_careunit,
           h.height, w.weight,
           {_icd_flag(SMOKER_ICD9, SMOKER_ICD10)} AS smoker,
           {_icd_flag(ALCOHOL_ICD9, ALCOHOL_ICD10)} AS alcohol_abuse,
           a3.apsiii, sp.sapsii, si.sirs, lo.lods, me.meld, oa.oasis
    FROM cohort c
    JOIN mimiciv_hosp.admissions adm ON adm.hadm_id = c.hadm_id
    JOIN mimiciv_hosp.patients p ON p.subject_id = c.subject_id
    LEFT JOIN mimiciv_derived.first_day_height h ON h.stay_id = c.stay_id
    LEFT JOIN mimiciv_derived.first_day_weight w ON w.stay_id = c.stay_id
    LEFT JOIN mimiciv_derived.apsiii a3 ON a3.stay_id = c.stay_id
    LEFT JOIN mimiciv_derived.sapsii sp ON sp.stay_id = c.stay_id
    LEFT JOIN mimiciv_derived.sirs si ON si.stay_id = c.stay_id
    LEFT JOIN mimiciv_derived.lods lo ON lo.stay_id = c.stay_id
    LEFT JOIN mimiciv_derived.meld me ON me.stay_id = c.stay_id
    LEFT JOIN mimiciv_derived.oasis oa ON oa.stay_id = c.stay_id
    """


def timed_sources() -> dict[str, str]:
    """Row-selecting SQL per timed source: columns stay_id, t (row time), t0 (ICU admission), value."""
    return {
        "mimiciv_derived.gcs": f"""
            WITH {cohort_cte()}
            SELECT c.stay_id, g.charttime AS t, c.intime AS t0, g.gcs AS value
            FROM cohort c JOIN mimiciv_derived.gcs g ON g.stay_id = c.stay_id
            WHERE g.gcs IS NOT NULL AND {in_window('g.charttime', 'c.intime')}""",
        "mimiciv_derived.sofa": f"""
            WITH {cohort_cte()}
            SELECT c.stay_id, s.endtime AS t, c.intime AS t0, s.sofa_24hours AS value
            FROM cohort c JOIN mimiciv_derived.sofa s ON s.stay_id = c.stay_id
            WHERE s.sofa_24hours IS NOT NULL AND {in_window('s.endtime', 'c.intime')}""",
    }


# --- builder ---------------------------------------------------------------------------------------------------------
def build_mimic_iv(db: str, progress: bool = True) -> Cohort:
    """Build the ``mimic-iv`` cohort from a mimic-code DuckDB file or ``postgresql://`` URL."""
    with connect(db, what="MIMIC-IV database", how=HOW_TO_BUILD) as conn:
        missing = conn.missing(REQUIRED_TABLES)
        if missing:
            raise AlfiaError(f"MIMIC-IV database {conn.label} lacks table{'s' if len(missing) > 1 else ''} "
                             f"{', '.join(missing)}; {HOW_TO_BUILD}")
        return _build(conn, progress)


def _build(conn: Database, progress: bool) -> Cohort:
    sources = timed_sources()
    progress_line(progress, f"MIMIC-IV ({conn.dialect}): leakage check on {', '.join(sources)}")
    checked = check_leakage(conn, sources, LEAK, where="MIMIC-IV")
    progress_line(progress, "MIMIC-IV: cohort, demographics and first-day scores")
    df = conn.query(static_sql())
    if df.empty:
        raise AlfiaError(f"MIMIC-IV database {conn.label} has no adult ICU stays; {HOW_TO_BUILD}")
    df[ID] = df[ID].astype("int64")
    df = df.set_index(ID, drop=False)
    unmapped: dict[str, int] = {}

    def cat(name: str, mapping, unknown: str | None) -> None:
        df[name], n = map_category(df[name], mapping, unknown=unknown)
        if n:
            unmapped[name] = n

    cat("gender", GENDER_MAP, None)
    cat("marital_status", MARITAL_MAP, "Unknown")
    cat("race", race_group, "Unknown")
    cat("insurance", INSURANCE_MAP, "Unknown")
    cat("language", language_group, "Unknown")
    cat("admission_type", {v: v for v in ADMISSION_TYPES}, None)
    cat("admission_location", {v: v for v in ADMISSION_LOCATIONS}, None)
    cat("first_careunit", {k.upper(): v for k, v in CARE_UNITS.items()}, None)
    df["age"] = pd.to_numeric(df["age"], errors="coerce").clip(upper=91).round()

    for name, prefix in (("mimiciv_derived.gcs", "gcs"), ("mimiciv_derived.sofa", "sofa")):
        progress_line(progress, f"MIMIC-IV: {prefix.upper()} statistics over the first 24 h")
        stats = dynamic_stats(conn.query(sources[name]), prefix)
        df = df.join(stats, how="left")

    cohort = finish_cohort(
        df, SCHEMA, where="MIMIC-IV cohort",
        source=f"MIMIC-IV database ({conn.dialect}: {conn.label}) with mimic-code derived concepts",
        builder=f"{__name__}.build_mimic_iv", checked=checked, unmapped=unmapped,
        split_by="patient (subject_id: the cohort keeps one stay per subject, so stay and patient coincide)")
    progress_line(progress, f"MIMIC-IV: {len(cohort.df)} stays, {cohort.df[cohort.label].mean():.2%} deaths")
    return cohort


def build(options: BuildOptions) -> Cohort:
    """``alfia cohort mimic-iv --source DATABASE``."""
    return build_mimic_iv(options.require_source("mimic-iv", SOURCE_HELP))
