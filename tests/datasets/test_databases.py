"""Both database cohort builders (MIMIC-IV, eICU): one clear error for a missing or unreachable database, and
database -> cohort -> encode -> train -> predict through the CLI, in DuckDB and in PostgreSQL."""

import pandas as pd
import pytest

from alfia.cohorts import read_cohort
from alfia.datasets.eicu.builder import build_eicu
from alfia.datasets.mimic_iv.builder import build_mimic_iv
from alfia.errors import AlfiaError
from tests.datasets import db_fixtures as fx
from tests.datasets.db_fixtures import BACKENDS, make_db

pytest.importorskip("duckdb")


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
