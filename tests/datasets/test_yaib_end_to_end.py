"""Real patients through the whole pipeline: the bundled YAIB eICU demo (1,367 real ICU stays) through cohort ->
encode -> train -> predict -> report on the command line, scored on the MIMIC-III demo (another database), and the
same stays under both tasks (death in the ICU, death in hospital), which a run of one task flags on the other."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from alfia.cli import main
from alfia.cohorts import CW24, Cohort, read_cohort, write_cohort
from alfia.cohorts.task import YAIB_MORTALITY24

EICU_DEMO = Path(__file__).resolve().parents[1] / "data" / "eicu-demo"  # the demo's own tables (ODbL)
TINY = ["--epochs", "1", "--batch-size", "32", "--max-length", "64", "--fusion-layers", "2", "--lora-r", "4"]


def demo_patients() -> pd.DataFrame:
    """The eICU demo's patient table (the real CSV), one row per unit stay."""
    return pd.read_csv(EICU_DEMO / "patient.csv.gz", usecols=["patientunitstayid", "uniquepid", "unitdischargestatus",
                                                            "hospitaldischargestatus"])


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, tiny_bert_dir):
    root = tmp_path_factory.mktemp("yaib-e2e")
    cohort, encoded, run = root / "eicu.parquet", root / "eicu.text.parquet", root / "run"
    assert main(["cohort", "yaib-eicu-demo", "--out", str(cohort)]) == 0
    assert main(["encode", str(cohort), "--out", str(encoded)]) == 0
    assert main(["train", str(encoded), "--out", str(run), "--backbone", str(tiny_bert_dir), *TINY]) == 0
    return root, cohort, run


def test_the_yaib_label_is_death_in_the_icu_of_the_demo_tables(demo_run):
    _, cohort, _ = demo_run
    df = read_cohort(cohort).df
    status = demo_patients().set_index("patientunitstayid")["unitdischargestatus"]
    assert status.index.is_unique and set(df["stay_id"]) <= set(status.index)
    expired = (status.loc[df["stay_id"]] == "Expired").astype(int).to_numpy()
    assert (df[YAIB_MORTALITY24.label].to_numpy() == expired).all()
    assert (len(df), int(expired.sum())) == (1367, 70)


def test_the_real_demo_trains_predicts_and_reports_with_its_task(demo_run, capsys):
    import json

    root, _, run = demo_run
    config = json.loads((run / "config.json").read_text())
    assert config["task"]["name"] == "yaib-mortality24"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["task"]["label"] == "icu_mortality"
    preds = pd.read_parquet(run / "predictions.parquet")
    assert "icu_mortality" in preds.columns and "hospital_mortality" not in preds.columns
    out = root / "mimic.pred.parquet"
    capsys.readouterr()
    assert main(["predict", str(run), "yaib-mimic-demo", "--out", str(out)]) == 0
    assert "trained for" not in capsys.readouterr().err  # same task: no cross-task warning
    scored = pd.read_parquet(out)
    assert len(scored) == 99 and scored["probability"].between(0, 1).all()
    assert not scored["warnings"].str.contains("task:").any()
    info = json.loads((root / "mimic.pred.metrics.json").read_text())
    assert info["metrics"]["n"] == 99 and info["metrics"]["n_pos"] == 21
    report = root / "report.html"
    assert main(["report", str(run), "--cohort", str(root / "eicu.text.parquet"), "--out", str(report),
                 "--no-texts", "--max-stays", "200", "--projection", "pca", "--classifier", "mlp"]) == 0
    page = report.read_text()
    assert "yaib-mortality24" in page and "death in the ICU" in page
    from fastapi.testclient import TestClient

    from alfia.serving.app import create_app
    from alfia.serving.service import RiskService

    card = TestClient(create_app(RiskService.load(run))).get("/v1/model").json()
    assert card["task"]["name"] == "yaib-mortality24" and "death in the ICU" in card["name"]
    assert "in-hospital" not in json.dumps(card)


def test_the_same_stays_under_the_in_hospital_task_are_flagged(demo_run, capsys):
    """YAIB's label (death in the ICU) and the in-hospital one of the same stays differ (deaths after ICU
    discharge): a run trained on one task warns on a cohort labelled with the other."""
    root, cohort_path, run = demo_run
    icu = read_cohort(cohort_path)
    status = demo_patients().set_index("patientunitstayid")["hospitaldischargestatus"].loc[icu.df["stay_id"]]
    known = status.isin(["Alive", "Expired"]).to_numpy()
    df = icu.df[known].drop(columns=[icu.label]).reset_index(drop=True)
    df.insert(1, CW24.label, (status[known] == "Expired").astype(int).to_numpy())
    hospital = Cohort(df, icu.schema, {**icu.info, "source": "yaib-eicu-demo, in-hospital label"}, task=CW24)
    changed = (df[CW24.label].to_numpy() != icu.df.loc[known, icu.label].to_numpy()).sum()
    assert changed > 0  # the two tasks label some of the same stays differently
    path = root / "eicu-hospital.parquet"
    write_cohort(hospital, path)
    capsys.readouterr()
    assert main(["predict", str(run), str(path), "--out", str(root / "h.pred.parquet")]) == 0
    err = capsys.readouterr().err
    assert sum("trained for 'yaib-mortality24'" in line for line in err.splitlines()) == 1
    scored = pd.read_parquet(root / "h.pred.parquet")
    assert scored["warnings"].str.contains("task: the run was trained for 'yaib-mortality24'").all()
