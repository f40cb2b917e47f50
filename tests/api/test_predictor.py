"""The facade and the scoring of new patients: train, evaluate, save, load and predict in a few lines; tables with
no outcome and no split column are scored through the API and through `alfia predict`."""

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from alfia import ALFIAPredictor
from alfia.cohorts import Cohort
from alfia.cohorts.bundled import load_bundled
from alfia.errors import AlfiaError
from alfia.text.inputs import load_input

# a tiny, fast training: the tiny random BERT of tests/conftest.py, one epoch
TINY = {"epochs": 1, "batch_size": 16, "model": {"max_length": 48, "fusion": {"num_fusion_layers": 2}}}


def small_p12a() -> Cohort:
    """84 stays of set A: per split 20 survivors and 8 deaths."""
    cohort = load_bundled("p12-a")
    parts = [cohort.df[(cohort.df["split"] == s) & (cohort.df["hospital_mortality"] == y)].head(n)
             for s in ("train", "val", "test") for y, n in ((0, 20), (1, 8))]
    df = pd.concat(parts).reset_index(drop=True)
    return Cohort(df=df, schema=cohort.schema, info=cohort.info)


@pytest.fixture(scope="module")
def dev() -> Cohort:
    return small_p12a()


@pytest.fixture(scope="module")
def fitted(dev, tiny_facade):
    return tiny_facade(dev, "api")


def test_train_evaluate_save_load_predict_in_five_lines(dev, tiny_bert_dir, tmp_path):
    predictor = ALFIAPredictor(backbone=str(tiny_bert_dir), path=tmp_path / "run", **TINY).fit(dev, progress=False)
    metrics = predictor.evaluate(dev, n_boot=20)
    board = predictor.leaderboard(dev, n_boot=20)
    predictor.save(tmp_path / "saved")
    labels = ALFIAPredictor.load(tmp_path / "saved").predict(dev.df.drop(columns=["hospital_mortality", "split"]))

    assert metrics["n"] == len(dev.df) and 0 <= metrics["auprc"]["value"] <= 1
    assert predictor.test_metrics["n"] == 28  # the test split, scored once after training
    p = predictor.predict_proba(dev)   # a Series by stay_id, as AutoGluon's predict_proba is indexed like its input
    assert isinstance(p, pd.Series) and p.index.name == "stay_id" and list(p.index) == dev.df["stay_id"].tolist()
    pd.testing.assert_series_equal(labels, (p >= predictor.threshold).astype(int).rename("label"))
    assert (predictor.predict(dev, decision_threshold=0.0) == 1).all()
    with pytest.raises(AlfiaError, match="decision_threshold must be a probability"):
        predictor.predict(dev, decision_threshold=1.5)
    # ALFIA beside the data set's severity scores, best AUPRC first, ALFIA's row equal to evaluate()
    assert set(board["model"]) == {"ALFIA", "SIRS", "SAPS II (approx.)", "OASIS (approx.)", "SAPS-I (challenge)",
                                   "SOFA (challenge)"}
    # the columns of the baselines' leaderboard numbers (its CSV files), the same names everywhere
    fits = ("calibration_intercept", "calibration_slope")   # calibration fits: their failed resamples follow
    assert list(board.columns) == ["model", "family", "n"] + [
        f"{m}_{part}" for m in ("auprc", "auroc", "best_f1", "best_f2", "oe_ratio", *fits)
        for part in ("estimate", "ci_low", "ci_high")] + [f"{m}_failed_resamples" for m in fits]
    assert board["auprc_estimate"].is_monotonic_decreasing
    assert (board["auprc_ci_low"] <= board["auprc_estimate"]).all()
    assert (board["auprc_estimate"] <= board["auprc_ci_high"]).all()
    alfia_row = board.set_index("model").loc["ALFIA"]
    assert alfia_row["auprc_estimate"] == metrics["auprc"]["value"] and alfia_row["n"] == len(dev.df)
    assert alfia_row["auprc_ci_low"] == metrics["auprc"]["ci_low"] and alfia_row["family"] == "alfia"
    # a score row: the score on every stay where it is known (alfia.baselines.scores), read as a risk
    from alfia.baselines.scores import evaluate_score, scaled_score

    p_sirs = scaled_score(dev, "sirs").to_numpy()
    known = ~np.isnan(p_sirs)
    sirs = evaluate_score(dev.df["hospital_mortality"].to_numpy()[known], p_sirs[known], n_boot=20)
    sirs_row = board.set_index("model").loc["SIRS"]
    assert sirs_row["family"] == "score" and sirs_row["n"] == sirs["n"]
    assert (sirs_row["auprc_estimate"], sirs_row["auprc_ci_low"], sirs_row["best_f1_ci_high"]) == (
        sirs["auprc"]["value"], sirs["auprc"]["ci_low"], sirs["best_f1"]["ci_high"])
    # a plain list of texts keeps its order; int8 is the CPU path of `alfia predict --int8`
    texts = load_input(dev, encoded=True).df["text"].tolist()
    by_text = predictor.predict_proba(texts[::-1])
    assert list(by_text.index) == list(range(len(texts)))
    np.testing.assert_allclose(by_text.to_numpy(), p.to_numpy()[::-1], rtol=0, atol=1e-6)
    int8 = ALFIAPredictor.load(tmp_path / "saved", int8=True).predict_proba(dev)
    assert list(int8.index) == list(p.index) and not np.array_equal(int8.to_numpy(), p.to_numpy())
    np.testing.assert_allclose(int8.to_numpy(), p.to_numpy(), rtol=0, atol=0.1)
    with pytest.raises(AlfiaError, match="int8 is a CPU path"):
        ALFIAPredictor(device="cuda", int8=True)
    # the saved copy holds the model, encoder and threshold, not the resumable checkpoint
    assert (tmp_path / "saved" / "model").is_dir() and not (tmp_path / "saved" / "checkpoint").exists()


def test_scores_stays_without_outcome_or_split(fitted, dev):
    unlabelled = dev.df.drop(columns=["hospital_mortality", "split"])
    p = fitted.predict_proba(unlabelled)
    np.testing.assert_allclose(p, fitted.predict_proba(dev), rtol=0, atol=1e-6)
    emb = fitted.embed(unlabelled)
    assert emb["stay_id"].tolist() == dev.df["stay_id"].tolist()
    with pytest.raises(AlfiaError, match="needs stays of both outcomes"):
        fitted.evaluate(unlabelled)
    with pytest.raises(AlfiaError, match="not fitted"):
        ALFIAPredictor().predict(dev)


def test_a_dataframe_from_another_schema_is_refused(fitted, dev):
    with pytest.raises(AlfiaError, match="missing columns"):
        fitted.predict_proba(dev.df.drop(columns=["hospital_mortality", "split", "gcs_min"]))


def _plain_parquet(df: pd.DataFrame, path):
    """A parquet table as a hospital would export it: no ALFIA metadata."""
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)
    return path


def test_cli_predict_scores_a_table_without_outcome_and_split(fitted, dev, tmp_path):
    from alfia.cli import main

    new = _plain_parquet(dev.df.drop(columns=["hospital_mortality", "split"]), tmp_path / "new.parquet")
    out = tmp_path / "scores.parquet"
    assert main(["predict", str(fitted.path), str(new), "--schema", "physionet2012", "--out", str(out)]) == 0
    scores = pd.read_parquet(out)
    assert list(scores.columns) == ["stay_id", "probability", "p_raw", "label", "threshold", "truncated", "warnings",
                                    "out_of_distribution"]
    assert scores["stay_id"].tolist() == dev.df["stay_id"].tolist()
    np.testing.assert_allclose(scores["probability"], fitted.predict_proba(dev), rtol=0, atol=1e-6)
    assert (scores["threshold"] == fitted.threshold).all()
    assert (scores["label"] == (scores["probability"] >= fitted.threshold).astype(int)).all()
    info = json.loads(out.with_suffix(".metrics.json").read_text())
    assert "metrics" not in info and info["rows"] == len(dev.df)
    # new stays can also be encoded first, with the run's own encoder, and scored from that file
    encoded = tmp_path / "new.text.parquet"
    assert main(["encode", str(new), "--schema", "physionet2012", "--encoder", str(fitted.path),
                 "--out", str(encoded)]) == 0
    assert main(["predict", str(fitted.path), str(encoded), "--out", str(tmp_path / "again.parquet")]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "again.parquet"), scores)


def test_cli_predict_computes_metrics_only_where_labels_exist(fitted, dev, tmp_path):
    from alfia.cli import main

    partly = dev.df.drop(columns=["split"]).astype({"hospital_mortality": "float"})
    partly.loc[::3, "hospital_mortality"] = np.nan  # outcome not yet known for a third of the stays
    new = _plain_parquet(partly, tmp_path / "partly.parquet")
    out = tmp_path / "scores.parquet"
    assert main(["predict", str(fitted.path), str(new), "--schema", "physionet2012", "--out", str(out)]) == 0
    assert len(pd.read_parquet(out)) == len(dev.df)
    info = json.loads(out.with_suffix(".metrics.json").read_text())
    known = int(partly["hospital_mortality"].notna().sum())
    assert info["labelled_rows"] == known == info["metrics"]["n"]
    assert info["metrics"]["n_pos"] == int(partly["hospital_mortality"].sum())


def test_training_still_needs_the_outcome(tmp_path, dev):
    with pytest.raises(AlfiaError, match="missing columns hospital_mortality, split"):
        ALFIAPredictor(schema="physionet2012", path=tmp_path / "r").fit(dev.df.drop(columns=["hospital_mortality",
                                                                                              "split"]))



def test_the_report_finds_the_cohort_a_run_was_trained_on(fitted, dev, tmp_path):
    import shutil

    from alfia.api import find_run_cohort
    from alfia.cohorts import write_cohort

    run = shutil.copytree(fitted.path, tmp_path / "run")
    assert find_run_cohort(run) is None  # nothing beside it
    write_cohort(load_input(dev, encoded=True, style="numeric"), tmp_path / "numeric.parquet")  # not the run's texts
    assert find_run_cohort(run) is None
    write_cohort(load_input(dev, encoded=True), tmp_path / "banded.parquet")  # the default style, as trained
    found = find_run_cohort(run)
    assert found is not None and found.df["stay_id"].tolist() == dev.df["stay_id"].tolist()


def test_an_unknown_device_is_one_clear_error(dev, tiny_bert_dir, tmp_path):
    with pytest.raises(AlfiaError, match=r"unknown device 'gpu0'; use auto .*, cpu, cuda or cuda:N"):
        ALFIAPredictor(backbone=str(tiny_bert_dir), path=tmp_path / "run", device="gpu0", **TINY).fit(dev)


def test_cli_predict_and_embed_show_a_progress_bar(fitted, dev, tmp_path, capsys):
    from alfia.cli import main

    plain = dev.df.drop(columns=["hospital_mortality", "split"])
    for i, command in enumerate(("predict", "embed")):  # other stays each time: embed reads a cache when it can
        new = _plain_parquet(plain.iloc[7 * i:7 * i + 7], tmp_path / f"few-{i}.parquet")
        capsys.readouterr()
        assert main([command, str(fitted.path), str(new), "--schema", "physionet2012", "--batch-size", "2",
                     "--out", str(tmp_path / f"{command}.parquet")]) == 0
        err = capsys.readouterr().err
        assert "scoring stays" in err and "/7 " in err, command  # 7 stays, counted as they are scored
