"""Database cohort builders (MIMIC-IV, eICU) on schema-true fixture databases, in DuckDB and in PostgreSQL.

The PostgreSQL tests start a throw-away cluster and skip with a message when the server binaries are absent.
"""

import math

import pandas as pd
import pytest

from alfia.cohorts import eicu_db, mimic_iv_db, read_cohort, write_cohort
from alfia.cohorts.eicu_db import build_eicu
from alfia.cohorts.mimic_iv_db import build_mimic_iv
from alfia.errors import AlfiaError
from tests.cohorts import db_fixtures as fx

pytest.importorskip("duckdb")


# --- fixtures -------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def pg_server():
    pytest.importorskip("psycopg")
    server = fx.PostgresServer()
    try:
        server.__enter__()
    except RuntimeError as exc:
        pytest.skip(f"PostgreSQL tests skipped: {exc}")
    yield server
    server.__exit__(None, None, None)


_counter = iter(range(10**6))


def make_db(backend, request, tmp_path, tables, rows, skip=()):
    if backend == "duckdb":
        return str(fx.write_duckdb(tmp_path / "db.duckdb", tables, rows, skip=skip))
    server = request.getfixturevalue("pg_server")
    url = server.create_database(f"alfia_test_{next(_counter)}")
    return fx.write_postgres(url, tables, rows, skip=skip)


BACKENDS = ["duckdb", "postgresql"]


@pytest.fixture(params=BACKENDS)
def mimic_db(request, tmp_path):
    return make_db(request.param, request, tmp_path, fx.MIMIC_TABLES, fx.mimic_rows())


@pytest.fixture(params=BACKENDS)
def eicu_db_url(request, tmp_path):
    return make_db(request.param, request, tmp_path, fx.EICU_TABLES, fx.eicu_rows())


def same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Frames equal up to the missing-category marker (None in memory, NaN after a parquet round trip)."""
    def norm(df):
        return df.astype(object).where(df.notna(), None)
    pd.testing.assert_frame_equal(norm(a), norm(b))


def row(cohort, stay_id):
    df = cohort.df.set_index("stay_id")
    return df.loc[stay_id]


# --- MIMIC-IV ------------------------------------------------------------------------------------------------------
def test_mimic_cohort_selection_and_values(mimic_db, tmp_path):
    c = build_mimic_iv(mimic_db, progress=False)
    assert dict(zip(c.df["stay_id"], c.df["hospital_mortality"], strict=True)) == fx.MIMIC_EXPECTED
    # second ICU stay (312), later admission (322) and the 17-year-old (303) are excluded
    assert not {312, 322, 303} & set(c.df["stay_id"])
    r1 = row(c, 301)
    assert (r1.gender, r1.marital_status, r1.race, r1.insurance, r1.language) == (
        "Female", "Widowed", "Black", "Private", "English")
    assert (r1.first_careunit, r1.smoker, r1.alcohol_abuse, r1.apsiii, r1.meld) == ("MICU", 1, 1, 40, 11)
    # GCS rows at hours 0.5, 6, 6, 23.9 (13, 14, 12, 15); hour -2 is before and hours 24, 25 after the window
    assert (r1.gcs_max, r1.gcs_min, r1.gcs_first, r1.gcs_last, r1.gcs_mean) == (15, 12, 13, 15, 13.5)
    assert r1.gcs_std == pytest.approx(pd.Series([13, 12, 14, 15]).std())
    # SOFA hours ending in [intime, intime + 24 h): hr 0..23 of [1, 2, 2, 3] + [4] * 20
    assert (r1.sofa_first, r1.sofa_last, r1.sofa_max) == (1, 4, 4)
    assert r1.sofa_mean == pytest.approx(88 / 24)
    r2 = row(c, 302)
    assert (r2.race, r2.insurance, r2.language, r2.marital_status, r2.first_careunit) == (
        "Hispanic/Latino", "No Charge", "Other", "Unknown", "CVICU")
    assert r2.smoker == 0  # the tobacco code belongs to the later admission
    assert (r2.gcs_min, r2.gcs_std) == (7, 0)
    r4 = row(c, 304)
    assert (r4.race, r4.language, r4.insurance, r4.admission_location) == ("Asian", "Unknown", "Unknown", None)
    assert (r4.age, r4.alcohol_abuse, r4.smoker) == (46, 1, 0)
    assert math.isnan(r4.height) and r4.weight == 61  # 300 cm is out of range -> missing
    r5 = row(c, 305)
    assert r5.age == 91 and r5.race == "Unknown" and math.isnan(r5.sapsii) and math.isnan(r5.gcs_mean)
    assert c.info["synthetic"] is False and c.info["source"].startswith("MIMIC-IV database")
    assert c.info["out_of_range_set_missing"] == {"height": 1}
    out = write_cohort(c, tmp_path / "mimic.parquet")
    back = read_cohort(out)
    same(back.df, c.df)
    assert back.schema.name == "mimic-iv"


def test_mimic_gcs_at_hour_25_and_second_stay_change_nothing(mimic_db):
    before = build_mimic_iv(mimic_db, progress=False).df
    fx.execute(mimic_db, f"INSERT INTO mimiciv_derived.gcs (subject_id, stay_id, charttime, gcs) VALUES "
                         f"(1, 301, TIMESTAMP '{fx.h(25.5):%Y-%m-%d %H:%M:%S}', 3), "
                         f"(1, 301, TIMESTAMP '{fx.h(24):%Y-%m-%d %H:%M:%S}', 3)")
    fx.execute(mimic_db, f"INSERT INTO mimiciv_derived.sofa (stay_id, hr, endtime, sofa_24hours) VALUES "
                         f"(301, 40, TIMESTAMP '{fx.h(40):%Y-%m-%d %H:%M:%S}', 20)")
    fx.execute(mimic_db, "INSERT INTO mimiciv_derived.gcs (subject_id, stay_id, charttime, gcs) VALUES "
                         "(2, 312, TIMESTAMP '2160-07-08 09:30:00', 3)")
    pd.testing.assert_frame_equal(build_mimic_iv(mimic_db, progress=False).df, before)


def test_mimic_leakage_check_refuses_a_leaky_window(mimic_db, monkeypatch):
    monkeypatch.setattr(mimic_iv_db, "WINDOW_HOURS", 48)  # the hour-24/25 GCS rows would now be selected
    with pytest.raises(AlfiaError, match=r"leakage check failed .* mimiciv_derived.gcs"):
        build_mimic_iv(mimic_db, progress=False)


def test_mimic_leakage_check_refuses_rows_without_time(mimic_db, monkeypatch):
    fx.execute(mimic_db, "INSERT INTO mimiciv_derived.gcs (subject_id, stay_id, charttime, gcs) VALUES "
                         "(1, 301, NULL, 3)")
    build_mimic_iv(mimic_db, progress=False)  # the correct window never selects it
    monkeypatch.setattr(mimic_iv_db, "in_window", lambda t, t0: f"({t} IS NULL OR {t} >= {t0})")
    with pytest.raises(AlfiaError, match="leakage check failed"):
        build_mimic_iv(mimic_db, progress=False)


def test_mimic_duckdb_and_postgresql_give_identical_cohorts(request, tmp_path):
    rows = fx.mimic_rows()
    duck = build_mimic_iv(make_db("duckdb", request, tmp_path, fx.MIMIC_TABLES, rows), progress=False)
    pg = build_mimic_iv(make_db("postgresql", request, tmp_path, fx.MIMIC_TABLES, rows), progress=False)
    pd.testing.assert_frame_equal(duck.df, pg.df)


@pytest.mark.parametrize("backend", BACKENDS)
def test_mimic_missing_table_is_one_clear_error(backend, request, tmp_path):
    db = make_db(backend, request, tmp_path, fx.MIMIC_TABLES, fx.mimic_rows(),
                 skip=("mimiciv_derived.sofa", "mimiciv_derived.oasis"))
    with pytest.raises(AlfiaError) as err:
        build_mimic_iv(db, progress=False)
    msg = str(err.value)
    assert "mimiciv_derived.oasis, mimiciv_derived.sofa" in msg and "mimic-code" in msg and "\n" not in msg


def test_missing_database_file_and_unreachable_server(tmp_path):
    with pytest.raises(AlfiaError, match=r"MIMIC-IV database .*nope.duckdb does not exist; build it with mimic-code"):
        build_mimic_iv(str(tmp_path / "nope.duckdb"), progress=False)
    (tmp_path / "junk.duckdb").write_text("not a database")
    with pytest.raises(AlfiaError, match="cannot open eICU database"):
        build_eicu(str(tmp_path / "junk.duckdb"), progress=False)
    pytest.importorskip("psycopg")
    with pytest.raises(AlfiaError, match="cannot connect") as err:
        build_mimic_iv("postgresql://user:secret@127.0.0.1:1/mimiciv", progress=False)
    assert "secret" not in str(err.value)


# --- eICU -----------------------------------------------------------------------------------------------------------
def test_eicu_cohort_selection_and_values(eicu_db_url, tmp_path):
    c = build_eicu(eicu_db_url, progress=False)
    assert dict(zip(c.df["stay_id"], c.df["hospital_mortality"], strict=True)) == fx.EICU_EXPECTED
    r1 = row(c, 1001)
    assert (r1.region, r1.ethnicity, r1.unit_type, r1.gender, r1.age) == (
        "Midwest", "African American", "MICU", "Male", 67)
    assert (r1.smoker, r1.alcohol_abuse, r1.obesity, r1.drug_abuse) == ("Yes", 1, 1, 0)  # drug abuse at 2000 min
    assert r1.apache_iv == 77  # apacheversion IV, not IVa
    # GCS at 10, 300, 300, 1439 min (11, 9, 10, 8); -30 is before, 1440 and 1500 after; text values are skipped
    assert (r1.gcs_max, r1.gcs_min, r1.gcs_first, r1.gcs_last, r1.gcs_mean) == (11, 8, 11, 8, 9.5)
    # SOFA: hour 1 = 8, hours 2-3 = 11 (P/F 113 ventilated), 4-5 = 12 (creatinine 3.6), 6-24 = 13 (GCS 9)
    assert (r1.sofa_first, r1.sofa_last, r1.sofa_max, r1.sofa_min) == (8, 13, 13, 8)
    assert r1.sofa_mean == pytest.approx(301 / 24)
    assert 0 < r1.sapsii <= 163 and 0 < r1.oasis <= 75
    r2 = row(c, 1002)
    assert (r2.age, r2.region, r2.gender, r2.ethnicity, r2.smoker, r2.drug_abuse) == (
        90, "Unknown", "Unknown", "Unknown", "Unknown", 1)
    assert math.isnan(r2.apache_iv) and math.isnan(r2.height) and r2.weight == 55
    assert (r2.gcs_mean, r2.sofa_first, r2.sofa_last) == (14.5, 1, 3)
    r4 = row(c, 1004)
    assert r4.gender == "Unknown" and math.isnan(r4.gcs_mean) and math.isnan(r4.sofa_mean)
    assert c.info["synthetic"] is False and c.info["source"].startswith("eICU-CRD v2.0 database")
    back = read_cohort(write_cohort(c, tmp_path / "eicu.parquet"))
    same(back.df, c.df)


def test_eicu_late_values_change_nothing(eicu_db_url):
    before = build_eicu(eicu_db_url, progress=False).df
    fx.execute(eicu_db_url, "INSERT INTO eicu_crd.nursecharting (nursingchartid, patientunitstayid, "
                            "nursingchartoffset, nursingchartcelltypevallabel, nursingchartcelltypevalname, "
                            "nursingchartvalue) VALUES (900, 1002, 1500, 'Glasgow coma score', 'GCS Total', '3')")
    fx.execute(eicu_db_url, "INSERT INTO eicu_crd.lab (labid, patientunitstayid, labresultoffset, labname, labresult) "
                            "VALUES (900, 1002, 1440, 'creatinine', 7.0)")
    pd.testing.assert_frame_equal(build_eicu(eicu_db_url, progress=False).df, before)


def test_eicu_leakage_check_refuses_late_and_untimed_rows(eicu_db_url, monkeypatch):
    monkeypatch.setattr(eicu_db, "WINDOW_MINUTES", 2880)
    with pytest.raises(AlfiaError, match="leakage check failed for eICU"):
        build_eicu(eicu_db_url, progress=False)
    monkeypatch.setattr(eicu_db, "WINDOW_MINUTES", 1440)
    # a lab row without a time (stay 1002 has one) is refused when a query would select it
    monkeypatch.setattr(eicu_db, "in_window", lambda t: f"({t} IS NULL OR ({t} >= 0 AND {t} < 1440))")
    with pytest.raises(AlfiaError, match=r"leakage check failed for eICU: 1 of \d+ rows of lab"):
        build_eicu(eicu_db_url, progress=False)


def test_eicu_duckdb_and_postgresql_give_identical_cohorts(request, tmp_path):
    rows = fx.eicu_rows()
    duck = build_eicu(make_db("duckdb", request, tmp_path, fx.EICU_TABLES, rows), progress=False)
    pg = build_eicu(make_db("postgresql", request, tmp_path, fx.EICU_TABLES, rows), progress=False)
    pd.testing.assert_frame_equal(duck.df, pg.df)


def test_eicu_missing_table_is_one_clear_error(tmp_path, request):
    db = make_db("duckdb", request, tmp_path, fx.EICU_TABLES, fx.eicu_rows(), skip=("eicu_crd.nursecharting",))
    with pytest.raises(AlfiaError, match=r"eICU database .* lacks table eicu_crd.nursecharting; build it"):
        build_eicu(db, progress=False)


# --- end to end: database -> cohort -> encode -> tiny train -> predict, through the CLI ----------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["mimic-iv", "eicu"])
def test_database_cohort_runs_encode_train_predict(name, backend, request, tmp_path, tiny_bert_dir):
    from alfia.cli import main

    tables, rows = ((fx.MIMIC_TABLES, fx.mimic_rows(crowd=60)) if name == "mimic-iv"
                    else (fx.EICU_TABLES, fx.eicu_rows(crowd=60)))
    db = make_db(backend, request, tmp_path, tables, rows)
    cohort, encoded, run, out = (tmp_path / f for f in ("cohort.parquet", "encoded.parquet", "run", "pred.parquet"))
    assert main(["cohort", name, "--db", db, "--out", str(cohort)]) == 0
    built = read_cohort(cohort).df
    assert len(built) >= 60 and built.groupby("split")["hospital_mortality"].nunique().eq(2).all()
    assert main(["encode", str(cohort), "--out", str(encoded)]) == 0
    texts = read_cohort(encoded).df["text"]
    assert texts.str.len().gt(50).all() and texts.nunique() == len(texts)
    assert main(["train", str(encoded), "--out", str(run), "--backbone", str(tiny_bert_dir), "--epochs", "1",
                 "--batch-size", "16", "--max-length", "64", "--fusion-layers", "2", "--lora-r", "4",
                 "--lora-layers", "all"]) == 0
    assert (run / "model").is_dir() and (run / "threshold.json").exists()
    # predict from the plain (unencoded) cohort: the run's own encoder writes the same texts
    assert main(["predict", str(run), str(cohort), "--out", str(out)]) == 0
    pred = pd.read_parquet(out)
    assert pred["stay_id"].tolist() == built["stay_id"].tolist()
    assert pred["probability"].between(0, 1).all() and pred["probability"].nunique() > 1
    assert set(pred["label"]) <= {0, 1}
    # the opt-in int8 path: the same stays, probabilities within the quantisation tolerance
    out8 = tmp_path / "pred8.parquet"
    assert main(["predict", str(run), str(cohort), "--out", str(out8), "--int8"]) == 0
    pred8 = pd.read_parquet(out8)
    assert pred8["stay_id"].tolist() == pred["stay_id"].tolist()
    assert (pred8["p_raw"] - pred["p_raw"]).abs().max() < 0.05  # the model's own output (before recalibration)
    assert '"precision": "int8"' in out8.with_suffix(".metrics.json").read_text()


# --- issue 15: patient-level splits, fixed SOFA window ------------------------------------------------------------
def test_eicu_splits_by_patient(request, tmp_path):
    """Regression: stays of one patient (uniquepid) landed in different splits."""
    rows = fx.eicu_rows(crowd=80)
    owner = {}
    for i, p in enumerate(r for r in rows["eicu_crd.patient"] if r["patientunitstayid"] >= 5000):
        p["uniquepid"] = f"pair-{i // 2}"  # two hospital stays per patient
        owner[p["patientunitstayid"]] = p["uniquepid"]
    c = build_eicu(make_db("duckdb", request, tmp_path, fx.EICU_TABLES, rows), progress=False)
    crowd = c.df[c.df["stay_id"] >= 5000]
    per_patient = crowd.groupby(crowd["stay_id"].map(owner))["split"].nunique()
    assert len(per_patient) == 40 and (per_patient == 1).all()
    assert c.info["split_by"] == "patient (patient.uniquepid)"


def test_eicu_sofa_is_not_cut_at_unit_discharge(eicu_db_url):
    """Regression: the hourly SOFA series stopped at unitdischargeoffset, an outcome-related time."""
    before = build_eicu(eicu_db_url, progress=False).df
    fx.execute(eicu_db_url, "UPDATE eicu_crd.patient SET unitdischargeoffset = 300 WHERE patientunitstayid = 1001")
    pd.testing.assert_frame_equal(build_eicu(eicu_db_url, progress=False).df, before)


def test_eicu_leakage_check_refuses_a_cut_sofa_series(eicu_db_url, monkeypatch):
    real = eicu_db.sofa_hourly
    monkeypatch.setattr(eicu_db, "sofa_hourly", lambda h, st: real(h, st).query("t <= 5"))
    with pytest.raises(AlfiaError, match="SOFA series .* stays whose series does not run to hour 24"):
        build_eicu(eicu_db_url, progress=False)
    monkeypatch.setattr(eicu_db, "sofa_hourly", lambda h, st: real(h, st).assign(t=lambda d: d["t"] + 1))
    with pytest.raises(AlfiaError, match="leakage check failed for eICU: the hourly SOFA series has [1-9]"):
        build_eicu(eicu_db_url, progress=False)


def test_mimic_keeps_one_stay_per_subject_so_its_split_is_by_patient(request, tmp_path):
    rows = fx.mimic_rows(crowd=30)
    c = build_mimic_iv(make_db("duckdb", request, tmp_path, fx.MIMIC_TABLES, rows), progress=False)
    subject = {r["stay_id"]: r["subject_id"] for r in rows["mimiciv_icu.icustays"]}
    assert c.df["stay_id"].map(subject).is_unique
    assert c.info["split_by"].startswith("patient (subject_id")
