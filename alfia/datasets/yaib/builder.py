"""Build the ``yaib`` cohort from a YAIB cohort folder (``alfia cohort yaib --source DIR [--patients FILE]``).

A YAIB cohort folder (any ricu source: MIMIC-III/IV, eICU, HiRID, AmsterdamUMCdb, or their demos) holds
``sta.parquet`` (one row per stay: ``stay_id``, ``age``, ``sex``, ``height``, ``weight``), ``dyn.parquet`` (one row
per stay and hour: ``stay_id``, ``time`` a timedelta from ICU admission floored to the hour, and the 48 hourly
variables of :data:`alfia.datasets.yaib.schema.HOURLY`) and ``outc.parquet`` (``stay_id``, ``label``: 1 = died in
the ICU), with the task YAIB's "mortality24" (:data:`alfia.cohorts.task.YAIB_MORTALITY24`).

Per stay: the static variables as they are, and for each hourly variable the CW-24 aggregates over the hours of the
task's window ``[0 h, 24 h)`` (:func:`alfia.cohorts.sqldb.dynamic_stats`); urine output as its 24-hour total. ricu
floors times to the hour, so the row at 24 h holds 24:00-24:59, after the prediction time: rows outside the window
are dropped (not refused) and counted in the cohort's info. Hourly values outside the schema's range (ricu's
plausible range) are set to missing and counted.

Splits are by patient when a patient id can be had (``--patients FILE``, or the bundled eICU demo's ``uniquepid``),
else by stay, with a warning. Everything a reader could get wrong is refused with one ``AlfiaError`` line: a missing
file, a missing or mistyped column, a stay missing from one of the files, a stay (or a stay's hour) given twice, an
``outc.parquet`` with a ``time`` column (a dynamic YAIB task). Missing values stay missing.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from alfia.cohorts.io import Cohort
from alfia.cohorts.registry import BuildOptions
from alfia.cohorts.schema import ID
from alfia.cohorts.sqldb import dynamic_stats, finish_cohort
from alfia.datasets.yaib import SOURCE_HELP
from alfia.datasets.yaib.schema import AGGREGATED, BY_NAME, HOURLY, SCHEMA, SEXES, URINE_TOTAL
from alfia.errors import AlfiaError

logger = logging.getLogger(__name__)

FILES = ("sta.parquet", "dyn.parquet", "outc.parquet")
STATIC = ("age", "sex", "height", "weight")
TIME = "time"
LABEL_COLUMN = "label"  # outc.parquet's label column
# --patients FILE: the stay id and patient id columns it may have (YAIB's stay_id; eICU's and MIMIC's own names)
STAY_COLUMNS = ("stay_id", "patientunitstayid", "icustay_id")
PATIENT_COLUMNS = ("patient_id", "uniquepid", "subject_id")
DATA = f"{__package__}.data"
LICENSE = "ODbL 1.0 (Open Data Commons Open Database License v1.0, https://opendatacommons.org/licenses/odbl/1-0/)"
CITATION = (
    "van de Water R, Schmidt H, Elbers P, Thoral P, Arnrich B, Rockenschaub P. Yet Another ICU Benchmark: A Flexible "
    "Multi-Center Framework for Clinical ML. ICLR 2024. Goldberger A, et al. PhysioBank, PhysioToolkit, and "
    "PhysioNet. Circulation 2000;101(23):e215-e220."
)
DEMOS = {  # bundled name -> (folder in data/, source database, its citation, patient file in data/ or None)
    "yaib-eicu-demo": ("eicu_demo", "eICU Collaborative Research Database Demo v2.0.1",
                       "Johnson A, Pollard T, Badawi O, Raffa J. eICU Collaborative Research Database Demo (version "
                       "2.0.1). PhysioNet 2021.", "eicu_demo_patients.csv"),
    "yaib-mimic-demo": ("mimic_demo", "MIMIC-III Clinical Database Demo v1.4",
                        "Johnson A, Pollard T, Mark R. MIMIC-III Clinical Database Demo (version 1.4). PhysioNet "
                        "2019.", None),
}


def build(options: BuildOptions) -> Cohort:
    """``alfia cohort yaib --source DIR [--patients FILE]``."""
    folder = Path(options.require_source("yaib", SOURCE_HELP))
    patients = read_patients(Path(options.patients)) if options.patients else None
    return build_yaib(folder, patients=patients, patients_source=options.patients)


def load_eicu_demo() -> Cohort:
    """The bundled ``yaib-eicu-demo``: YAIB's mortality24 cohort of the eICU demo, split by ``uniquepid``."""
    return _demo("yaib-eicu-demo")


def load_mimic_demo() -> Cohort:
    """The bundled ``yaib-mimic-demo``: YAIB's mortality24 cohort of the MIMIC-III demo, split by stay."""
    return _demo("yaib-mimic-demo")


def _demo(name: str) -> Cohort:
    folder, database, cited, patient_file = DEMOS[name]
    data = resources.files(DATA)
    with resources.as_file(data.joinpath(folder)) as path:
        patients, shipped = None, None
        if patient_file is not None:
            with resources.as_file(data.joinpath(patient_file)) as file:
                patients, shipped = read_patients(file), f"the shipped {patient_file}"
        cohort = build_yaib(path, patients=patients, patients_source=shipped,
                            source=f"bundled {name}: YAIB mortality24 cohort of the {database}")
    cohort.info.update({"license": LICENSE, "citation": f"{CITATION} {cited}", "bundled": name,
                        "yaib_folder": f"{DATA}:{folder} (shipped)"})
    return cohort


def build_yaib(folder: Path, *, patients: pd.Series | None = None, patients_source: str | None = None,
               source: str | None = None) -> Cohort:
    """The cohort of a YAIB folder; ``patients``: patient ids indexed by stay id (see :func:`read_patients`)."""
    if not folder.is_dir():
        what = "does not exist" if not folder.exists() else "is not a folder"
        raise AlfiaError(f"YAIB source {folder} {what}; pass {SOURCE_HELP}")
    sta, dyn, outc = (_read(folder / name) for name in FILES)
    sta = _static(sta, folder / "sta.parquet")
    outc = _outcomes(outc, folder / "outc.parquet")
    dyn, absent = _hourly(dyn, folder / "dyn.parquet")
    _same_stays(sta, dyn, outc, folder)

    start, end = SCHEMA.task.window
    hours = dyn[TIME] / pd.Timedelta(hours=1)
    after, before = hours >= end, hours < start
    values = dyn[list(HOURLY)].notna().any(axis=1)
    dropped = {"after_prediction_time": int(after.sum()), "before_window": int(before.sum()),
               "with_values": int((values & (after | before)).sum())}
    if dropped["after_prediction_time"]:
        logger.info("YAIB: dropped %d hourly rows at or after %g h (ricu's hour %g holds %g:00-%g:59, after the "
                    "prediction time)", dropped["after_prediction_time"], end, end, end, end)
    if dropped["before_window"]:
        logger.info("YAIB: dropped %d hourly rows before %g h", dropped["before_window"], start)
    dyn = dyn.loc[~(after | before)].assign(t=hours[~(after | before)])
    out_of_range = _clean_hourly(dyn)

    stats = dynamic_stats(dyn, {name: name for name in AGGREGATED})
    urine = dyn.groupby(ID)["urine"].sum(min_count=1).rename(URINE_TOTAL)
    df = sta.join(stats, how="left").join(urine, how="left").join(outc, how="left")
    for column in SCHEMA.columns:
        if column.name not in df:  # a variable no stay has a value of
            df[column.name] = np.nan
    df[ID] = df.index.astype("int64")

    if patients is not None:
        lacking = df.index.difference(patients.index)
        if len(lacking):
            raise AlfiaError(f"the patients file {patients_source} lacks {len(lacking)} of the {len(df)} stays "
                             f"(e.g. stay_id {lacking[0]}); give every stay's patient id, or leave --patients out "
                             "to split by stay")
        split_by = f"patient ({patients.name} from {patients_source})"
        patient_ids = patients.loc[df.index]
        multi = int((patient_ids.value_counts() > 1).sum())
    else:
        logger.warning("YAIB: no patient ids (--patients FILE): splitting by stay, so a patient's two stays may "
                       "fall in two splits")
        split_by = "stay (no patient ids: a patient's two stays may fall in two splits)"
        patient_ids, multi = None, None
    window = f"[{start:g} h, {end:g} h)"
    extra = {"yaib_folder": str(folder), "hourly_rows_dropped": dropped, "hourly_variables_absent": absent,
             "hourly_values_out_of_range_set_missing": out_of_range, "window": window,
             "attrition": _attrition(folder / "attrition.csv")}
    if multi is not None:
        extra["patients_with_several_stays"] = multi
    label = SCHEMA.task.label
    cohort = finish_cohort(df.reset_index(drop=True), SCHEMA, where=f"YAIB cohort from {folder}",
                           source=source or f"YAIB cohort folder {folder}", builder=f"{__name__}.build_yaib",
                           checked={f"dyn.parquet rows in {window}": int(len(dyn))}, unmapped={},
                           split_by=split_by, extra_info=extra, patient_ids=patient_ids)
    y = cohort.df[label]
    logger.info("YAIB: %d stays, %d deaths in the ICU (%.2f%%), split by %s", len(y), int(y.sum()),
                100 * y.mean(), split_by.split(" ", 1)[0])
    return cohort


def read_patients(path: Path) -> pd.Series:
    """Patient ids (strings) indexed by stay id, from a CSV or parquet file with a stay id column (one of
    :data:`STAY_COLUMNS`) and a patient id column (one of :data:`PATIENT_COLUMNS`)."""
    if not path.is_file():
        raise AlfiaError(f"patients file {path} does not exist; pass a CSV or parquet file with stay_id and a "
                         "patient id column")
    try:
        if path.name.endswith(".parquet"):
            table = pq.read_table(path).to_pandas()
        else:
            table = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (pa.ArrowInvalid, OSError, ValueError, pd.errors.ParserError) as exc:
        raise AlfiaError(f"cannot read the patients file {path} ({str(exc).splitlines()[0]}); pass a CSV or "
                         "parquet file with stay_id and a patient id column") from None
    stay = next((c for c in STAY_COLUMNS if c in table.columns), None)
    patient = next((c for c in PATIENT_COLUMNS if c in table.columns), None)
    if stay is None or patient is None:
        need = [f"a stay id column ({', '.join(STAY_COLUMNS)})"] if stay is None else []
        need += [f"a patient id column ({', '.join(PATIENT_COLUMNS)})"] if patient is None else []
        raise AlfiaError(f"patients file {path} lacks {' and '.join(need)}; add it or leave --patients out")
    ids = pd.to_numeric(table[stay], errors="coerce")
    if ids.isna().any() or not np.all(np.mod(ids, 1) == 0):
        raise AlfiaError(f"patients file {path}: column {stay!r} must hold integer stay ids")
    if table[patient].isna().any():
        raise AlfiaError(f"patients file {path}: column {patient!r} has missing patient ids; fill them in")
    pairs = pd.DataFrame({ID: ids.astype("int64"), "patient": table[patient].astype(str)}).drop_duplicates()
    twice = pairs.loc[pairs[ID].duplicated(), ID]
    if len(twice):
        raise AlfiaError(f"patients file {path} gives two patient ids to stay {twice.iloc[0]}; give each stay one "
                         "patient")
    return pairs.set_index(ID)["patient"].rename(patient)


# --- reading and checking the three files ---------------------------------------------------------------------------

def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise AlfiaError(f"YAIB folder {path.parent} lacks {path.name}; pass {SOURCE_HELP}")
    try:
        return pq.read_table(path).to_pandas()
    except (pa.ArrowInvalid, OSError) as exc:
        raise AlfiaError(f"cannot read {path} as parquet ({str(exc).splitlines()[0]}); export the YAIB cohort "
                         "again") from None


def _require(df: pd.DataFrame, path: Path, columns) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise AlfiaError(f"{path} lacks column{'s' if len(missing) > 1 else ''} {', '.join(missing)}; pass a YAIB "
                         "mortality24 cohort folder as ricu/YAIB export it")


def _wrong_type(path: Path, column: str, found, wanted: str) -> AlfiaError:
    return AlfiaError(f"{path}: column {column!r} is {found}, not {wanted}; export the YAIB cohort again with "
                      "ricu's types")


def _stay_ids(df: pd.DataFrame, path: Path, *, unique: bool) -> pd.DataFrame:
    s = df[ID]
    if s.dtype.kind not in "iu":
        raise _wrong_type(path, ID, s.dtype, "integer")
    if unique and s.duplicated().any():
        dup = s[s.duplicated()]
        n = dup.nunique()
        raise AlfiaError(f"{path} has {n} stay{'s' if n > 1 else ''} twice (e.g. stay_id {dup.iloc[0]}); each stay "
                         "must have one row")
    return df.assign(**{ID: s.astype("int64")})


def _numeric(df: pd.DataFrame, path: Path, column: str) -> pd.Series:
    s = df[column]
    if s.dtype.kind not in "iuf":
        if s.isna().all():  # a variable no stay has: an all-null column of any type
            return pd.Series(np.nan, index=s.index, dtype="float64")
        raise _wrong_type(path, column, s.dtype, "numeric")
    return s.astype("float64")


def _static(sta: pd.DataFrame, path: Path) -> pd.DataFrame:
    _require(sta, path, (ID, *STATIC))
    sta = _stay_ids(sta, path, unique=True)
    out = pd.DataFrame({ID: sta[ID]})
    for column in ("age", "height", "weight"):
        out[column] = _numeric(sta, path, column)
    sex = sta["sex"]
    if sex.dtype.kind not in "OSUT" and not isinstance(sex.dtype, pd.CategoricalDtype | pd.StringDtype):
        raise _wrong_type(path, "sex", sex.dtype, "text (Female/Male)")
    present = sex.dropna().astype(str)
    odd = sorted(set(present) - set(SEXES))
    if odd:
        raise AlfiaError(f"{path}: column 'sex' has values {', '.join(odd[:3])}; ricu writes Female or Male "
                         "(or leaves it missing)")
    out["sex"] = [None if pd.isna(v) else str(v) for v in sex]
    return out.set_index(ID, drop=False)


def _outcomes(outc: pd.DataFrame, path: Path) -> pd.Series:
    if TIME in outc.columns:
        raise AlfiaError(f"{path} has a {TIME!r} column: it is a dynamic YAIB task (a label per hour), not "
                         "mortality24 (one label per stay); pass the folder of YAIB's mortality24 cohort")
    _require(outc, path, (ID, LABEL_COLUMN))
    outc = _stay_ids(outc, path, unique=True)
    label = outc[LABEL_COLUMN]
    if label.dtype.kind not in "iufb":
        raise _wrong_type(path, LABEL_COLUMN, label.dtype, "0/1")
    if label.isna().any() or not label.astype("float64").isin([0.0, 1.0]).all():
        raise AlfiaError(f"{path}: column {LABEL_COLUMN!r} must be 0 or 1 for every stay (1 = died in the ICU); "
                         f"found {', '.join(map(str, sorted(label[~label.isin([0, 1])].astype(str).unique())[:3]))}")
    return pd.Series(label.astype("int64").to_numpy(), index=outc[ID].to_numpy(), name=SCHEMA.task.label)


def _hourly(dyn: pd.DataFrame, path: Path) -> tuple[pd.DataFrame, list[str]]:
    _require(dyn, path, (ID, TIME))
    dyn = _stay_ids(dyn, path, unique=False)
    time = dyn[TIME]
    if time.dtype.kind != "m":
        raise _wrong_type(path, TIME, time.dtype, "a duration from ICU admission (ricu's hours as a timedelta)")
    if time.isna().any():
        raise AlfiaError(f"{path}: column {TIME!r} has {int(time.isna().sum())} missing times; every row needs its "
                         "hour")
    twice = dyn.duplicated([ID, TIME])
    if twice.any():
        first = dyn.loc[twice].iloc[0]
        n = int(twice.sum())
        raise AlfiaError(f"{path} has {n} (stay_id, time) pair{'s' if n > 1 else ''} twice (e.g. stay_id {first[ID]} "
                         f"at {first[TIME]}); each stay must have one row per hour")
    absent = [name for name in HOURLY if name not in dyn.columns]
    if absent:
        logger.warning("YAIB: %s lacks the hourly variable%s %s: %s missing for every stay", path.name,
                       "s" if len(absent) > 1 else "", ", ".join(absent), "they are" if len(absent) > 1 else "it is")
    out = pd.DataFrame({ID: dyn[ID], TIME: time})
    for name in HOURLY:
        out[name] = _numeric(dyn, path, name) if name in dyn.columns else np.nan
    return out, absent


def _same_stays(sta: pd.DataFrame, dyn: pd.DataFrame, outc: pd.Series, folder: Path) -> None:
    ids = {"sta.parquet": set(sta.index), "dyn.parquet": set(dyn[ID].unique()), "outc.parquet": set(outc.index)}
    every = set().union(*ids.values())
    for name, present in ids.items():
        lacking = sorted(every - present)
        if lacking:
            elsewhere = " and ".join(n for n, p in ids.items() if n != name and lacking[0] in p)
            n = len(lacking)
            raise AlfiaError(f"{n} stay{'s' if n > 1 else ''} of {elsewhere} {'are' if n > 1 else 'is'} not in "
                             f"{folder / name} (e.g. stay_id {lacking[0]}); the three files of a YAIB cohort must hold "
                             "the same stays")


def _clean_hourly(dyn: pd.DataFrame) -> dict[str, int]:
    """Hourly values outside ricu's plausible range (the schema's) set to missing, in place; counts per variable."""
    counts = {}
    for name in HOURLY:
        lo, hi = BY_NAME[name].valid
        bad = dyn[name].notna() & ((dyn[name] < lo) | (dyn[name] > hi))
        if bad.any():
            counts[name] = int(bad.sum())
            dyn.loc[bad, name] = np.nan
    return counts


def _attrition(path: Path) -> list[dict] | None:
    """YAIB's attrition table (stays each exclusion step removed), when the folder has it."""
    if not path.is_file():
        return None
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError):
        logger.warning("YAIB: cannot read %s; the cohort's info goes without it", path)
        return None
    return [{str(k): (int(v) if isinstance(v, int | np.integer) else str(v)) for k, v in row.items()}
            for row in table.to_dict("records")]
