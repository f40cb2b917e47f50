"""The eICU builder on the real tables of the open eICU-CRD demo v2.0.1 (tests/data/eicu-demo/, ODbL 1.0).

Eight of the builder's eleven tables are shipped; ``lab``, ``vitalperiodic`` and ``nursecharting`` are too large and
are created EMPTY with eICU-CRD v2.0's columns and types. Every table is created with eicu-code's definitions
(``tests.datasets.db_fixtures.EICU_TABLES``, copied from build-db/postgres/postgres_create_tables.sql) and filled
the way eicu-code's build scripts fill it, so the builder sees what a real eICU-CRD database gives:

* ``pg-copy``: DuckDB, ``COPY ... (ALLOW_QUOTED_NULLS false)``: a quoted empty CSV field (``""``: empty age,
  gender, ethnicity, discharge status ...) stays an empty string, as in eicu-code's PostgreSQL build
  (``\\copy ... CSV HEADER NULL ''``);
* ``duckdb-copy``: DuckDB, plain ``COPY`` as eicu-code's build-db/duckdb: quoted empty fields become NULL;
* ``sniffed``: ``CREATE TABLE AS SELECT * FROM read_csv(...)`` (DuckDB's type sniffing; what docs/databases.md
  suggested before eicu-code had a DuckDB build);
* ``postgresql``: a PostgreSQL server loaded with eicu-code's own COPY options.

All four must give the same cohort.
"""

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alfia.cohorts import read_cohort
from alfia.datasets.eicu.builder import TABLES, build_eicu
from tests.datasets import db_fixtures as fx

duckdb = pytest.importorskip("duckdb")

DEMO = Path(__file__).resolve().parents[1] / "data" / "eicu-demo"
CSV = {"patient": "patient", "hospital": "hospital", "apachepatientresult": "apachePatientResult",
       "apacheapsvar": "apacheApsVar", "apachepredvar": "apachePredVar", "pasthistory": "pastHistory",
       "diagnosis": "diagnosis", "vitalaperiodic": "vitalAperiodic"}  # table -> demo file (eICU-CRD's spelling)
EMPTY = ("nursecharting", "lab", "vitalperiodic")  # not in the demo folder: too large to carry
DDL = {name.split(".")[1]: cols for name, cols in fx.EICU_TABLES.items()}

# The cohort rule counted independently (pandas, below) gives 2,141 stays, 180 deaths, 1,813 patients: exactly our
# own earlier reading of the rule. Of the demo's 2,520 unit stays in 2,174 hospital stays, 346 are not the first
# unit stay of their hospital stay; of the 2,174 first unit stays, 25 have no hospital discharge status, 4 no age
# and 4 are younger than 18.
N_STAYS, N_DEATHS, N_PATIENTS = 2141, 180, 1813


def _csv(table: str) -> Path:
    return DEMO / f"{CSV[table]}.csv.gz"


def load_duckdb(path: Path, how: str) -> str:
    """A DuckDB file with the eleven tables in schema eicu_crd; ``how``: pg-copy, duckdb-copy or sniffed."""
    created = {f"eicu_crd.{t}": DDL[t] for t in TABLES if how != "sniffed" or t in EMPTY}
    fx.write_duckdb(path, created, {})
    con = duckdb.connect(str(path))
    try:
        for table in CSV:
            if how == "sniffed":
                con.execute(f"CREATE TABLE eicu_crd.{table} AS SELECT * FROM read_csv('{_csv(table)}')")
            else:
                quoted_nulls = "true" if how == "duckdb-copy" else "false"
                con.execute(f"COPY eicu_crd.{table} FROM '{_csv(table)}' "
                            f"(HEADER, DELIMITER ',', QUOTE '\"', ALLOW_QUOTED_NULLS {quoted_nulls})")
    finally:
        con.close()
    return str(path)


def load_postgres(url: str) -> str:
    """The tables in schema eicu_crd of a PostgreSQL database, loaded as eicu-code's postgres_load_data_gz.sql does
    (``\\copy TABLE FROM program 'gzip -c -d FILE' DELIMITER ',' CSV HEADER NULL ''``)."""
    import psycopg

    fx.write_postgres(url, {f"eicu_crd.{t}": DDL[t] for t in TABLES}, {})
    with psycopg.connect(url, autocommit=True) as con, con.cursor() as cur:
        for table in CSV:
            with cur.copy(f"COPY eicu_crd.{table} FROM STDIN (FORMAT csv, DELIMITER ',', HEADER true, NULL '')") as cp:
                cp.write(gzip.decompress(_csv(table).read_bytes()))
        # eicu-code's build goes on with postgres_add_indexes.sql (an index on patientunitstayid of every table);
        # without indexes nor statistics, a freshly loaded database makes the planner join the cohort to
        # vitalaperiodic by a nested loop over full scans (minutes per query on the demo)
        for table in TABLES:
            key = "hospitalid" if table == "hospital" else "patientunitstayid"
            cur.execute(f"CREATE INDEX ON eicu_crd.{table} ({key})")
        cur.execute("ANALYZE")
    return url


@pytest.fixture(scope="module")
def expected() -> pd.DataFrame:
    """The cohort rule counted with pandas straight from patient.csv.gz (every value a string, as in the file):
    per hospital stay the unit stay with the latest hospitaladmitoffset (then unitvisitnumber, then stay id), kept
    when the age is >= 18 ('> 89' is 90) and the hospital discharge status is Alive or Expired."""
    p = pd.read_csv(_csv("patient"), dtype=str, keep_default_na=False)
    for col in ("patientunitstayid", "hospitaladmitoffset", "unitvisitnumber"):
        p[col] = p[col].astype(int)
    p["age_years"] = pd.to_numeric(p["age"].replace("> 89", "90"), errors="coerce")
    first = (p.sort_values(["patienthealthsystemstayid", "hospitaladmitoffset", "unitvisitnumber",
                            "patientunitstayid"], ascending=[True, False, True, True])
             .groupby("patienthealthsystemstayid").head(1))
    kept = first[(first["age_years"] >= 18) & first["hospitaldischargestatus"].isin(["Alive", "Expired"])]
    return kept.set_index("patientunitstayid").sort_index()


def test_demo_files_are_the_original_tables():
    sums = dict(line.split()[::-1] for line in (DEMO / "SHA256SUMS").read_text().splitlines() if line.strip())
    assert set(sums) == {f"{f}.csv.gz" for f in CSV.values()} | {"admissionDx.csv.gz"}
    for name, digest in sums.items():
        assert hashlib.sha256((DEMO / name).read_bytes()).hexdigest() == digest, name
    assert (DEMO / "LICENSE-ODbL.txt").exists() and "ODbL" in (DEMO / "README.md").read_text()


def test_fixture_tables_have_the_real_columns():
    """The fixtures' table definitions (eicu-code's) name exactly the columns of the real CSVs, in order."""
    for table in CSV:
        with gzip.open(_csv(table), "rt") as fh:
            header = fh.readline().strip().split(",")
        assert header == [c for c, _ in DDL[table]], table


def test_demo_cohort_through_the_cli(tmp_path, expected):
    from alfia.cli import main

    db, out = load_duckdb(tmp_path / "eicu-demo.duckdb", "pg-copy"), tmp_path / "eicu.parquet"
    assert main(["cohort", "eicu", "--source", db, "--out", str(out)]) == 0
    c = read_cohort(out)
    df = c.df.set_index("stay_id")
    label = c.task.label
    assert (len(df), int(df[label].sum())) == (N_STAYS, N_DEATHS)
    assert (c.info["n_stays"], c.info["deaths"]) == (N_STAYS, N_DEATHS)
    # the independent count agrees stay by stay, and the label is the hospital discharge status
    assert df.index.tolist() == expected.index.tolist()
    assert expected["uniquepid"].nunique() == N_PATIENTS
    assert (len(expected), int((expected["hospitaldischargestatus"] == "Expired").sum())) == (N_STAYS, N_DEATHS)
    assert df[label].tolist() == (expected["hospitaldischargestatus"] == "Expired").astype(int).tolist()
    # a patient's stays share one split
    assert df.groupby(expected["uniquepid"])["split"].nunique().eq(1).all()

    # demographics as recorded: '> 89' is 90, empty strings are Unknown, every category is known
    assert df["age"].tolist() == expected["age_years"].tolist()
    assert (df.loc[expected["age"] == "> 89", "age"] == 90).all() and (expected["age"] == "> 89").sum() > 50
    assert (df.loc[expected["gender"] == "", "gender"] == "Unknown").all()
    assert (df.loc[expected["ethnicity"] == "", "ethnicity"] == "Unknown").all()
    assert df["ethnicity"].eq(expected["ethnicity"].replace("", "Unknown")).all()
    assert df["unit_type"].eq(expected["unittype"]).all() and c.info["unmapped_categories"] == {}
    hospital = pd.read_csv(_csv("hospital"), dtype=str, keep_default_na=False).set_index("hospitalid")["region"]
    assert df["region"].eq(expected["hospitalid"].map(hospital).replace("", "Unknown")).all()
    weight = pd.to_numeric(expected["admissionweight"], errors="coerce")
    assert np.allclose(df["weight"], weight.where(weight.between(20, 400)), equal_nan=True)

    # APACHE IV: apachepatientresult's version IV score, -1 missing
    apache = pd.read_csv(_csv("apachepatientresult"))
    apache = apache[apache["apacheversion"] == "IV"].set_index("patientunitstayid")["apachescore"]
    apache = pd.Series(df.index.map(apache), index=df.index, dtype="float64")
    assert apache.index.is_unique and np.allclose(df["apache_iv"], apache.where(apache >= 0), equal_nan=True)

    # the empty tables are recorded, and what comes only from them is missing, not 0
    assert c.info["empty_tables"] == ["nursecharting", "lab", "vitalperiodic"]
    effects = c.info["features_from_empty_tables"]
    assert set(effects) == {"gcs", "sapsii", "oasis", "sofa"} and effects["gcs"].startswith("missing")
    assert df.filter(like="gcs_").isna().all().all()
    # scores keep their convention: missing components score 0. SOFA here has only its cardiovascular component
    # (MAP < 70 from vitalaperiodic: 0 or 1); SAPS II and OASIS are present for every stay
    assert df[["sapsii", "oasis"]].notna().all().all() and df["sapsii"].between(0, 163).all()
    assert set(df["sofa_max"].dropna().unique()) == {0.0, 1.0}
    # features from the real tables are there: smoker has no source in the demo (no pasthistory path names
    # smoking), alcohol withdrawal filed under "drug withdrawal" counts as alcohol abuse
    assert (df["smoker"] == "Unknown").all()
    assert df["alcohol_abuse"].sum() > df["drug_abuse"].sum() > 0 and df["obesity"].sum() > 0


@pytest.mark.parametrize("how", ["duckdb-copy", "sniffed", "postgresql"])
def test_demo_cohort_does_not_depend_on_how_the_csvs_were_loaded(how, request, tmp_path):
    reference = build_eicu(load_duckdb(tmp_path / "reference.duckdb", "pg-copy"), progress=False)
    if how == "postgresql":
        server = request.getfixturevalue("pg_server")
        db = load_postgres(server.create_database(f"eicu_demo_{tmp_path.name[-20:].replace('-', '_')}"))
    else:
        db = load_duckdb(tmp_path / f"{how}.duckdb", how)
    c = build_eicu(db, progress=False)
    pd.testing.assert_frame_equal(c.df, reference.df)
    assert c.info["empty_tables"] == reference.info["empty_tables"]
