"""``alfia predict`` writes every stay's warnings (``warnings``, ``out_of_distribution``): the same ones the service
answers for the same stay, from the run's own reference.json."""

from __future__ import annotations

import pandas as pd
from fastapi.testclient import TestClient

from alfia.cohorts import Cohort, write_cohort
from alfia.cohorts.bundled import load_bundled
from alfia.evaluation import drift
from alfia.serving.app import create_app
from alfia.serving.service import RiskService
from tests.serving.test_service import record_of


def test_alfia_predict_on_set_b_writes_the_services_warnings(tiny_run, tmp_path, capsys):
    from alfia.cli import main

    set_b = load_bundled("p12-b")
    sample = Cohort(df=set_b.df.sample(n=60, random_state=0).reset_index(drop=True), schema=set_b.schema,
                    info=set_b.info)
    write_cohort(sample, tmp_path / "b.parquet")
    out = tmp_path / "b-pred.parquet"
    assert main(["predict", str(tiny_run["run"]), str(tmp_path / "b.parquet"), "--out", str(out)]) == 0
    table = pd.read_parquet(out)
    assert str(table["out_of_distribution"].dtype) == "boolean" and not table["out_of_distribution"].isna().any()
    kinds = drift.kinds_of(table["warnings"])
    counts = drift.count_kinds(kinds)
    # the tiny run trained on 75 stays: many of set B lie outside its ranges; every text is cut at 48 tokens
    assert counts["truncated"] == 60 and counts["outside_training_range"] > 0 and counts["reference_unavailable"] == 0
    assert table["out_of_distribution"].tolist() == [bool(k & set(drift.OUT_OF_DISTRIBUTION)) for k in kinds]
    printed = capsys.readouterr().out
    assert f"warnings: 60 of 60 stays (outside_training_range {counts['outside_training_range']}" in printed
    # the service says the same of the same stay
    client = TestClient(create_app(RiskService.load(tiny_run["run"])))
    rows = [0, *table.index[table["out_of_distribution"]][:3]]
    body = {"stays": [{"stay_id": int(sample.df["stay_id"][i]), "record": record_of(sample, i)} for i in rows]}
    answers = client.post("/v1/predict", json=body).json()["results"]
    for i, answer in zip(rows, answers, strict=True):
        assert "; ".join(f"{w['kind']}: {w['message']}" for w in answer["warnings"]) == table["warnings"][i]
        assert answer["out_of_distribution"] == table["out_of_distribution"][i]
