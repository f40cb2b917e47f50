"""MLflow logging of a study (alfia.tracking through alfia.manifest): every external cohort's metrics, read through
StudyFolder, and ``--mlflow URI`` passed down as an argument. ``alfia study dev.parquet --external ext.parquet
--mlflow URI`` runs here on tiny synthetic cohorts with a tiny backbone; the baselines, the leaderboard and the
report (slow, and tested on their own) are stubbed."""

from __future__ import annotations

import dataclasses
import json
import types
from pathlib import Path

import pytest

from alfia.cohorts import write_cohort
from alfia.cohorts.synthetic import generate_synthetic
from alfia.run_folder import StudyFolder
from alfia.tracking import final_metrics


def _metrics(auprc: float) -> dict:
    return {"metrics": {"auprc": {"value": auprc, "ci_low": 0.1, "ci_high": 0.9}, "n": 10}, "threshold": 0.5}


def test_every_external_cohort_of_a_study_is_read(tmp_path):
    study = StudyFolder(tmp_path)
    study.write_json(study.metrics_path("ext").name, _metrics(0.4))
    assert final_metrics(tmp_path) == {"external.auprc": 0.4}   # one external cohort, as docs/training.md names it
    study.write_json(study.metrics_path("p12-b").name, _metrics(0.5))
    assert final_metrics(tmp_path) == {"external.ext.auprc": 0.4, "external.p12-b.auprc": 0.5}  # several: by name


def test_a_run_folder_has_no_external_metrics(tmp_path):
    StudyFolder(tmp_path).write_json("metrics.json", {"test": _metrics(0.3)["metrics"]})
    assert final_metrics(tmp_path) == {"test.auprc": 0.3}


@pytest.fixture
def tiny_study(monkeypatch, tiny_bert_dir):
    """The study's stages on a tiny backbone, one epoch; baselines, leaderboard and report stubbed."""
    import alfia.study
    from tests.training.test_trainer import quick

    monkeypatch.setattr(alfia.study, "make_config", lambda profile, **kw: dataclasses.replace(quick(
        epochs=1, **{"model.backbone": str(tiny_bert_dir), "model.max_length": 48}), profile=profile))
    for stage in ("run_baselines", "run_frozen_readout", "run_boost"):
        monkeypatch.setattr(alfia.study, stage, lambda *a, **k: None)
    monkeypatch.setattr(alfia.study, "leaderboard", lambda *a, **k: types.SimpleNamespace(markdown="(leaderboard)"))
    monkeypatch.setattr(alfia.study, "build_report", lambda run, out, **k: Path(out))


def test_study_of_own_cohorts_logs_its_external_metrics_to_mlflow(tmp_path, monkeypatch, tiny_study):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    from mlflow.tracking import MlflowClient

    from alfia.cli import main

    monkeypatch.delenv("ALFIA_MLFLOW_URI", raising=False)   # the URI travels as an argument, not through the env
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    write_cohort(generate_synthetic("mimic-iv", n=160, seed=1), tmp_path / "dev.parquet")
    write_cohort(generate_synthetic("mimic-iv", n=80, seed=2), tmp_path / "ext.parquet")
    uri = (tmp_path / "mlruns").as_uri()
    out = tmp_path / "study"
    assert main(["study", str(tmp_path / "dev.parquet"), "--external", str(tmp_path / "ext.parquet"),
                 "--out", str(out), "--profile", "paper", "--mlflow", uri, "--device", "cpu"]) == 0

    study = StudyFolder(out)
    assert study.externals() == ["ext"]   # named by the cohort's own name
    for path in (study.cohort("dev"), study.encoded("dev"), study.cohort("ext"), study.encoded("ext"),
                 study.predictions("ext"), study / StudyFolder.SUMMARY, study / StudyFolder.MANIFEST):
        assert path.is_file(), path
    assert list(study.timings())[3:5] == ["train ALFIA (paper profile)", "external validation on ext (all rows)"]
    assert "| ALFIA (paper profile, calibrated) |" in (study / StudyFolder.SUMMARY).read_text()
    assert "ext.metrics.json" in json.loads((study / StudyFolder.MANIFEST).read_text())["files"]

    client = MlflowClient(tracking_uri=uri)
    runs = {r.info.run_name: r for r in client.search_runs([client.get_experiment_by_name("alfia").experiment_id])}
    assert set(runs) == {"study", StudyFolder.RUN}   # the study folder and its run, each logged once
    external = study.external_metrics("ext")["metrics"]
    logged = runs["study"].data.metrics
    assert logged["external.auprc"] == pytest.approx(external["auprc"]["value"])
    assert logged["external.auroc"] == pytest.approx(external["auroc"]["value"])
    assert runs[StudyFolder.RUN].data.metrics["test.auprc"] == pytest.approx(
        study.run.metrics()["test"]["auprc"]["value"])
    artefacts = {a.path for a in client.list_artifacts(runs["study"].info.run_id)}
    assert "ext.metrics.json" in artefacts and not any(a.endswith(".parquet") for a in artefacts)


def test_the_environment_variable_still_turns_logging_on(tmp_path, monkeypatch):
    import alfia.tracking
    from alfia import manifest

    calls = []
    monkeypatch.setattr(alfia.tracking, "log_folder", lambda folder, uri: calls.append(uri))
    monkeypatch.setenv("ALFIA_MLFLOW_URI", "file:///env")
    manifest.write_manifest(tmp_path, manifest.now())
    manifest.write_manifest(tmp_path, manifest.now(), mlflow="file:///given")   # the argument wins
    monkeypatch.delenv("ALFIA_MLFLOW_URI")
    manifest.write_manifest(tmp_path, manifest.now())   # neither: no logging
    assert calls == ["file:///env", "file:///given"]
