"""The PhysioNet/CinC 2012 cohort: bundled tables, rebuild from raw files, leakage trap, malformed input, hourly
SOFA. Tests that need the raw challenge files skip when ../shared is absent."""

from __future__ import annotations

import io
import math
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alfia.cohorts.registry import bundled_tables, get_dataset, load_bundled
from alfia.datasets.physionet2012.builder import build_physionet2012, parse_record, read_outcomes, stay_features
from alfia.datasets.physionet2012.schema import SCHEMA
from alfia.datasets.physionet2012.scores import hourly_sofa
from alfia.errors import AlfiaError
from alfia.text.encoder import TextEncoder

DATA = Path(__file__).parents[3] / ".." / "shared" / "data" / "physionet2012"
needs_data = pytest.mark.skipif(not (DATA / "set-a.tar.gz").exists(),
                                reason=f"PhysioNet 2012 raw files not found at {DATA} (../shared is absent)")
N_SUBSET = 50
FEATURES = [c.name for c in SCHEMA.columns]


# ------------------------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def raw_subset() -> dict[str, str]:
    """The first N_SUBSET stays of set A as {RecordID: text}, read from the archive."""
    if not (DATA / "set-a.tar.gz").exists():
        pytest.skip(f"PhysioNet 2012 raw files not found at {DATA} (../shared is absent)")
    out = {}
    with tarfile.open(DATA / "set-a.tar.gz") as tf:
        for m in tf:
            if m.isfile() and m.name.endswith(".txt"):
                out[Path(m.name).stem] = tf.extractfile(m).read().decode()
                if len(out) == N_SUBSET:
                    break
    return out


def write_set(folder: Path, records: dict[str, str], letter: str = "a") -> Path:
    """Write records as folder/set-<letter>/<id>.txt and the matching Outcomes-<letter>.txt beside it."""
    set_dir = folder / f"set-{letter}"
    set_dir.mkdir(parents=True)
    for rid, text in records.items():
        (set_dir / f"{rid}.txt").write_text(text)
    outcomes = pd.read_csv(DATA / "Outcomes-a.txt", dtype=str)
    outcomes[outcomes["RecordID"].isin(records)].to_csv(folder / f"Outcomes-{letter}.txt", index=False)
    return set_dir


def assert_same_features(a: pd.DataFrame, b: pd.DataFrame) -> None:
    a = a.set_index("stay_id").sort_index()[["hospital_mortality", *FEATURES]]
    b = b.set_index("stay_id").sort_index().loc[a.index, ["hospital_mortality", *FEATURES]]
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12)


def record(*rows: str, descriptors: str = "") -> str:
    head = descriptors or ("00:00,RecordID,1\n00:00,Age,70\n00:00,Gender,1\n00:00,Height,-1\n"
                           "00:00,ICUType,3\n00:00,Weight,-1\n")
    return "Time,Parameter,Value\n" + head + "".join(r + "\n" for r in rows)


# ------------------------------------------------------------------------------------------ bundled


@pytest.mark.parametrize(("name", "deaths"), [("p12-a", 554), ("p12-b", 568)])
def test_bundled_counts_and_splits(name, deaths):
    cohort = load_bundled(name)
    df = cohort.df
    assert len(df) == 4000 and df["stay_id"].is_unique
    assert int(df["hospital_mortality"].sum()) == deaths
    counts = df["split"].value_counts()
    assert abs(counts["train"] - 3000) <= 2 and abs(counts["val"] - 500) <= 2 and abs(counts["test"] - 500) <= 2
    rates = df.groupby("split")["hospital_mortality"].mean()
    assert (rates - deaths / 4000).abs().max() < 0.01  # stratified
    assert cohort.info["synthetic"] is False and cohort.info["license"] == "ODC-By 1.0"
    assert "Silva I" in cohort.info["citation"] and "Goldberger A" in cohort.info["citation"]
    assert cohort.info["source"] == f"PhysioNet/CinC Challenge 2012 set {name[-1].upper()}"
    assert "Length_of_stay" not in df.columns and "Survival" not in df.columns


def test_bundled_sanity():
    df = load_bundled("p12-a").df
    assert set(SCHEMA.reference_columns) == {"ref_saps1", "ref_sofa"}
    assert not set(SCHEMA.reference_columns) & set(SCHEMA.feature_columns)
    assert df["icu_type"].notna().all() and df["age"].notna().all()
    # the severity scores carry signal: deaths score higher on average
    means = df.groupby("hospital_mortality")[["sofa_max", "sapsii_approx", "oasis_approx", "gcs_min"]].mean()
    assert (means.loc[1, ["sofa_max", "sapsii_approx", "oasis_approx"]] > means.loc[0, ["sofa_max",
            "sapsii_approx", "oasis_approx"]]).all()
    assert means.loc[1, "gcs_min"] < means.loc[0, "gcs_min"]
    with pytest.raises(AlfiaError, match="p12-a, p12-b"):
        load_bundled("p12-c")
    assert set(get_dataset("physionet2012").bundled) == {"p12-a", "p12-b"}
    assert {"p12-a", "p12-b"} <= set(bundled_tables())


def test_bundled_tables_ship_with_their_license_and_citation_as_package_data():
    import fnmatch
    import tomllib

    root = Path(__file__).parents[3]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["alfia"]
    folders = set()
    for table in get_dataset("physionet2012").bundled.values():
        package, file = table.split(":")  # a resource of the source tree
        folder = root.joinpath(*package.split("."))
        assert (folder / file).is_file()
        folders.add(folder)
    for folder in folders:
        shipped = {p.name for p in folder.iterdir()}
        assert {"LICENSE-ODC-By.txt", "CITATION.txt", "p12_a.parquet", "p12_b.parquet"} <= shipped
        for name in shipped:
            where = (folder / name).relative_to(root / "alfia").as_posix()
            assert any(fnmatch.fnmatch(where, pattern) for pattern in patterns), f"{where} is not package data"


# ------------------------------------------------------------------------------ rebuild from raw files


@needs_data
def test_rebuild_subset_matches_bundled(tmp_path, raw_subset):
    bundled = load_bundled("p12-a").df
    set_dir = write_set(tmp_path, raw_subset)
    from_dir = build_physionet2012(set_dir, progress=False)  # Outcomes-a.txt found beside it
    assert len(from_dir.df) == N_SUBSET
    assert_same_features(from_dir.df, bundled)
    # the same stays from a tar archive (read in memory)
    archive = tmp_path / "set-a.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for rid, text in raw_subset.items():
            data = text.encode()
            info = tarfile.TarInfo(f"set-a/{rid}.txt")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    from_tar = build_physionet2012(archive, tmp_path / "Outcomes-a.txt", progress=False)
    assert_same_features(from_tar.df, bundled)
    assert from_tar.info["source"] == "PhysioNet/CinC Challenge 2012 set A"


@needs_data
def test_leakage_trap_values_after_24h_change_nothing(tmp_path, raw_subset):
    extreme = {"GCS": 3, "Lactate": 30, "HR": 250, "MAP": 20, "NIMAP": 20, "SysABP": 30, "Urine": 5000,
               "Weight": 250, "Temp": 42, "RespRate": 60, "Creatinine": 15, "BUN": 250, "Platelets": 5,
               "Bilirubin": 40, "PaO2": 40, "FiO2": 1, "MechVent": 1, "pH": 6.8, "HCO3": 5, "WBC": 100,
               "Glucose": 900, "Na": 110, "K": 9, "PaCO2": 20}
    trap = "".join(f"{t},{p},{v}\n" for t in ("24:00", "30:00") for p, v in extreme.items())
    early = "".join(f"23:59,{p},{v}\n" for p, v in extreme.items())
    # a stay without admission weight and some unmeasured variables, so the trap has something to change
    rid = next(r for r, text in raw_subset.items() if "00:00,Weight,-1" in text)
    desc, series = parse_record(raw_subset[rid], rid)
    clean = stay_features(desc, series)
    trapped = stay_features(*parse_record(raw_subset[rid] + trap, rid))
    assert_features_equal(clean, trapped)
    # the test can fail: the same values just inside the window do change the features
    inside = stay_features(*parse_record(raw_subset[rid] + early, rid))
    changed = [k for k in clean if not _same(clean[k], inside[k])]
    assert {"lactate_max", "hr_max", "map_min", "gcs_min", "sofa_max", "urine_output"} <= set(changed)
    # and through the builder, for every stay of the subset: same features, so byte-identical texts
    set_dir = write_set(tmp_path, {r: t + trap for r, t in raw_subset.items()})
    built = build_physionet2012(set_dir, progress=False).df
    assert_same_features(built, load_bundled("p12-a").df)
    clean_dir = write_set(tmp_path / "clean", raw_subset)
    reference = build_physionet2012(clean_dir, progress=False).df
    for style in ("numeric", "banded"):
        encoder = TextEncoder("physionet2012", style).fit(load_bundled("p12-a").df)
        assert encoder.transform(built).tolist() == encoder.transform(reference).tolist()


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def assert_features_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    diff = {k: (a[k], b[k]) for k in a if not _same(a[k], b[k])}
    assert not diff


@needs_data
def test_outcomes_mismatch_and_missing(tmp_path, raw_subset):
    records = dict(list(raw_subset.items())[:5])
    set_dir = write_set(tmp_path, records)
    extra = next(iter(records))
    (set_dir / f"{extra}.txt").rename(set_dir / "999999.txt")
    (set_dir / "999999.txt").write_text(records[extra].replace(f"RecordID,{extra}", "RecordID,999999"))
    with pytest.raises(AlfiaError, match="stay 999999 .* missing from"):
        build_physionet2012(set_dir, progress=False)
    (set_dir / "999999.txt").unlink()
    with pytest.raises(AlfiaError, match=f"stay {extra} .* has no record"):
        build_physionet2012(set_dir, progress=False)
    lonely = tmp_path / "elsewhere" / "set-q"
    lonely.mkdir(parents=True)
    (lonely / f"{extra}.txt").write_text(records[extra])
    with pytest.raises(AlfiaError, match="--outcomes"):
        build_physionet2012(lonely, progress=False)


# --------------------------------------------------------------------------------- malformed input


@pytest.mark.parametrize(("row", "message"), [
    ("01:00,HR", "line 8: expected 3 fields"),
    ("01:00,HR,80,1", "line 8: expected 3 fields"),
    ("01:00,HR,fast", "line 8: value 'fast' of HR is not a number"),
    ("01:00,HR,nan", "line 8: value 'nan' of HR is not a number"),
    ("1h00,HR,80", "line 8: time '1h00' is not hh:mm"),
    ("01:75,HR,80", "line 8: time '01:75' is not hh:mm"),
])
def test_malformed_row_names_file_and_line(tmp_path, row, message):
    set_dir = tmp_path / "set-a"
    set_dir.mkdir()
    (set_dir / "1.txt").write_text(record(row))
    (tmp_path / "Outcomes-a.txt").write_text("RecordID,SAPS-I,SOFA,Length_of_stay,Survival,In-hospital_death\n"
                                             "1,10,2,5,-1,0\n")
    with pytest.raises(AlfiaError, match=message) as err:
        build_physionet2012(set_dir, progress=False)
    assert "1.txt" in str(err.value) and "\n" not in str(err.value)


def test_missing_record_id_and_header():
    with pytest.raises(AlfiaError, match="x.txt has no RecordID"):
        parse_record(record("01:00,HR,80", descriptors="00:00,Age,70\n"), "x.txt")
    with pytest.raises(AlfiaError, match="x.txt line 1: expected the header"):
        parse_record("Zeit,Parameter,Wert\n00:00,RecordID,1\n", "x.txt")


def test_outcomes_reads_only_the_needed_columns(tmp_path):
    path = tmp_path / "Outcomes-z.txt"
    # garbage in Length_of_stay / Survival must not matter: they are never parsed
    path.write_text("RecordID,SAPS-I,SOFA,Length_of_stay,Survival,In-hospital_death\n"
                    "1,-1,3,??,future,1\n2,12,-1,,x,0\n")
    out = read_outcomes(path)
    assert list(out.columns) == ["stay_id", "hospital_mortality", "ref_saps1", "ref_sofa"]
    assert out["hospital_mortality"].tolist() == [1, 0]
    assert math.isnan(out["ref_saps1"][0]) and math.isnan(out["ref_sofa"][1])
    path.write_text("RecordID,SAPS-I,SOFA,In-hospital_death\n1,5,3,2\n")
    with pytest.raises(AlfiaError, match="In-hospital_death must be 0 or 1"):
        read_outcomes(path)


# ------------------------------------------------------------------------------------- hourly SOFA


def test_hourly_sofa_carries_forward_and_starts_at_first_measurement():
    _, series = parse_record(record(
        "02:10,GCS,8",          # CNS 3 from hour 2
        "03:30,MAP,60",         # cardiovascular 1 from hour 3
        "04:00,MAP,80",         # back to 0 at hour 4
        "05:00,Platelets,40",   # coagulation 3 from hour 5
        "06:00,FiO2,0.5",
        "06:05,MechVent,1",
        "06:10,PaO2,60",        # P/F 120 ventilated: respiration 3 from hour 6
        "07:00,GCS,15",         # CNS back to 0
        "10:00,Urine,100",      # 100 mL in 24 h: renal 4 at hour 23 only
    ), "t.txt")
    sofa = hourly_sofa(series)
    assert len(sofa) == 22  # hours 2..23
    assert sofa[:6] == [3, 4, 3, 6, 9, 6]
    assert sofa[-2:] == [6, 10]


def test_unmeasured_variables_are_missing_not_zero():
    f = stay_features(*parse_record(record("01:00,HR,120", "02:00,HR,80"), "t.txt"))
    assert f["hr_max"] == 120 and f["hr_min"] == 80
    for col in ("lactate_max", "urine_output", "pf_ratio_min", "gcs_first", "gcs_std", "weight", "bmi",
                "height", "creatinine_max", "temp_max"):
        assert math.isnan(f[col]), col
    assert f["mech_vent"] == 0  # documented: MechVent never charted means not ventilated
    assert f["sirs"] == 1  # documented: unmeasured criteria are not met
    assert math.isnan(f["sofa_first"]) and math.isnan(f["sofa_std"])  # no SOFA input measured at all
    assert f["sapsii_approx"] == 15 + 4 and f["oasis_approx"] == 6 + 3 + 6  # age, HR (, not elective surgery)
    assert f["gender"] == "male" and f["icu_type"] == "Medical ICU"


def test_cleaning_and_weight_fallback():
    f = stay_features(*parse_record(record(
        "00:30,Weight,-1", "01:00,Weight,82.5", "02:00,Weight,90", "01:00,Temp,2.0", "02:00,Temp,37.5",
        "03:00,GCS,15", "05:00,GCS,13", "04:00,HR,0",
        descriptors="00:00,RecordID,1\n00:00,Age,70\n00:00,Gender,0\n00:00,Height,462\n00:00,ICUType,2\n"
                    "00:00,Weight,-1\n"), "t.txt"))
    assert f["weight"] == 82.5 and math.isnan(f["height"]) and math.isnan(f["bmi"])
    assert f["temp_min"] == 37.5 and math.isnan(f["hr_max"])
    assert (f["gcs_first"], f["gcs_last"], f["gcs_mean"], f["gcs_std"]) == (15, 13, 14, 1)
    assert f["gender"] == "female" and f["icu_type"] == "Cardiac Surgery Recovery Unit"


def test_schema_declares_every_column_once_with_units_and_ranges():
    df = load_bundled("p12-b").df
    for col in SCHEMA.columns:
        assert col.description and col.window
        if col.kind in ("float", "int"):
            assert col.valid is not None
            present = df[col.name].dropna()
            assert len(present) > 0, col.name
    assert np.isfinite(df[["sofa_max", "gcs_min"]].dropna()).all().all()
