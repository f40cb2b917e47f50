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
    assert seen["mlflow"] is None   # no --mlflow: no URI passed (ALFIA_MLFLOW_URI is read where manifests are written)
    assert main(["study", "--out", str(tmp_path / "t"), "--mlflow", "file:///m"]) == 0
    assert seen["cohort"] is None and seen["external"] is None   # the declared default study (run_study resolves it)
    assert seen["mlflow"] == "file:///m"


def test_summary_lines_name_the_cohorts():
    m = {k: {"value": 0.5, "ci_low": 0.4, "ci_high": 0.6} for k in ("auprc", "auroc", "brier", "ece")}
    metrics = {"test": {**m, "n": 10, "n_pos": 2}}
    external = {"metrics": {**m, "n": 20, "n_pos": 3}, "threshold": 0.3, "ms_per_sample": 1.0, "peak_rss_mb": 1}
    history = [{"epoch": 1, "val_auprc": 0.5, "val_auroc": 0.6}]
    default = "\n".join(alfia_results(metrics, external, history))
    assert "set A test split" in default and "set B, external" in default
    own = "\n".join(alfia_results(metrics, external, history, ("hospital-a", "hospital-b")))
    assert "hospital-a test split" in own and "hospital-b, external" in own and "set B" not in own


def test_the_default_pair_is_declared_by_its_data_set():
    from alfia.cohorts.registry import declared_study, default_study, get_dataset, shown_name

    pair = default_study()
    assert pair is get_dataset("physionet2012").study   # declared at the data set's registration
    assert (pair.development, pair.external) == ("p12-a", "p12-b")
    assert declared_study("p12-a") is pair and declared_study("hospital-a") is None
    assert (shown_name("p12-a"), shown_name("p12-b"), shown_name("hospital-b")) == ("set A", "set B", "hospital-b")


def test_a_bundled_development_cohort_takes_its_declared_external_one():
    assert study_cohorts("p12-a")[2] == ("p12-a", "p12-b")
    assert study_cohorts("yaib-eicu-demo")[2] == ("yaib-eicu-demo", "yaib-mimic-demo")  # across databases
    with pytest.raises(AlfiaError, match="--external"):
        study_cohorts("dev.parquet")   # a cohort of one's own declares no study: the external cohort must be named


@pytest.mark.parametrize("study, problem", [({"development": "toy-a"}, "takes development, external"),
                                            ({"development": "toy-a", "external": "p12-b"}, "its own bundled"),
                                            ({"development": "toy-a", "external": "toy-a"}, "its own bundled"),
                                            ({"development": "toy-a", "external": "toy-b", "x": 1}, "not")])
def test_a_declared_study_pairs_two_of_the_data_sets_own_cohorts(study, problem):
    from alfia.cohorts.registry import get_dataset, register_dataset, unregister_dataset

    base = get_dataset("physionet2012")
    try:
        with pytest.raises(AlfiaError, match=problem):
            register_dataset("toy-study", schema=base.schema, template=base.template,
                             bundled={"toy-a": "a.parquet", "toy-b": "b.parquet"}, study=study)
    finally:
        unregister_dataset("toy-study")


def test_readme_results_reads_the_study_files_by_the_cohorts_names(tmp_path):
    from alfia.run_folder import RunFolder, StudyFolder
    from alfia.study import readme_results

    m = {k: {"value": 0.5, "ci_low": 0.4, "ci_high": 0.6} for k in ("auprc", "auroc", "brier", "ece")}
    folder = StudyFolder(tmp_path)
    RunFolder(tmp_path).write_json(RunFolder.METRICS, {"test": {**m, "n": 10, "n_pos": 2}})
    RunFolder(tmp_path).write_json(RunFolder.CONFIG, {"train": {"profile": "paper"}})
    RunFolder(tmp_path).write_history([{"epoch": 1, "val_auprc": 0.5, "val_auroc": 0.6}])
    folder.write_json(StudyFolder.TIMINGS, {"cohorts": 1.0})
    with pytest.raises(AlfiaError, match="p12-b.metrics.json is missing"):
        readme_results(tmp_path)   # the default study's external cohort
    folder.write_json(folder.metrics_path("ext").name, {"metrics": {**m, "n": 20, "n_pos": 3}, "threshold": 0.3,
                                                        "ms_per_sample": 1.0, "peak_rss_mb": 1})
    text = readme_results(tmp_path, ("dev", "ext"))
    assert "ALFIA (paper profile, calibrated)" in text and "ext, external (all rows)" in text
