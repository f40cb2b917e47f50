"""The risk service through FastAPI's TestClient: answers, warnings for stays outside the training data,
refusals, limits (413/422, never 500), logs, determinism, model card, health and Prometheus metrics."""

from __future__ import annotations

import json
import logging
import math
import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from fastapi.testclient import TestClient

from alfia.errors import AlfiaError
from alfia.evaluation.drift import words_pattern
from alfia.serving.app import create_app
from alfia.serving.service import Bands, Limits, RiskService

LIMITS = Limits(max_body_bytes=40_000, max_stays=4, max_text_chars=1500)
WORDS = " ".join(["word"] * 80)  # enough words to be read, nothing like a training text


@pytest.fixture(scope="module")
def service(tiny_run):
    return RiskService.load(tiny_run["run"], limits=LIMITS)  # its reference.json: no --training-cohort needed


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
    text = cohort.df["text"].iloc[7]
    r = client.post("/v1/predict", json={"stays": [{"record": record}, {"text": text}], "explain": True})
    assert r.status_code == 200, r.text
    by_record, by_text = r.json()["results"]
    assert by_text["text"] == text and by_text["explanation"] is None
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
    ({"stays": [{"record": {"age": True}}]}, "age"),                      # no boolean read as a number
    ({"stays": [{"record": {"mech_vent": True}}]}, "mech_vent"),          # ... nor as 0/1
    ({"stays": [{"record": {"gcs_min": "7"}}]}, "gcs_min"),               # no string read as a number
    ({"stays": [{"record": {"gcs_min": 7.5}}]}, "gcs_min"),               # GCS is whole
    ({"stays": [{"record": {"age": None}}]}, "age"),                      # leave a missing value out
    ({"stays": [{"record": {}}]}, "record"),                              # nothing recorded: refused
    ({"stays": [{"text": "x " * 751}]}, "text"),                          # text too long
    ({"stays": [{"text": "0"}]}, "text"),                                 # too few words: refused
    ({"stays": [{"text": WORDS, "record": {"age": 70}}]}, "text"),        # both inputs
    ({"stays": [{}]}, "stays"),                                           # neither
    ({"stays": [[None, None]]}, "stays"),                                 # not a stay at all (was a 500)
    ({"stays": [{"stay_id": False, "text": WORDS}]}, "stay_id"),          # a stay id is no boolean
    ({"stays": [{"stay_id": 1.5, "text": WORDS}]}, "stay_id"),
    ({"stays": [{"stay_id": "x" * 65, "text": WORDS}]}, "stay_id"),
    ({"stays": []}, "stays"),
    ({"stays": [{"text": WORDS}] * 5}, "stays"),                          # too many stays
    ({"stays": [{"text": WORDS}], "explain": "yes"}, "explain"),
    ({"stays": [{"text": WORDS}], "extra": 1}, "extra"),
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
    r = client.post("/v1/predict", content=b"Xl\xe9r\xff", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body"]  # not UTF-8: was a 400
    r = client.post("/v1/predict", content=b'{"stays": [{"record": {"age": NaN}}]}',
                    headers={"content-type": "application/json"})
    assert r.status_code == 422


def test_body_over_the_limit_is_413(client):
    big = json.dumps({"stays": [{"text": "y" * 400}] * 120}).encode()
    r = client.post("/v1/predict", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "larger than" in r.json()["detail"]

    def chunks():  # no Content-Length: the size is found while reading
        for _ in range(50):
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
            text = f"{tiny_run['cohort'].df['text'].iloc[0]} {secret}"
            assert client.post("/v1/predict", json={"stays": [{"text": text}, {"record": record}],
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
    bodies = [{"stays": [{"record": record_of(cohort, i)}, {"text": cohort.df["text"].iloc[i + 1]}]}
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
    assert card["task"] == config["task"] and card["task"]["label"] == "hospital_mortality"
    assert "death in hospital" in card["name"]
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
    client.post("/v1/predict", json={"stays": [{"text": WORDS}]})
    text = client.get("/v1/metrics").text
    assert 'alfia_requests_total{path="/v1/predict",status="200"} 2.0' in text
    assert "alfia_request_seconds_bucket" in text
    assert sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith("alfia_stays_total")) == 4
    assert 'alfia_input_missing_share{variable="gcs_min"} 0.3333' in text
    assert 'alfia_input_missing_share{variable="sofa_max"} 1.0' in text
    if (low, high) != (3, 15):
        assert 'alfia_input_outside_training_range_share{variable="gcs_min"} 0.3333' in text
    assert 'alfia_input_outside_training_range_share{variable="age"} 0.0' in text
    assert 'alfia_stay_warnings_total{kind="missing_variables"} 3.0' in text
    assert 'alfia_stay_warnings_total{kind="template"} 1.0' in text


def kinds(result: dict) -> set[str]:
    return {w["kind"] for w in result["warnings"]}


def test_the_three_answers_the_issue_found(client):
    """{"stays": [{}]} matched the schema and was refused; a boolean stay id was read as 0; "0" was scored 0.99."""
    r = client.post("/v1/predict", json={"stays": [{}]})
    assert r.status_code == 422
    [problem] = r.json()["detail"]
    assert problem["loc"] == ["body", "stays", 0] and "'record' or 'text'" in problem["msg"]
    r = client.post("/v1/predict", json={"stays": [{"stay_id": False, "text": WORDS}]})
    assert r.status_code == 422 and {tuple(e["loc"][:5]) for e in r.json()["detail"]} == {
        ("body", "stays", 0, "text", "stay_id")}
    r = client.post("/v1/predict", json={"stays": [{"text": "0"}]})
    assert r.status_code == 422
    [problem] = r.json()["detail"]
    assert problem["loc"] == ["body", "stays", 0, "text", "text"] and problem["type"] == "too_few_words"
    assert "the text has 1 word; texts under" in problem["msg"] and "refused" in problem["msg"]


def test_the_schema_states_every_rule(client, service):
    api = client.get("/openapi.json").json()
    schemas = api["components"]["schemas"]
    stays = schemas["PredictRequest"]["properties"]["stays"]
    assert len(stays["items"]["oneOf"]) == 2 and stays["maxItems"] == LIMITS.max_stays
    record_stay, text_stay = (schemas[ref["$ref"].split("/")[-1]] for ref in stays["items"]["oneOf"])
    assert record_stay["required"] == ["record"] and text_stay["required"] == ["text"]
    assert record_stay["additionalProperties"] is False and text_stay["additionalProperties"] is False
    text = text_stay["properties"]["text"]
    assert text["maxLength"] == LIMITS.max_text_chars
    assert text["pattern"] == words_pattern(service.min_words) and service.min_words > 1
    assert {"type": "boolean"} not in text_stay["properties"]["stay_id"]["anyOf"]
    record = schemas[record_stay["properties"]["record"]["$ref"].split("/")[-1]]
    assert record["minProperties"] == 1 and record["additionalProperties"] is False
    gcs = record["properties"]["gcs_min"]
    assert (gcs["type"], gcs["minimum"], gcs["maximum"]) == ("integer", 3, 15)
    assert record["properties"]["mech_vent"]["maximum"] == 1
    assert not any("default" in p for p in record["properties"].values())
    assert {"413", "422"} <= set(api["paths"]["/v1/predict"]["post"]["responses"])


def test_every_answer_says_how_far_the_stay_is_from_the_training_data(client, service, tiny_run):
    cohort = tiny_run["cohort"]
    train = np.flatnonzero(cohort.df["split"].to_numpy() == "train")
    inside = record_of(cohort, int(train[0]))
    top = service.ranges["hr_max"][1]
    assert top < 290  # so 290 lies outside the training range but inside the schema's valid one (20-300)
    bodies = [{"stay_id": "inside", "record": inside},
              {"stay_id": "outside", "record": {**inside, "hr_max": 290.0}},
              {"stay_id": "sparse", "record": {"age": 70, "gender": "male", "gcs_min": 9}},
              {"stay_id": "words", "text": WORDS}]
    r = client.post("/v1/predict", json={"stays": bodies})
    assert r.status_code == 200, r.text
    inside_r, outside_r, sparse_r, words_r = r.json()["results"]
    # every text of the tiny run is longer than its 48 tokens: truncation is said, and is not out of distribution
    assert kinds(inside_r) == {"truncated"} and inside_r["out_of_distribution"] is False
    assert kinds(outside_r) == {"outside_training_range", "truncated"} and outside_r["out_of_distribution"]
    [message] = [w["message"] for w in outside_r["warnings"] if w["kind"] == "outside_training_range"]
    assert f"hr_max 290 (training {service.ranges['hr_max'][0]:g} to {top:g})" in message
    assert "missing_variables" in kinds(sparse_r) and sparse_r["out_of_distribution"]
    n = len(cohort.schema.feature_columns)
    assert f"{n - 3} of {n} variables not recorded" in sparse_r["warnings"][0]["message"]
    assert {"template", "token_count"} <= kinds(words_r) and words_r["out_of_distribution"]
    for result in (outside_r, sparse_r, words_r):  # still scored: a clinician may want the number
        assert 0 <= result["probability"] <= 1 and result["band"]


def test_model_card_states_the_refusals_and_the_reference(client, service):
    card = client.get("/v1/model").json()
    reference = json.loads((service.run.folder / "reference.json").read_text())
    assert card["refusals"]["text_min_words"] == card["refusals"]["text_min_tokens"] == service.min_words
    assert service.min_words == min(reference["text"]["tokens"]["min"] // 2, reference["text"]["words"]["min"])
    assert card["training_reference"]["source"] == "reference.json"
    assert card["training_reference"]["text_tokens"] == reference["text"]["tokens"]
    assert card["training_reference"]["variable_ranges"]["hr_max"] == [reference["variables"]["hr_max"]["min"],
                                                                        reference["variables"]["hr_max"]["max"]]


def test_a_run_trained_before_the_reference_still_serves(tiny_run, tmp_path):
    import shutil

    run = tmp_path / "old-run"
    shutil.copytree(tiny_run["run"], run)
    kept = json.loads((run / "reference.json").read_text())
    (run / "reference.json").unlink()
    old = TestClient(create_app(RiskService.load(run, limits=LIMITS)))
    r = old.post("/v1/predict", json={"stays": [{"text": "0"}, {"record": {"age": 70}}]})
    assert r.status_code == 200, r.text  # no reference: no threshold to refuse by, but never silent
    for result in r.json()["results"]:
        assert "reference_unavailable" in kinds(result) and result["out_of_distribution"] is None
    assert old.get("/v1/model").json()["training_reference"] is None
    # --training-cohort builds the same reference the run would have kept
    rebuilt = RiskService.load(run, limits=LIMITS, training_cohort=tiny_run["cohort"])
    assert rebuilt.reference == kept and rebuilt.reference_source == "--training-cohort"


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
    assert client.post("/v1/predict", json={"stays": [{"text": WORDS}] * 3}).status_code == 422
    capsys.readouterr()
    for argv, message in ((["serve", str(tiny_run["run"]), "--bands", "calm=0.1"], "risk bands"),
                          (["serve", str(tiny_run["run"] / "nope")], "does not exist"),
                          (["serve", str(tiny_run["run"]), "--max-stays", "0"], "must be positive")):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.startswith("error:") and message in err and err.count("\n") == 1
