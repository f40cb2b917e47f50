"""The risk service through FastAPI's TestClient: answers, limits (413/422, never 500), logs, determinism,
model card, health and Prometheus metrics."""

from __future__ import annotations

import json
import logging
import math
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from alfia.errors import AlfiaError
from alfia.serving.app import create_app
from alfia.serving.service import Bands, Limits, RiskService

LIMITS = Limits(max_body_bytes=20_000, max_stays=4, max_text_chars=500)


@pytest.fixture(scope="module")
def service(tiny_run):
    return RiskService.load(tiny_run["run"], limits=LIMITS, training_cohort=tiny_run["cohort"])


@pytest.fixture(scope="module")
def client(service):
    return TestClient(create_app(service))


def record_of(cohort, i: int) -> dict:
    """Row ``i`` of the cohort as the JSON record a client would send (missing values left out)."""
    row = cohort.df.iloc[i]
    out = {}
    for col in cohort.schema.columns:
        value = row[col.name]
        if col.role != "feature" or value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        out[col.name] = value if col.kind == "category" else (int(value) if col.kind in ("int", "binary")
                                                               else float(value))
    return out


def test_record_answer_matches_the_run_on_the_same_stay(client, service, tiny_run):
    cohort = tiny_run["cohort"]
    record = record_of(cohort, 3)
    r = client.post("/v1/predict", json={"stays": [{"stay_id": "bed-7", "record": record}]})
    assert r.status_code == 200, r.text
    result = r.json()["results"][0]
    assert result["stay_id"] == "bed-7"
    # the text is the run's own encoder's text of that row, and the probability the run's
    assert result["text"] == cohort.df["text"].iloc[3]
    expected = service.run.predict_proba([result["text"]])[0]
    assert result["probability"] == pytest.approx(expected, abs=1e-3)
    assert result["band"] == service.bands.of(result["probability"])
    assert result["alert"] == (result["probability"] >= service.run.threshold)
    assert len(result["layer_weights"]) == 2 and all(0 <= w <= 1 for w in result["layer_weights"])
    words = result["words"]
    assert " ".join(w["word"] for w in words) == " ".join(result["text"].split())
    # beta sums to 1 over the tokens; the special tokens ([CLS], [SEP]) hold the rest
    assert 0.5 < sum(w["weight"] for w in words) <= 1 + 1e-3
    top = result["top_words"]
    assert top and [w["weight"] for w in top] == sorted((w["weight"] for w in top), reverse=True)
    assert top[0]["weight"] == max(w["weight"] for w in words)
    assert result["explanation"] is None


def test_text_input_and_explanations(client, tiny_run):
    cohort = tiny_run["cohort"]
    record = record_of(cohort, 5)
    r = client.post("/v1/predict", json={"stays": [{"record": record}, {"text": "gcs 15 , sofa score 9"}],
                                         "explain": True})
    assert r.status_code == 200, r.text
    by_record, by_text = r.json()["results"]
    assert by_text["text"] == "gcs 15 , sofa score 9" and by_text["explanation"] is None
    effects = by_record["explanation"]
    assert {e["variable"] for e in effects} == set(record)  # one effect per variable the record has
    schema = cohort.schema
    assert all(e["wording"] == schema[e["variable"]].description for e in effects)
    # an effect is the probability with the value minus the probability with it written "not recorded"
    worst = effects[0]
    without = client.post("/v1/predict", json={"stays": [{"record": {k: v for k, v in record.items()
                                                                      if k != worst["variable"]}}]})
    p_without = without.json()["results"][0]["probability"]
    assert worst["effect"] == pytest.approx(by_record["probability"] - p_without, abs=2e-4)


def test_missing_fields_are_written_not_recorded(client):
    r = client.post("/v1/predict", json={"stays": [{"record": {"age": 70, "gender": "male"}}]})
    assert r.status_code == 200, r.text
    assert "Not recorded" in r.json()["results"][0]["text"]


@pytest.mark.parametrize("body, where", [
    ({"stays": [{"record": {"gcs_min": 2}}]}, "gcs_min"),                 # below GCS 3
    ({"stays": [{"record": {"gcs_min": 16}}]}, "gcs_min"),                # above GCS 15
    ({"stays": [{"record": {"gender": "other"}}]}, "gender"),             # not a category
    ({"stays": [{"record": {"heart_rate_of_the_moon": 1}}]}, "heart_rate_of_the_moon"),  # unknown field
    ({"stays": [{"record": {"ref_saps1": 10}}]}, "ref_saps1"),            # a reference column is no input
    ({"stays": [{"record": {"age": "old"}}]}, "age"),
    ({"stays": [{"text": "x" * 501}]}, "text"),                           # text too long
    ({"stays": [{"text": "a", "record": {}}]}, "stays"),                  # both inputs
    ({"stays": [{}]}, "stays"),                                           # neither
    ({"stays": []}, "stays"),
    ({"stays": [{"text": "a"}] * 5}, "stays"),                            # too many stays
    ({"stays": [{"text": "a"}], "extra": 1}, "extra"),
])
def test_bad_input_is_422_with_the_reason(client, body, where):
    r = client.post("/v1/predict", json=body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert any(where in map(str, e["loc"]) for e in detail), detail
    assert all(e["msg"] for e in detail)


def test_non_json_and_nan_are_422(client):
    assert client.post("/v1/predict", content=b"{not json", headers={"content-type": "application/json"}
                       ).status_code == 422
    r = client.post("/v1/predict", content=b'{"stays": [{"record": {"age": NaN}}]}',
                    headers={"content-type": "application/json"})
    assert r.status_code == 422


def test_body_over_the_limit_is_413(client):
    big = json.dumps({"stays": [{"text": "y" * 400}] * 60}).encode()
    r = client.post("/v1/predict", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "larger than" in r.json()["detail"]

    def chunks():  # no Content-Length: the size is found while reading
        for _ in range(30):
            yield b" " * 1000

    r = client.post("/v1/predict", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_no_patient_text_or_value_in_the_logs(client, tiny_run, caplog):
    record = {**record_of(tiny_run["cohort"], 2), "age": 87.0}
    secret = "zebra-unicorn-findings"
    # on the "alfia" logger itself: an earlier `alfia ...` command in this process may have raised its level
    # and stopped it from propagating to the root logger, where caplog listens
    alfia_logger = logging.getLogger("alfia")
    alfia_logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.DEBUG, logger="alfia"):
            assert client.post("/v1/predict", json={"stays": [{"text": f"gcs 15 {secret}"}, {"record": record}],
                                                    "explain": True}).status_code == 200
            assert client.post("/v1/predict", json={"stays": [{"text": secret * 100}]}).status_code == 422
    finally:
        alfia_logger.removeHandler(caplog.handler)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "/v1/predict" in logged  # the request was logged ...
    # ... without its content; the request's duration ("287.1 ms") is no patient value
    assert secret not in logged and "87" not in re.sub(r"\d+\.\d ms", "", logged)


def test_same_input_same_answer_under_concurrency(client, tiny_run):
    cohort = tiny_run["cohort"]
    bodies = [{"stays": [{"record": record_of(cohort, i)}, {"text": cohort.df["text"].iloc[i + 1][:450]}]}
              for i in range(8)]
    alone = [client.post("/v1/predict", json=b).json() for b in bodies]
    assert all(len(a["results"]) == 2 for a in alone)
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda b: client.post("/v1/predict", json=b).json(), bodies * 3))
    assert together == alone * 3


def test_model_card_health_and_docs(client, tiny_run, service):
    card = client.get("/v1/model").json()
    run = tiny_run["run"]
    config = json.loads((run / "config.json").read_text())
    assert card["training_cohort"]["checksum"] == config["cohort"]["checksum"]
    assert card["threshold"]["value"] == service.run.threshold
    assert card["schema"]["name"] == "physionet2012"
    assert {f["name"] for f in card["schema"]["fields"]} == set(tiny_run["cohort"].schema.feature_columns)
    test = json.loads((run / "metrics.json").read_text())["test"]
    assert card["metrics"]["test"]["auprc"] == {k: test["auprc"][k] for k in ("value", "ci_low", "ci_high")}
    assert card["versions"]["alfia"]
    assert client.get("/healthz").json() == {"status": "ok"}
    assert "/v1/predict" in client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 200


def test_metrics_count_requests_bands_and_drift(tiny_run, service):
    client = TestClient(create_app(service))  # a fresh registry
    low, high = service.ranges["gcs_min"]
    records = [{"gcs_min": 3 if low > 3 else 15, "age": 60}, {"age": 60}, {"gcs_min": int(low)}]
    if low == 3 and high == 15:
        records[0] = {"gcs_min": 3}  # nothing can be outside: fall back to checking the missing share only
    client.post("/v1/predict", json={"stays": [{"record": r} for r in records]})
    client.post("/v1/predict", json={"stays": [{"text": "gcs 15 , sofa score 9"}]})
    text = client.get("/v1/metrics").text
    assert 'alfia_requests_total{path="/v1/predict",status="200"} 2.0' in text
    assert "alfia_request_seconds_bucket" in text
    assert sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith("alfia_stays_total")) == 4
    assert 'alfia_input_missing_share{variable="gcs_min"} 0.3333' in text
    assert 'alfia_input_missing_share{variable="sofa_max"} 1.0' in text
    if (low, high) != (3, 15):
        assert 'alfia_input_outside_training_range_share{variable="gcs_min"} 0.3333' in text
    assert 'alfia_input_outside_training_range_share{variable="age"} 0.0' in text


def test_bands():
    bands = Bands.default(0.3)
    assert [bands.of(p) for p in (0.0, 0.149, 0.15, 0.299, 0.3, 1.0)] == \
        ["low", "low", "elevated", "elevated", "high", "high"]
    assert Bands.parse("a=0,b=0.5").of(0.7) == "b"
    for bad in ("a=0.1,b=0.5", "a=0,b=0.5,c=0.4", "a=0,b", "nonsense"):
        with pytest.raises(AlfiaError, match="bands"):
            Bands.parse(bad)


def test_a_run_without_threshold_is_refused(tiny_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run["run"], run)
    (run / "threshold.json").unlink()
    with pytest.raises(AlfiaError, match="threshold"):
        RiskService.load(run)


def test_cli_serve_wires_options_and_refuses_bad_ones(tiny_run, monkeypatch, capsys):
    import uvicorn

    from alfia.cli import main

    started = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: started.update(app=app, **kw))
    assert main(["serve", str(tiny_run["run"]), "--port", "8123", "--max-stays", "2",
                 "--bands", "calm=0,watch=0.2,act=0.6"]) == 0
    assert started["host"] == "127.0.0.1" and started["port"] == 8123 and started["access_log"] is False
    client = TestClient(started["app"])
    assert [b["band"] for b in client.get("/v1/model").json()["bands"]] == ["calm", "watch", "act"]
    assert client.post("/v1/predict", json={"stays": [{"text": "gcs 15"}] * 3}).status_code == 422
    capsys.readouterr()
    for argv, message in ((["serve", str(tiny_run["run"]), "--bands", "calm=0.1"], "risk bands"),
                          (["serve", str(tiny_run["run"] / "nope")], "does not exist"),
                          (["serve", str(tiny_run["run"]), "--max-stays", "0"], "must be positive")):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.startswith("error:") and message in err and err.count("\n") == 1
