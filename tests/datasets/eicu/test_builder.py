"""The eICU database cohort builder on schema-true fixture databases, in DuckDB and in PostgreSQL.

The PostgreSQL tests start a throw-away cluster and skip with a message when the server binaries are absent.
"""

import math

import pandas as pd
import pytest

from alfia.cohorts import read_cohort, write_cohort
from alfia.datasets.eicu import builder
from alfia.datasets.eicu.builder import build_eicu
from alfia.errors import AlfiaError
from tests.datasets import db_fixtures as fx
from tests.datasets.db_fixtures import make_db, row, same

pytest.importorskip("duckdb")


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
    assert (r4.alcohol_abuse, r4.drug_abuse) == (1, 0)  # "drug withdrawal syndrome|alcohol" is alcohol withdrawal
    assert c.info["empty_tables"] == [] and c.info["features_from_empty_tables"] == {}
    assert c.info["synthetic"] is False and c.info["source"].startswith("eICU-CRD v2.0 database")
    back = read_cohort(write_cohort(c, tmp_path / "eicu.parquet"))
    same(back.df, c.df)


def test_eicu_late_values_change_nothing(eicu_db_url):
    before = build_eicu(eicu_db_url, progress=False).df
    fx.execute(eicu_db_url, "INSERT INTO eicu_crd.nursecharting (nursingchartid, patientunitstayid, "
                            "nursingchartoffset, nursingchartentryoffset, nursingchartcelltypecat, "
                            "nursingchartcelltypevallabel, nursingchartcelltypevalname, nursingchartvalue) "
                            "VALUES (900, 1002, 1500, 1500, 'Scores', 'Glasgow coma score', 'GCS Total', '3')")
    fx.execute(eicu_db_url, "INSERT INTO eicu_crd.lab (labid, patientunitstayid, labresultoffset, labtypeid, labname, "
                            "labresult) VALUES (900, 1002, 1440, 1, 'creatinine', 7.0)")
    pd.testing.assert_frame_equal(build_eicu(eicu_db_url, progress=False).df, before)


def test_eicu_leakage_check_refuses_late_and_untimed_rows(eicu_db_url, monkeypatch):
    monkeypatch.setattr(builder, "WINDOW_MINUTES", 2880)
    with pytest.raises(AlfiaError, match="leakage check failed for eICU"):
        build_eicu(eicu_db_url, progress=False)
    monkeypatch.setattr(builder, "WINDOW_MINUTES", 1440)
    # a vital-sign row without a time (stay 1002 has one) is refused when a query would select it
    monkeypatch.setattr(builder, "in_window", lambda t: f"({t} IS NULL OR ({t} >= 0 AND {t} < 1440))")
    with pytest.raises(AlfiaError, match=r"leakage check failed for eICU: 1 of \d+ rows of vitalperiodic"):
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
    real = builder.sofa_hourly
    monkeypatch.setattr(builder, "sofa_hourly", lambda h, st: real(h, st).query("t <= 5"))
    with pytest.raises(AlfiaError, match="SOFA series .* stays whose series does not run to hour 24"):
        build_eicu(eicu_db_url, progress=False)
    monkeypatch.setattr(builder, "sofa_hourly", lambda h, st: real(h, st).assign(t=lambda d: d["t"] + 1))
    with pytest.raises(AlfiaError, match="leakage check failed for eICU: the hourly SOFA series has [1-9]"):
        build_eicu(eicu_db_url, progress=False)


def test_eicu_implausible_values_change_nothing(eicu_db_url):
    """Regression (real eICU demo): non-invasive blood pressures of 0 were read as values (SAPS II +13 points);
    values outside eicu-code's plausible ranges are not selected. Stay 1001 has a NIBP of 0/0 and platelets of 0."""
    before = build_eicu(eicu_db_url, progress=False).df
    fx.execute(eicu_db_url, "DELETE FROM eicu_crd.vitalaperiodic WHERE noninvasivesystolic = 0")
    fx.execute(eicu_db_url, "DELETE FROM eicu_crd.lab WHERE labresult = 0")
    pd.testing.assert_frame_equal(build_eicu(eicu_db_url, progress=False).df, before)


def test_eicu_empty_tables_are_recorded_and_their_features_missing(eicu_db_url):
    for table in ("nursecharting", "pasthistory", "diagnosis"):
        fx.execute(eicu_db_url, f"DELETE FROM eicu_crd.{table}")
    c = build_eicu(eicu_db_url, progress=False)
    assert c.info["empty_tables"] == ["pasthistory", "diagnosis", "nursecharting"]
    effects = c.info["features_from_empty_tables"]
    assert set(effects) == {"smoker", "alcohol_abuse", "drug_abuse", "obesity", "gcs", "sapsii", "oasis", "sofa"}
    assert effects["gcs"].startswith("missing") and "score 0" in effects["sapsii"]
    assert c.df[["alcohol_abuse", "drug_abuse", "obesity", "gcs_mean", "gcs_max"]].isna().all().all()
    assert (c.df["smoker"] == "Unknown").all() and c.df["sapsii"].notna().all()


def test_eicu_every_feature_has_its_input_tables():
    names = [c.name for c in builder.SCHEMA.columns]
    covered = [n for f in builder.FEATURE_TABLES for n in builder.feature_columns(f)]
    assert sorted(covered) == sorted(names)
    assert {t for tables in builder.FEATURE_TABLES.values() for t in tables} <= set(builder.TABLES)
