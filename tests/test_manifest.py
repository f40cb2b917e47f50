"""manifest.json: a trained run says what made it, and every digest it lists matches its file; MLflow (optional)
finds the run's parameters and per-epoch metrics in a local file store."""

import json

import pytest

from alfia import manifest
from alfia.model.backbone import DEFAULT_BACKBONE, backbone_identity
from alfia.training.trainer import train
from tests.training.test_trainer import quick, toy_cohort


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_bert_dir):
    cohort = toy_cohort(n=120)
    run = tmp_path_factory.mktemp("manifest") / "run"
    train(cohort, run, quick(epochs=2), backbone=str(tiny_bert_dir), progress=False, finish=True, n_boot=10)
    return run, cohort


def test_manifest_records_how_the_run_was_made(trained, tiny_bert_dir):
    run, cohort = trained
    m = json.loads((run / "manifest.json").read_text())
    assert m["alfia"]["version"]
    assert m["command"] and m["started"] <= m["finished"]
    assert m["hardware"]["cpu"]["model"] and isinstance(m["hardware"]["cpu"]["simd"], list)
    assert isinstance(m["hardware"]["gpus"], list)
    libraries = m["software"]["libraries"]
    assert {"torch", "numpy", "pandas", "transformers", "scikit-learn"} <= set(libraries)
    assert m["software"]["python"].count(".") == 2
    assert m["backbone"]["name"] == str(tiny_bert_dir)
    weights = m["backbone"]["weights_sha256"]
    assert weights and all(manifest.sha256_file(tiny_bert_dir / f) == d for f, d in weights.items())
    assert m["cohort"] == {"train": cohort.checksum()}
    # every artefact written is listed, and every digest matches its file
    written = {p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(m["files"]) == written
    assert {"config.json", "history.jsonl", "metrics.json", "predictions.parquet"} <= written
    assert manifest.verify(run) == []


def test_verify_finds_a_changed_file(trained, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(trained[0], copy)
    (copy / "metrics.json").write_text("{}")
    assert manifest.verify(copy) == ["metrics.json"]


def test_default_backbone_is_named_and_hashed():
    identity = backbone_identity(None)
    assert identity["name"] == DEFAULT_BACKBONE
    assert identity["weights_sha256"] and all(len(d) == 64 for d in identity["weights_sha256"].values())


def test_mlflow_logs_params_epoch_metrics_and_artefacts(trained, tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    from mlflow.tracking import MlflowClient

    run, _ = trained
    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("ALFIA_MLFLOW_URI", uri)
    started = json.loads((run / "manifest.json").read_text())["started"]
    backbone = json.loads((run / "config.json").read_text())["backbone"]
    manifest.write_manifest(run, started, backbone=backbone_identity(backbone))
    client = MlflowClient(tracking_uri=uri)
    (found,) = client.search_runs([client.get_experiment_by_name("alfia").experiment_id])
    assert found.data.params["train.epochs"] == "2"
    assert found.data.params["backbone"] == json.loads((run / "config.json").read_text())["backbone"]
    history = [json.loads(x) for x in (run / "history.jsonl").read_text().splitlines()]
    logged = client.get_metric_history(found.info.run_id, "val_auprc")
    assert [(x.step, x.value) for x in logged] == [(h["epoch"], pytest.approx(h["val_auprc"])) for h in history]
    test_auprc = json.loads((run / "metrics.json").read_text())["test"]["auprc"]["value"]
    assert found.data.metrics["test.auprc"] == pytest.approx(test_auprc)
    artefacts = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert {"manifest.json", "config.json", "metrics.json"} <= artefacts
    assert not any(a.endswith(".parquet") for a in artefacts)  # patient-level rows stay out of MLflow


def test_no_mlflow_run_when_off(trained, tmp_path, monkeypatch):
    monkeypatch.delenv("ALFIA_MLFLOW_URI", raising=False)
    import alfia.tracking

    calls = []
    monkeypatch.setattr(alfia.tracking, "log_folder", lambda *a, **k: calls.append(a))
    manifest.write_manifest(trained[0], manifest.now())
    assert calls == []


def test_mlflow_artefacts_leave_patient_level_files_out(tmp_path):
    from alfia.tracking import artefacts_of

    for rel in ("manifest.json", "summary.md", "p12-a.encoded.parquet", "report.html", "alfia-run/config.json",
                "alfia-run/model/head/model.safetensors", "alfia-run/checkpoint/state.json",
                "alfia-run/figures/tokens.json", "baselines/autogluon/models/x.pkl", "baselines/results.json",
                "alfia-run/.model.tmp/a.json"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    assert {p.as_posix() for p in artefacts_of(tmp_path)} == {
        "manifest.json", "summary.md", "alfia-run/config.json", "alfia-run/model/head/model.safetensors",
        "baselines/results.json"}
