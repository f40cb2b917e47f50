"""The YAIB data set (``yaib``): the bundled demo cohorts, the reader of any YAIB folder through the CLI, its
aggregates, the dropped 24-h row, splits by patient or by stay, every refusal, and the text. Everything here uses the
files shipped in the package (alfia/datasets/yaib/data/), never ../shared."""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import re
import shutil
import tomllib
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alfia.cli import main
from alfia.cohorts import read_cohort
from alfia.cohorts.registry import build_cohort, bundled_tables, is_bundled_function, load_bundled
from alfia.cohorts.sqldb import dynamic_stats
from alfia.cohorts.task import YAIB_MORTALITY24
from alfia.datasets.yaib.builder import build_yaib, read_patients
from alfia.datasets.yaib.schema import HOURLY, SCHEMA
from alfia.errors import AlfiaError
from alfia.text.encoder import TextEncoder

DATA = Path(str(resources.files("alfia.datasets.yaib") / "data"))
ROOT = Path(__file__).resolve().parents[2]
BAD_DATA = 1


@pytest.fixture(scope="module")
def eicu():
    return load_bundled("yaib-eicu-demo")


@pytest.fixture(scope="module")
def mimic():
    return load_bundled("yaib-mimic-demo")


def copy_demo(tmp_path: Path, demo: str = "mimic_demo") -> Path:
    folder = tmp_path / demo
    shutil.copytree(DATA / demo, folder)
    for f in folder.iterdir():
        f.chmod(0o644)
    return folder


def rewrite(folder: Path, name: str, change) -> None:
    """Replace ``folder/name`` (a parquet file) with ``change(table)``."""
    df = pd.read_parquet(folder / name)
    change(df).to_parquet(folder / name, index=False)


# ------------------------------------------------------------------------------------------------ bundled cohorts

def test_bundled_cohorts_load_with_their_counts_task_and_licence(eicu, mimic):
    for cohort, stays, deaths in ((eicu, 1367, 70), (mimic, 99, 21)):
        assert cohort.task == YAIB_MORTALITY24 and cohort.label == "icu_mortality"
        assert "hospital_mortality" not in cohort.df.columns
        assert len(cohort.df) == stays and int(cohort.df["icu_mortality"].sum()) == deaths
        assert set(cohort.df["split"]) == {"train", "val", "test"}
        assert cohort.info["license"].startswith("ODbL 1.0")
        assert "Yet Another ICU Benchmark" in cohort.info["citation"]
        assert list(cohort.df.columns) == SCHEMA.required_columns()
    assert "eICU Collaborative Research Database Demo" in eicu.info["citation"]
    assert "MIMIC-III Clinical Database Demo" in mimic.info["citation"]
    assert {"yaib-eicu-demo", "yaib-mimic-demo"} <= set(bundled_tables())


def test_bundled_names_are_built_from_the_shipped_files_on_load():
    assert is_bundled_function(bundled_tables()["yaib-eicu-demo"])
    assert not is_bundled_function("alfia.datasets.physionet2012.data:p12_a.parquet")
    assert not is_bundled_function("some/file.parquet")
    cohort = build_cohort("yaib-mimic-demo")  # what `alfia cohort yaib-mimic-demo` writes
    assert len(cohort.df) == 99 and cohort.info["bundled"] == "yaib-mimic-demo"


def test_shipped_files_match_their_checksums_and_are_package_data():
    for line in (DATA / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == digest, name
    assert len((DATA / "SHA256SUMS").read_text().splitlines()) == 8
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["alfia"]
    shipped = [p for p in DATA.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert {"LICENSE-ODbL.txt", "README.md", "CITATION.txt", "SHA256SUMS", "eicu_demo_patients.csv"} <= {
        p.name for p in shipped}
    for path in shipped:
        where = path.relative_to(ROOT / "alfia").as_posix()
        assert any(fnmatch.fnmatch(where, pattern) for pattern in patterns), f"{where} is not package data"
    assert "ODbL" in (DATA / "README.md").read_text() and "derived" in (DATA / "README.md").read_text()


def test_eicu_label_is_the_unit_discharge_status_of_the_shipped_patient_file(eicu):
    patients = pd.read_csv(DATA / "eicu_demo_patients.csv")
    assert list(patients.columns) == ["stay_id", "uniquepid", "unitdischargestatus", "hospitaldischargestatus"]
    assert len(patients) == 1367 and set(patients["stay_id"]) == set(eicu.df["stay_id"])
    expired = patients.set_index("stay_id")["unitdischargestatus"].eq("Expired").astype(int)
    assert expired.value_counts().to_dict() == {0: 1297, 1: 70}
    labels = eicu.df.set_index("stay_id")["icu_mortality"]
    assert (labels.loc[expired.index] == expired).all()


# ------------------------------------------------------------------------------------------------ the CLI

def test_cli_builds_any_yaib_folder_with_and_without_patients(tmp_path, capsys):
    folder = copy_demo(tmp_path, "eicu_demo")
    out = tmp_path / "eicu.parquet"
    assert main(["cohort", "yaib", "--source", str(folder), "--out", str(out)]) == 0
    assert "1,367 stays, 70 deaths (death in the ICU" in capsys.readouterr().out
    cohort = read_cohort(out)
    assert cohort.schema.name == "yaib" and cohort.task == YAIB_MORTALITY24
    assert cohort.info["split_by"].startswith("stay")

    out2 = tmp_path / "eicu-by-patient.parquet"
    assert main(["cohort", "yaib", "--source", str(folder), "--patients", str(DATA / "eicu_demo_patients.csv"),
                 "--out", str(out2)]) == 0
    by_patient = read_cohort(out2)
    assert by_patient.info["split_by"].startswith("patient (uniquepid")
    bundled = load_bundled("yaib-eicu-demo")
    # the same stays and features as the bundled cohort, split the same way
    pd.testing.assert_frame_equal(by_patient.df, bundled.df)

    out3 = tmp_path / "mimic.parquet"
    assert main(["cohort", "yaib-mimic-demo", "--out", str(out3)]) == 0
    assert len(read_cohort(out3).df) == 99


def test_cli_without_source_is_a_usage_error(tmp_path):
    assert main(["cohort", "yaib", "--out", str(tmp_path / "x.parquet")]) == 2
    assert not (tmp_path / "x.parquet").exists()


# ------------------------------------------------------------------------------------------------ aggregates

def test_aggregates_equal_hand_computed_values_and_the_24_h_row_is_dropped(tmp_path):
    folder = copy_demo(tmp_path)
    stay = int(pd.read_parquet(folder / "sta.parquet")["stay_id"].iloc[0])

    def plant(dyn):
        rows, hours = dyn["stay_id"] == stay, dyn["time"] / pd.Timedelta(hours=1)
        dyn.loc[rows, ["hr", "glu", "urine", "crp"]] = np.nan
        for hour, hr in ((0, 80.0), (2, 100.0), (5, 96.0), (23, 84.0), (24, 250.0)):
            dyn.loc[rows & (hours == hour), "hr"] = hr
        dyn.loc[rows & (hours == 3), "glu"] = 140.0
        for hour, ml in ((1, 30.0), (4, 45.0), (24, 900.0)):
            dyn.loc[rows & (hours == hour), "urine"] = ml
        return dyn

    rewrite(folder, "dyn.parquet", plant)
    cohort = build_yaib(folder)
    row = cohort.df.set_index("stay_id").loc[stay]
    hr = np.array([80.0, 100.0, 96.0, 84.0])  # hours 0, 2, 5, 23; the 250 at 24 h is after the prediction time
    assert (row["hr_first"], row["hr_last"], row["hr_min"], row["hr_max"]) == (80.0, 84.0, 80.0, 100.0)
    assert row["hr_mean"] == pytest.approx(90.0)
    assert row["hr_std"] == pytest.approx(np.sqrt(((hr - 90.0) ** 2).sum() / 3))  # ddof=1
    assert [row[f"glu_{s}"] for s in ("first", "last", "min", "max", "mean", "std")] == [140.0] * 5 + [0.0]
    assert row["urine_total"] == 75.0  # the 900 mL of 24:00-24:59 are not counted
    assert np.isnan(row["crp_mean"])  # never measured: missing, not 0
    dropped = cohort.info["hourly_rows_dropped"]
    assert dropped["after_prediction_time"] == 99 and dropped["before_window"] == 0
    assert cohort.info["leakage_check"]["rows_checked"] == {"dyn.parquet rows in [0 h, 24 h)": 99 * 24}


def test_aggregates_of_a_real_stay_match_pandas_on_the_raw_file(mimic):
    dyn = pd.read_parquet(DATA / "mimic_demo" / "dyn.parquet")
    dyn = dyn[dyn["time"] < pd.Timedelta(hours=24)]
    stay = int(mimic.df["stay_id"].iloc[5])
    rows = dyn[dyn["stay_id"] == stay].sort_values("time")
    got = mimic.df.set_index("stay_id").loc[stay]
    for name in ("hr", "map", "temp", "crea"):
        values = rows[name].dropna()
        if values.empty:
            assert np.isnan(got[f"{name}_mean"])
            continue
        expected = {"first": values.iloc[0], "last": values.iloc[-1], "min": values.min(), "max": values.max(),
                    "mean": values.mean(), "std": values.std(ddof=1) if len(values) > 1 else 0.0}
        for stat, value in expected.items():
            assert got[f"{name}_{stat}"] == pytest.approx(value), (name, stat)
    urine = rows["urine"].dropna()
    assert len(urine) and got["urine_total"] == pytest.approx(urine.sum())


def test_dynamic_stats_of_a_wide_table_equal_the_sql_builders_long_form():
    wide = pd.DataFrame({"stay_id": [1, 1, 1, 2, 3, 3], "t": [0.0, 1.0, 2.0, 0.0, 5.0, 1.0],
                         "a": [3.0, np.nan, 1.0, 7.0, np.nan, np.nan], "b": [1.0, 2.0, 4.0, np.nan, 2.0, 6.0]})
    both = dynamic_stats(wide, {"a": "a", "b": "b"})
    for column in ("a", "b"):
        long = wide[["stay_id", "t", column]].rename(columns={column: "value"})
        pd.testing.assert_frame_equal(both[[c for c in both.columns if c.startswith(f"{column}_")]].dropna(how="all"),
                                      dynamic_stats(long, column), check_names=False)
    assert both.loc[3, "b_first"] == 6.0 and both.loc[3, "b_last"] == 2.0  # ordered by time, not by row
    assert both.loc[2, "a_std"] == 0.0 and np.isnan(both.loc[2, "b_mean"])
    assert list(dynamic_stats(wide.iloc[:0], "x").columns) == [f"x_{s}" for s in
                                                                ("max", "min", "first", "last", "mean", "std")]


def test_missing_values_are_missing_not_errors(tmp_path, caplog):
    folder = copy_demo(tmp_path)
    stay = int(pd.read_parquet(folder / "sta.parquet")["stay_id"].iloc[3])
    rewrite(folder, "sta.parquet", lambda df: df.assign(age=df["age"].where(df["stay_id"] != stay)))
    rewrite(folder, "dyn.parquet", lambda df: df.drop(columns=["tnt"]).assign(alb=np.nan))
    with caplog.at_level(logging.WARNING, logger="alfia"):
        cohort = build_yaib(folder)
    df = cohort.df.set_index("stay_id")
    assert np.isnan(df.loc[stay, "age"]) and df["tnt_mean"].isna().all() and df["alb_max"].isna().all()
    assert cohort.info["hourly_variables_absent"] == ["tnt"]
    assert any("tnt" in r.getMessage() for r in caplog.records)
    assert (df["age"].dropna() <= 90).all() and (df["age"] == 90).any()  # ricu's cap, kept as it is


# ------------------------------------------------------------------------------------------------ splits

def test_eicu_demo_splits_by_patient(eicu):
    patients = pd.read_csv(DATA / "eicu_demo_patients.csv").set_index("stay_id")["uniquepid"]
    splits = eicu.df.set_index("stay_id")["split"]
    per_patient = splits.groupby(patients.loc[splits.index].to_numpy()).nunique()
    assert (per_patient == 1).all()
    several = patients.value_counts()
    assert int((several >= 2).sum()) == 161 and eicu.info["patients_with_several_stays"] == 161
    assert eicu.info["split_by"].startswith("patient (uniquepid")


def test_a_folder_without_patient_ids_splits_by_stay_with_one_warning(tmp_path, caplog):
    folder = copy_demo(tmp_path)
    with caplog.at_level(logging.WARNING, logger="alfia"):
        cohort = build_yaib(folder)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "two splits" in warnings[0] and "\n" not in warnings[0]
    assert cohort.info["split_by"].startswith("stay")
    with caplog.at_level(logging.WARNING, logger="alfia"):
        caplog.clear()
        build_yaib(folder, patients=read_patients(_patients_file(tmp_path, folder)), patients_source="p.csv")
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


def _patients_file(tmp_path: Path, folder: Path, drop: int = 0) -> Path:
    ids = pd.read_parquet(folder / "sta.parquet")["stay_id"].iloc[drop:]
    path = tmp_path / "patients.csv"
    pd.DataFrame({"stay_id": ids, "subject_id": [f"p{i // 2}" for i in range(len(ids))]}).to_csv(path, index=False)
    return path


def test_patients_are_read_from_csv_or_parquet_and_must_cover_every_stay(tmp_path):
    folder = copy_demo(tmp_path)
    path = _patients_file(tmp_path, folder)
    cohort = build_yaib(folder, patients=read_patients(path), patients_source=str(path))
    assert cohort.info["split_by"].startswith("patient (subject_id")
    assert cohort.df.groupby(cohort.df["stay_id"].map(read_patients(path)))["split"].nunique().max() == 1
    parquet = tmp_path / "patients.parquet"
    pd.read_csv(path).to_parquet(parquet)
    assert read_patients(parquet).equals(read_patients(path))
    short = _patients_file(tmp_path, folder, drop=1)
    out = tmp_path / "x.parquet"
    assert main(["cohort", "yaib", "--source", str(folder), "--patients", str(short), "--out", str(out)]) == BAD_DATA
    assert not out.exists()
    pd.DataFrame({"stay_id": [1], "hospital": ["a"]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(AlfiaError, match="lacks a patient id column"):
        read_patients(tmp_path / "bad.csv")


# ------------------------------------------------------------------------------------------------ refusals

def refused(tmp_path: Path, folder: Path, capsys, match: str) -> None:
    """The CLI refuses ``folder`` with one line matching ``match``, exit status 1 and no output file."""
    out = tmp_path / "out.parquet"
    capsys.readouterr()
    assert main(["cohort", "yaib", "--source", str(folder), "--out", str(out)]) == BAD_DATA
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and re.search(match, err[-1]), err
    assert "Traceback" not in "\n".join(err)
    assert not out.exists()


def test_refuses_a_missing_file(tmp_path, capsys):
    folder = copy_demo(tmp_path)
    (folder / "dyn.parquet").unlink()
    refused(tmp_path, folder, capsys, r"lacks dyn\.parquet")


def test_refuses_a_missing_source_folder(tmp_path, capsys):
    refused(tmp_path, tmp_path / "nowhere", capsys, r"does not exist")


@pytest.mark.parametrize("name, column", [("sta.parquet", "age"), ("sta.parquet", "sex"),
                                          ("dyn.parquet", "time"), ("outc.parquet", "label"),
                                          ("outc.parquet", "stay_id")])
def test_refuses_a_missing_column(tmp_path, capsys, name, column):
    folder = copy_demo(tmp_path)
    rewrite(folder, name, lambda df: df.drop(columns=[column]))
    refused(tmp_path, folder, capsys, rf"{re.escape(name)} lacks column {column}")


@pytest.mark.parametrize("name, column, change, wanted", [
    ("dyn.parquet", "time", lambda s: s / pd.Timedelta(hours=1), "a duration"),
    ("sta.parquet", "stay_id", lambda s: s.astype(str), "integer"),
    ("dyn.parquet", "hr", lambda s: s.astype(str), "numeric"),
    ("sta.parquet", "weight", lambda s: s.astype(str), "numeric"),
    ("outc.parquet", "label", lambda s: s.map({0: "alive", 1: "dead"}), "0/1"),
])
def test_refuses_a_mistyped_column(tmp_path, capsys, name, column, change, wanted):
    folder = copy_demo(tmp_path)
    rewrite(folder, name, lambda df: df.assign(**{column: change(df[column])}))
    refused(tmp_path, folder, capsys, rf"column '{column}' is .*, not {re.escape(wanted)}")


def test_refuses_a_label_other_than_0_or_1(tmp_path, capsys):
    folder = copy_demo(tmp_path)
    rewrite(folder, "outc.parquet", lambda df: df.assign(label=df["label"].replace({1: 2})))
    refused(tmp_path, folder, capsys, r"'label' must be 0 or 1")


def test_refuses_an_unknown_sex(tmp_path, capsys):
    folder = copy_demo(tmp_path)
    rewrite(folder, "sta.parquet", lambda df: df.assign(sex=df["sex"].replace({"Male": "M"})))
    refused(tmp_path, folder, capsys, r"'sex' has values M")


@pytest.mark.parametrize("name", ["sta.parquet", "dyn.parquet", "outc.parquet"])
def test_refuses_a_stay_missing_from_one_file(tmp_path, capsys, name):
    folder = copy_demo(tmp_path)
    stay = int(pd.read_parquet(folder / "sta.parquet")["stay_id"].iloc[7])
    rewrite(folder, name, lambda df: df[df["stay_id"] != stay])
    refused(tmp_path, folder, capsys, rf"1 stay of .* is not in .*{re.escape(name)} \(e\.g\. stay_id {stay}\)")


@pytest.mark.parametrize("name", ["sta.parquet", "outc.parquet"])
def test_refuses_a_stay_given_twice(tmp_path, capsys, name):
    folder = copy_demo(tmp_path)
    rewrite(folder, name, lambda df: pd.concat([df, df.iloc[[4]]], ignore_index=True))
    refused(tmp_path, folder, capsys, rf"{re.escape(name)} has 1 stay twice")


def test_refuses_an_hour_of_a_stay_given_twice(tmp_path, capsys):
    folder = copy_demo(tmp_path)
    rewrite(folder, "dyn.parquet", lambda df: pd.concat([df, df.iloc[[30]]], ignore_index=True))
    refused(tmp_path, folder, capsys, r"dyn\.parquet has 1 \(stay_id, time\) pair twice")


def test_refuses_an_outcome_file_of_a_dynamic_task(tmp_path, capsys):
    folder = copy_demo(tmp_path)
    rewrite(folder, "outc.parquet", lambda df: df.assign(time=pd.Timedelta(hours=24)))
    refused(tmp_path, folder, capsys, r"dynamic YAIB task")


def test_refuses_an_unreadable_file(tmp_path, capsys):
    folder = copy_demo(tmp_path)
    (folder / "sta.parquet").write_bytes(b"not parquet")
    refused(tmp_path, folder, capsys, r"cannot read .*sta\.parquet as parquet")


# ------------------------------------------------------------------------------------------------ the text

RAW = re.compile(r"\b(?:" + "|".join(sorted({c.name for c in SCHEMA.columns if "_" in c.name} | {
    n for n in HOURLY if n not in ("ph", "urine")}, key=len, reverse=True)) + r")\b")


@pytest.mark.parametrize("style", ["banded", "numeric"])
def test_texts_read_fluently(eicu, mimic, style):
    for cohort in (eicu, mimic):
        encoded = TextEncoder("yaib", style).fit(cohort.df).encode(cohort)
        texts = encoded.df["text"]
        assert texts.str.len().min() > 100
        for text in texts:
            assert re.match(r"An? ", text) and text.endswith(".") and "  " not in text
            assert not re.search(r"\bnan\b|None|\.\.|, \.|_", text, re.IGNORECASE), text
            assert not RAW.search(text), RAW.search(text).group(0)
        assert texts.str.contains("First 24 hours in the unit:").all()
        assert texts.str.contains("Vital signs: ").mean() > 0.9
    one = texts.iloc[0]
    assert "heart rate" in one and "Not recorded" in " ".join(texts)
    if style == "banded":
        assert "typical" in one and not re.search(r"\d+\.\d", one.split("First 24 hours")[1])


def test_ages_capped_at_90_read_as_90_or_older(eicu):
    encoder = TextEncoder("yaib", "banded").fit(eicu.df)
    old = eicu.df[eicu.df["age"] == 90].head(3)
    assert len(old) and all("aged 90 or older" in t for t in encoder.transform(old))


def test_texts_fit_the_default_backbone(eicu, mimic):
    from alfia.model.alfia import ALFIAConfig
    from alfia.model.backbone import load_tokenizer
    from alfia.text.stats import token_lengths

    tokenizer = load_tokenizer()
    for cohort in (eicu, mimic):
        texts = TextEncoder("yaib", "banded").fit(cohort.df).transform(cohort.df).tolist()
        lengths = token_lengths(texts, tokenizer)
        assert lengths.p95 <= ALFIAConfig().max_length and lengths.max <= ALFIAConfig().max_length


def test_numbers_of_a_numeric_text_read_back_in_order(mimic):
    from alfia.text.writer import format_number
    from tests.text.helpers import numbers_in

    encoder = TextEncoder("yaib", "numeric").fit(mimic.df)
    rows = encoder.schema.check_features(mimic.df, encoder.columns_).to_dict("records")
    for row in rows:
        writer = encoder.writer(row)
        text = encoder._describe(writer)
        assert numbers_in(text) == [t for _, t in writer.numbers], text
        for names, written in writer.numbers:
            for name in names:
                expected = format_number(float(row[name]), encoder.schema[name].text_decimals)
                assert float(written) == float(expected), (name, text)


def test_rows_before_admission_are_dropped_and_counted(tmp_path):
    folder = copy_demo(tmp_path)
    stay = int(pd.read_parquet(folder / "sta.parquet")["stay_id"].iloc[2])

    def shift(dyn):
        first = (dyn["stay_id"] == stay) & (dyn["time"] == pd.Timedelta(0))
        dyn.loc[first, "time"] = -pd.Timedelta(hours=1)
        dyn.loc[first, "hr"] = 300.0
        return dyn

    rewrite(folder, "dyn.parquet", shift)
    cohort = build_yaib(folder)
    assert cohort.info["hourly_rows_dropped"]["before_window"] == 1
    assert cohort.df.set_index("stay_id").loc[stay, "hr_max"] < 300
