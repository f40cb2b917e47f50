"""The MIMIC-IV database cohort builder on schema-true fixture databases, in DuckDB and in PostgreSQL.

The PostgreSQL tests start a throw-away cluster and skip with a message when the server binaries are absent.
"""

import math

import pandas as pd
import pytest

from alfia.cohorts import read_cohort, write_cohort
from alfia.datasets.mimic_iv import builder
from alfia.datasets.mimic_iv.builder import build_mimic_iv
from alfia.errors import AlfiaError
from tests.datasets import db_fixtures as fx
from tests.datasets.db_fixtures import BACKENDS, make_db, row, same

pytest.importorskip("duckdb")


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
    monkeypatch.setattr(builder, "WINDOW_HOURS", 48)  # the hour-24/25 GCS rows would now be selected
    with pytest.raises(AlfiaError, match=r"leakage check failed .* mimiciv_derived.gcs"):
        build_mimic_iv(mimic_db, progress=False)


def test_mimic_leakage_check_refuses_rows_without_time(mimic_db, monkeypatch):
    fx.execute(mimic_db, "INSERT INTO mimiciv_derived.gcs (subject_id, stay_id, charttime, gcs) VALUES "
                         "(1, 301, NULL, 3)")
    build_mimic_iv(mimic_db, progress=False)  # the correct window never selects it
    monkeypatch.setattr(builder, "in_window", lambda t, t0: f"({t} IS NULL OR {t} >= {t0})")
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


def test_mimic_keeps_one_stay_per_subject_so_its_split_is_by_patient(request, tmp_path):
    rows = fx.mimic_rows(crowd=30)
    c = build_mimic_iv(make_db("duckdb", request, tmp_path, fx.MIMIC_TABLES, rows), progress=False)
    subject = {r["stay_id"]: r["subject_id"] for r in rows["mimiciv_icu.icustays"]}
    assert c.df["stay_id"].map(subject).is_unique
    assert c.info["split_by"].startswith("patient (subject_id")
