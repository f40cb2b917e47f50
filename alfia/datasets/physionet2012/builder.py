"""Build the PhysioNet/CinC Challenge 2012 cohort, CW-24 style: one row per ICU stay, features from
measurements with 0 <= t < 24 h after ICU admission only (see docs/physionet2012.md).

``build_physionet2012(source, outcomes)`` reads a ``set-X.tar.gz`` archive (in memory, never extracted) or a
directory of ``<RecordID>.txt`` files, plus the challenge's ``Outcomes-X.txt``. From Outcomes it reads only
RecordID, SAPS-I, SOFA and In-hospital_death; Length_of_stay and Survival are never read.
"""

from __future__ import annotations

import math
import os
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pandas as pd
from tqdm.auto import tqdm

from alfia.cohorts.io import Cohort
from alfia.cohorts.registry import BuildOptions
from alfia.cohorts.schema import ID, SPLIT
from alfia.cohorts.splits import assign_splits
from alfia.datasets.physionet2012 import SOURCE_HELP
from alfia.datasets.physionet2012.schema import CLEAN, ICU_TYPES, SCHEMA
from alfia.datasets.physionet2012.scores import (
    Series,
    hourly_sofa,
    oasis_components,
    pf_ratios,
    sapsii_components,
    sirs_score,
    total_points,
)
from alfia.errors import AlfiaError

WINDOW_MIN = 24 * 60  # features use 0 <= t < 24:00 only
HEADER = "Time,Parameter,Value"
DESCRIPTORS = ("RecordID", "Age", "Gender", "Height", "ICUType", "Weight")
LICENSE = "ODC-By 1.0"
CITATION = (
    "Silva I, Moody G, Scott DJ, Celi LA, Mark RG. Predicting In-Hospital Mortality of ICU Patients: The "
    "PhysioNet/Computing in Cardiology Challenge 2012. Computing in Cardiology 2012;39:245-248. "
    "Goldberger A, Amaral L, Glass L, Hausdorff J, Ivanov PC, Mark R, Mietus JE, Moody GB, Peng CK, Stanley HE. "
    "PhysioBank, PhysioToolkit, and PhysioNet: Components of a new research resource for complex physiologic "
    "signals. Circulation 2000;101(23):e215-e220."
)
OUTCOME_COLUMNS = ("RecordID", "SAPS-I", "SOFA", "In-hospital_death")  # never Length_of_stay or Survival
_RECORD_FILE = re.compile(r"^(\d+)\.txt$")
_SET_NAME = re.compile(r"set-([A-Za-z0-9]+)")


# ----------------------------------------------------------------------------------------------- reading


def _minutes(t: str) -> int | None:
    h, sep, m = t.partition(":")
    if not sep or not h.isdigit() or len(m) != 2 or not m.isdigit() or not h.isascii() or not m.isascii():
        return None
    mm = int(m)
    if mm >= 60:
        return None
    return int(h) * 60 + mm


def _clean(param: str, value: float) -> float | None:
    """The cleaned value of one raw measurement, or None when it is missing or impossible."""
    if value == -1:
        return None
    if param == "FiO2" and 1 < value <= 100:  # FiO2 charted in percent
        value = value / 100
    bounds = CLEAN.get(param)
    if bounds is not None and not (bounds[0] <= value <= bounds[1]):
        return None
    return value


def parse_record(text: str, where: str) -> tuple[dict[str, float], Series]:
    """Parse one stay's file: the general descriptors and the cleaned time series inside the window.

    Every row is checked (also those after the window); a malformed row raises ``AlfiaError`` naming
    ``where`` and the line.
    """
    lines = text.splitlines()
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if first is None:
        raise AlfiaError(f"{where} is empty; remove it or restore the original challenge file")
    if lines[first].strip().lstrip("\ufeff") != HEADER:
        raise AlfiaError(f"{where} line {first + 1}: expected the header {HEADER!r}; "
                         "restore the original challenge file")
    desc: dict[str, float] = {}
    series: Series = {}
    for i in range(first + 1, len(lines)):
        line = lines[i]
        if not line.strip():
            continue
        parts = line.split(",")
        if len(parts) != 3:
            raise AlfiaError(f"{where} line {i + 1}: expected 3 fields Time,Parameter,Value, found "
                             f"{len(parts)}; fix or remove that line")
        t, param, raw = parts
        minute = _minutes(t.strip())
        if minute is None:
            raise AlfiaError(f"{where} line {i + 1}: time {t.strip()!r} is not hh:mm; fix or remove that line")
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise AlfiaError(f"{where} line {i + 1}: value {raw.strip()!r} of {param.strip()} is not a number; "
                             "fix or remove that line")
        param = param.strip()
        if minute == 0 and param in DESCRIPTORS and param not in desc:
            desc[param] = value  # general descriptors: the first row of each at 00:00
            continue
        if param in ("RecordID", "Age", "Gender", "Height", "ICUType"):
            continue  # a repeated descriptor later in the file is ignored
        if minute >= WINDOW_MIN:
            continue
        cleaned = _clean(param, value)
        if cleaned is not None:
            series.setdefault(param, []).append((minute, cleaned))
    if "RecordID" not in desc:
        raise AlfiaError(f"{where} has no RecordID row at 00:00; restore the original challenge file")
    for values in series.values():
        values.sort(key=lambda tv: tv[0])  # stable: rows at the same minute keep the file order
    return desc, series


def _source_records(source: Path, progress: bool) -> Iterator[tuple[str, str, str]]:
    """Yield (where, file stem, text) for every ``<RecordID>.txt`` in a directory or a tar archive."""
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.is_file() and _RECORD_FILE.match(p.name))
        if not files:
            raise AlfiaError(f"{source} holds no <RecordID>.txt files; pass the challenge's set directory "
                             "or its set-X.tar.gz")
        for p in tqdm(files, desc=f"reading {source.name}", unit="stay", disable=not progress):
            yield str(p), p.stem, _decode(p.read_bytes(), str(p))
        return
    try:
        tf = tarfile.open(source, "r:*")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise AlfiaError(f"cannot read {source} as a tar archive ({exc}); pass the challenge's set-X.tar.gz "
                         "or a directory of <RecordID>.txt files") from None
    with tf:
        try:
            members = [m for m in tf.getmembers() if m.isfile() and _RECORD_FILE.match(Path(m.name).name)]
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise AlfiaError(f"{source} is a damaged archive ({exc}); download it again") from None
        if not members:
            raise AlfiaError(f"{source} holds no <RecordID>.txt files; pass the challenge's set-X.tar.gz")
        for m in tqdm(members, desc=f"reading {source.name}", unit="stay", disable=not progress):
            where = f"{source}:{m.name}"
            fh = tf.extractfile(m)
            if fh is None:
                raise AlfiaError(f"cannot read {where}; download the archive again")
            try:
                data = fh.read()
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise AlfiaError(f"{source} is a damaged archive ({exc}); download it again") from None
            yield where, Path(m.name).stem, _decode(data, where)


def _decode(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise AlfiaError(f"{where} is not a text file; remove it or restore the original challenge file") from None


def read_outcomes(path: Path) -> pd.DataFrame:
    """RecordID, ref_saps1, ref_sofa and the label; only those columns are read (by name)."""
    if not path.is_file():
        raise AlfiaError(f"outcomes file {path} does not exist; pass the challenge's Outcomes-X.txt")
    try:
        header = pd.read_csv(path, nrows=0).columns.str.strip().tolist()
    except (ValueError, OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise AlfiaError(f"cannot read {path} as CSV ({str(exc).splitlines()[0]}); "
                         "pass the challenge's Outcomes-X.txt") from None
    missing = [c for c in OUTCOME_COLUMNS if c not in header]
    if missing:
        raise AlfiaError(f"{path} lacks the columns {', '.join(missing)}; pass the challenge's Outcomes-X.txt")
    try:
        df = pd.read_csv(path, usecols=lambda c: c.strip() in OUTCOME_COLUMNS, dtype=str)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise AlfiaError(f"cannot read {path} ({str(exc).splitlines()[0]}); fix the file") from None
    df.columns = [c.strip() for c in df.columns]
    out = pd.DataFrame()
    for col in OUTCOME_COLUMNS:
        values = pd.to_numeric(df[col].str.strip(), errors="coerce")
        bad = values.isna()
        if bad.any():
            row = int(bad.to_numpy().nonzero()[0][0]) + 2
            raise AlfiaError(f"{path} line {row}: {col} is not a number ({df[col].iloc[row - 2]!r}); fix the file")
        out[col] = values
    labels = out["In-hospital_death"]
    if not labels.isin([0, 1]).all():
        raise AlfiaError(f"{path}: In-hospital_death must be 0 or 1; pass the challenge's Outcomes-X.txt")
    dup = out["RecordID"][out["RecordID"].duplicated()]
    if len(dup):
        raise AlfiaError(f"{path}: RecordID {int(dup.iloc[0])} appears twice; fix the file")
    return pd.DataFrame({
        ID: out["RecordID"].astype("int64"),
        SCHEMA.task.label: labels.astype("int64"),
        "ref_saps1": out["SAPS-I"].where(out["SAPS-I"] >= 0).astype("float64"),
        "ref_sofa": out["SOFA"].where(out["SOFA"] >= 0).astype("float64"),
    })


def _set_letter(source: Path) -> str | None:
    m = _SET_NAME.search(source.name)
    return m.group(1) if m else None


def find_outcomes(source: Path) -> Path:
    letter = _set_letter(source)
    if letter is not None:
        for folder in (source.parent, source if source.is_dir() else None):
            if folder is None:
                continue
            for name in (f"Outcomes-{letter}.txt", f"Outcomes-{letter.lower()}.txt",
                         f"Outcomes-{letter.upper()}.txt"):
                if (folder / name).is_file():
                    return folder / name
    expected = f"Outcomes-{letter}.txt" if letter else "Outcomes-X.txt"
    raise AlfiaError(f"found no {expected} beside {source}; pass the outcomes file with --outcomes")


# ------------------------------------------------------------------------------------------ features


class Summary(NamedTuple):
    """A stay's series in six numbers (the features ``<name>_first`` ... ``<name>_std``); all NaN when empty."""

    first: float
    last: float
    min: float
    max: float
    mean: float
    std: float


def _summary(values: list[float]) -> Summary:
    if not values:
        return Summary(*(math.nan,) * 6)
    n = len(values)
    mean = sum(values) / n
    var = sum((x - mean) ** 2 for x in values) / n  # population SD: a single value has SD 0
    return Summary(values[0], values[-1], min(values), max(values), mean, math.sqrt(max(var, 0.0)))


def stay_features(desc: dict[str, float], series: Series) -> dict[str, object]:
    """All schema features of one stay from its descriptors and cleaned in-window series."""
    f: dict[str, object] = {}

    def static(param: str) -> float:
        v = desc.get(param)
        v = None if v is None else _clean(param, v)
        return math.nan if v is None else v

    f["age"] = static("Age")
    g = desc.get("Gender")
    f["gender"] = {0: "female", 1: "male"}.get(int(g)) if g is not None and g in (0, 1) else None
    f["height"] = static("Height")
    weight = static("Weight")
    if math.isnan(weight) and series.get("Weight"):
        weight = series["Weight"][0][1]
    f["weight"] = weight
    bmi = weight / (f["height"] / 100) ** 2 if not math.isnan(weight) and not math.isnan(f["height"]) else math.nan
    f["bmi"] = bmi if 10 <= bmi <= 80 else math.nan
    icu = desc.get("ICUType")
    f["icu_type"] = ICU_TYPES.get(int(icu)) if icu is not None and icu in ICU_TYPES else None

    gcs = [v for _, v in series.get("GCS", [])]
    for name, val in _summary(gcs)._asdict().items():
        f[f"gcs_{name}"] = val
    pf_pairs = pf_ratios(series)
    sofa = [float(s) for s in hourly_sofa(series, pf_pairs)]
    for name, val in _summary(sofa)._asdict().items():
        f[f"sofa_{name}"] = val

    def values(*params: str) -> list[float]:
        return [v for p in params for _, v in series.get(p, [])]

    def lo(*params: str) -> float | None:
        vs = values(*params)
        return min(vs) if vs else None

    def hi(*params: str) -> float | None:
        vs = values(*params)
        return max(vs) if vs else None

    w = {  # worst values, None when unmeasured (score inputs and summaries)
        "hr_min": lo("HR"), "hr_max": hi("HR"), "map_min": lo("MAP", "NIMAP"), "map_max": hi("MAP", "NIMAP"),
        "sbp_min": lo("SysABP", "NISysABP"), "sbp_max": hi("SysABP", "NISysABP"),
        "temp_min": lo("Temp"), "temp_max": hi("Temp"), "rr_min": lo("RespRate"), "resp_rate_max": hi("RespRate"),
        "paco2_min": lo("PaCO2"), "wbc_min": lo("WBC"), "wbc_max": hi("WBC"), "k_min": lo("K"), "k_max": hi("K"),
        "na_min": lo("Na"), "na_max": hi("Na"), "hco3_min": lo("HCO3"), "bilirubin_max": hi("Bilirubin"),
        "bun_max": hi("BUN"), "gcs_min": min(gcs) if gcs else None, "lactate_max": hi("Lactate"),
        "ph_min": lo("pH"), "creatinine_max": hi("Creatinine"), "platelets_min": lo("Platelets"),
        "glucose_max": hi("Glucose"),
        "urine_output": sum(values("Urine")) if series.get("Urine") else None,
        "pf_ratio_min": min((pf for _, pf, _ in pf_pairs), default=None),
        "pf_vent_min": min((pf for _, pf, vent in pf_pairs if vent), default=None),
        "mech_vent": 1 if any(v >= 1 for v in values("MechVent")) else 0,
        "age": None if math.isnan(f["age"]) else f["age"], "icu_type": f["icu_type"],
    }
    f["sirs"] = sirs_score(w["temp_min"], w["temp_max"], w["hr_max"], w["resp_rate_max"], w["paco2_min"],
                           w["wbc_min"], w["wbc_max"])
    f["sapsii_approx"] = total_points(sapsii_components(w), exclude=("age",))
    f["oasis_approx"] = total_points(oasis_components(w), exclude=("age", "mech_vent", "elective_surgery"))
    for col in ("hr_max", "hr_min", "map_min", "temp_max", "temp_min", "resp_rate_max",
                "urine_output", "mech_vent", "pf_ratio_min", "lactate_max", "ph_min", "hco3_min", "bun_max",
                "creatinine_max", "wbc_max", "platelets_min", "bilirubin_max", "glucose_max"):
        f[col] = w[col]
    return {k: (math.nan if v is None and k not in ("gender", "icu_type") else v) for k, v in f.items()}


# -------------------------------------------------------------------------------------------- builder


def build_physionet2012(source: str | os.PathLike, outcomes: str | os.PathLike | None = None,
                        progress: bool = True) -> Cohort:
    """Build the cohort from a set's tar archive or directory and its Outcomes file."""
    source = Path(source)
    if not source.exists():
        raise AlfiaError(f"{source} does not exist; pass the challenge's set-X.tar.gz or its directory")
    out_path = Path(outcomes) if outcomes is not None else find_outcomes(source)
    labels = read_outcomes(out_path)

    rows: list[dict[str, object]] = []
    seen: dict[int, str] = {}
    for where, stem, text in _source_records(source, progress):
        desc, series = parse_record(text, where)
        rid = desc["RecordID"]
        if rid != int(rid) or rid < 0:
            raise AlfiaError(f"{where}: RecordID {rid:g} is not a whole number; restore the original file")
        rid = int(rid)
        if int(stem) != rid:
            raise AlfiaError(f"{where}: RecordID {rid} does not match the file name; restore the original file")
        if rid in seen:
            raise AlfiaError(f"RecordID {rid} appears in both {seen[rid]} and {where}; remove the duplicate")
        seen[rid] = where
        rows.append({ID: rid, **stay_features(desc, series)})

    feats = pd.DataFrame(rows)
    raw_ids, out_ids = set(feats[ID]), set(labels[ID])
    if raw_ids - out_ids:
        ex = min(raw_ids - out_ids)
        raise AlfiaError(f"stay {ex} of {source} (and {len(raw_ids - out_ids) - 1} more) is missing from "
                         f"{out_path}; pass the Outcomes file of the same set")
    if out_ids - raw_ids:
        ex = min(out_ids - raw_ids)
        raise AlfiaError(f"stay {ex} of {out_path} (and {len(out_ids - raw_ids) - 1} more) has no record in "
                         f"{source}; pass the complete set or the Outcomes file of the same set")
    df = feats.merge(labels, on=ID, how="inner").sort_values(ID).reset_index(drop=True)
    df[SPLIT] = assign_splits(df[ID], df[SCHEMA.task.label]).to_numpy()
    letter = _set_letter(source) or _set_letter(Path(out_path.name.replace("Outcomes-", "set-")))
    info = {
        "source": f"PhysioNet/CinC Challenge 2012 set {letter.upper() if letter else '?'}",
        "synthetic": False,
        "license": LICENSE,
        "citation": CITATION,
    }
    df = SCHEMA.validate(df, where=f"cohort built from {source}")
    return Cohort(df=df, schema=SCHEMA, info=info)


def build(options: BuildOptions) -> Cohort:
    """``alfia cohort physionet2012 --source set-X[.tar.gz] [--outcomes Outcomes-X.txt]``."""
    source = Path(options.require_source("physionet2012", SOURCE_HELP))
    if not source.exists():
        raise AlfiaError(f"{source} does not exist; check the path")
    return build_physionet2012(source, options.outcomes)
