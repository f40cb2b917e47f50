"""`alfia study COHORT --external EXTERNAL`: the study's cohorts, their labels and the mapping across schemas
(the stages themselves are the ones `make study` runs on the bundled cohorts)."""

from __future__ import annotations

import pytest

from alfia.cohorts import write_cohort
from alfia.cohorts.synthetic import generate_synthetic
from alfia.errors import AlfiaError
from alfia.study import alfia_results, study_cohorts


def test_default_is_the_bundled_pair():
    dev, ext, names = study_cohorts()
    assert names == ("p12-a", "p12-b") and len(dev.df) == len(ext.df) == 4000
    assert dev.schema.name == ext.schema.name == "physionet2012"


def test_own_cohorts_are_read_named_and_mapped(tmp_path):
    write_cohort(generate_synthetic("mimic-iv", n=200, seed=1), tmp_path / "hospital-a.parquet")
    write_cohort(generate_synthetic("eicu", n=120, seed=2), tmp_path / "hospital-b.parquet")
    dev, ext, names = study_cohorts(tmp_path / "hospital-a.parquet", tmp_path / "hospital-b.parquet")
    assert names == ("hospital-a", "hospital-b")
    assert ext.schema.name == dev.schema.name == "mimic-iv" and "mapping" in ext.info  # eICU mapped onto MIMIC-IV
    assert len(ext.df) == 120


def test_an_own_cohort_needs_an_external_one(tmp_path):
    write_cohort(generate_synthetic("mimic-iv", n=200, seed=1), tmp_path / "a.parquet")
    with pytest.raises(AlfiaError, match="--external"):
        study_cohorts(tmp_path / "a.parquet")


def test_cli_passes_the_cohorts_to_the_study(monkeypatch, tmp_path):
    import alfia.study
    from alfia.cli import main

    seen = {}
    monkeypatch.setattr(alfia.study, "run_study", lambda out, **kw: seen.update(out=out, **kw))
    assert main(["study", "a.parquet", "--external", "b.parquet", "--out", str(tmp_path / "s")]) == 0
    assert seen["cohort"] == "a.parquet" and seen["external"] == "b.parquet" and seen["out"] == str(tmp_path / "s")
    assert main(["study", "--out", str(tmp_path / "t")]) == 0
    assert seen["cohort"] == "p12-a" and seen["external"] is None


def test_summary_lines_name_the_cohorts():
    m = {k: {"value": 0.5, "ci_low": 0.4, "ci_high": 0.6} for k in ("auprc", "auroc", "brier", "ece")}
    metrics = {"test": {**m, "n": 10, "n_pos": 2}}
    external = {"metrics": {**m, "n": 20, "n_pos": 3}, "threshold": 0.3, "ms_per_sample": 1.0, "peak_rss_mb": 1}
    history = [{"epoch": 1, "val_auprc": 0.5, "val_auroc": 0.6}]
    default = "\n".join(alfia_results(metrics, external, history))
    assert "set A test split" in default and "set B, external" in default
    own = "\n".join(alfia_results(metrics, external, history, ("hospital-a", "hospital-b")))
    assert "hospital-a test split" in own and "hospital-b, external" in own and "set B" not in own
