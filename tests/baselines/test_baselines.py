"""Tabular baselines, severity scores and ALFIA-boost on a tiny synthetic cohort with a tiny AutoGluon zoo."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from alfia.baselines import boost as boost_mod
from alfia.baselines.tabular import ENSEMBLE, ModelSpec, budget_of, check_feature_columns, run_baselines, select_zoo
from alfia.cohorts import CW24, ID, SPLIT
from alfia.cohorts.synthetic import generate_synthetic
from alfia.errors import AlfiaError

LABEL = CW24.label  # the outcome column of the CW-24 cohorts these tests build

pytest.importorskip("autogluon.tabular", reason="AutoGluon is not installed (make setup installs it)")

TINY_ZOO = (
    ModelSpec("LinearModel", "LR"),
    ModelSpec("RandomForestGini", "RF", {"criterion": "gini", "n_estimators": 20}),
    ModelSpec("NotInstalled", "KNN", requires=("alfia_no_such_module",), missing_reason="needs a missing module"),
    ModelSpec("BrokenForest", "RF", {"n_estimators": -5}),  # fails inside AutoGluon
    ModelSpec("FTTransformer", "FT_TRANSFORMER", {"n_blocks": 1, "max_epochs": 40, "patience": 10},
              requires=("rtdl_revisiting_models",), model_class="alfia.baselines.ft_transformer:FTTransformerModel"),
)
N_BOOT = 20


@pytest.fixture(scope="module")
def cohorts():
    return generate_synthetic("mimic-iv", n=600, seed=1), generate_synthetic("mimic-iv", n=300, seed=2)


@pytest.fixture(scope="module")
def result(cohorts, tmp_path_factory):
    dev, ext = cohorts
    out = tmp_path_factory.mktemp("baselines")
    results = run_baselines(dev, out, external=ext, profile="quick", zoo=TINY_ZOO, n_boot=N_BOOT, verbosity=0)
    return out, results


def test_output_contract(result, cohorts):
    out, results = result
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk == results
    assert set(results) == {"models", "skipped", "preset", "features", "task"}
    assert results["preset"] == "quick" and results["task"] == dev_task(cohorts)
    assert {"LinearModel", "RandomForestGini", ENSEMBLE} <= set(results["models"])
    for m in results["models"].values():
        assert m["family"] in ("tabular", "score")
        assert {"auprc", "auroc", "best_f1", "best_f2"} <= set(m["test"]) and "external" in m
        assert 0.0 <= m["threshold"] <= 1.0
        assert m["test"]["threshold"] == m["threshold"] == m["external"]["threshold"]
    preds = pd.read_parquet(out / "predictions.parquet")
    assert list(preds.columns) == ["model", "where", ID, "probability"]
    assert set(preds["where"]) == {"val", "test", "external"}


def test_scores_are_baselines(result):
    _, results = result
    scores = {n for n, m in results["models"].items() if m["family"] == "score"}
    assert {"SAPS II", "OASIS", "APS III", "LODS", "MELD", "SIRS", "SOFA (max, first day)"} == scores
    for name in scores:
        assert "brier" not in results["models"][name]["test"]  # no calibration metrics for a score


def test_the_severity_scores_are_the_columns_the_schema_labels():
    import dataclasses

    from alfia.baselines.scores import score_severity
    from alfia.cohorts import Cohort

    cohort = generate_synthetic("eicu", n=400, seed=3)
    models, frames = score_severity(cohort, n_boot=N_BOOT)
    assert list(models) == ["APACHE IV", "SAPS II", "OASIS", "SOFA (max, first day)"]  # schema order
    assert {f["model"].iloc[0] for f in frames} == set(models)
    plain = dataclasses.replace(cohort.schema, columns=tuple(dataclasses.replace(c, label=None)
                                                             for c in cohort.schema.columns))
    assert score_severity(Cohort(cohort.df, plain), n_boot=N_BOOT) == ({}, [])


def test_skip_path_lists_reasons(result):
    _, results = result
    assert results["skipped"]["NotInstalled"] == "needs a missing module"
    assert "BrokenForest" in results["skipped"] and results["skipped"]["BrokenForest"]
    assert "NotInstalled" not in results["models"] and "BrokenForest" not in results["models"]


def test_ft_transformer_runs_behind_the_autogluon_interface(result):
    """FT-Transformer (rtdl_revisiting_models inside an AutoGluon model) trains, learns the synthetic signal and
    is scored like every other model."""
    pytest.importorskip("rtdl_revisiting_models")
    _, results = result
    ft = results["models"]["FTTransformer"]
    assert ft["family"] == "tabular"
    assert ft["test"]["auroc"]["value"] > 0.7 and ft["external"]["auroc"]["value"] > 0.7


def test_tabpfn_without_weights_is_skipped():
    specs, skipped = select_zoo("quick", ["TabPFN", "LinearModel"])
    assert [s.name for s in specs] == ["LinearModel"]
    assert "TabPFN" in skipped and skipped["TabPFN"]


def test_every_model_sees_the_same_rows(result, cohorts):
    out, results = result
    dev, ext = cohorts
    preds = pd.read_parquet(out / "predictions.parquet")
    expected = {w: set(dev.df.loc[dev.df[SPLIT] == w, ID]) for w in ("val", "test")} | {"external": set(ext.df[ID])}
    for name, m in results["models"].items():
        mine = preds[preds["model"] == name]
        for where, ids in expected.items():
            got = mine.loc[mine["where"] == where, ID]
            assert got.is_unique
            if m["family"] == "tabular":
                assert set(got) == ids, (name, where)
            else:
                assert set(got) <= ids
    info = json.loads((out / "run_info.json").read_text())
    assert info["train_stay_ids"] == dev.df.loc[dev.df[SPLIT] == "train", ID].tolist()
    assert info["rows"] == {w: int((dev.df[SPLIT] == w).sum()) for w in ("train", "val", "test")} | {"external": 300}


def test_autogluon_trained_on_the_train_split_only(result, cohorts):
    from autogluon.tabular import TabularPredictor

    out, _ = result
    dev, _ = cohorts
    predictor = TabularPredictor.load(str(out / "autogluon"))
    X, y = predictor.load_data_internal("train")
    X_val, y_val = predictor.load_data_internal("val")
    train, val = dev.split("train"), dev.split("val")
    assert len(X) == len(train) and len(X_val) == len(val)
    np.testing.assert_array_equal(np.asarray(y), train[LABEL].to_numpy())
    np.testing.assert_array_equal(np.asarray(y_val), val[LABEL].to_numpy())
    np.testing.assert_allclose(X["age"].to_numpy(dtype=float), train["age"].to_numpy(dtype=float))
    np.testing.assert_allclose(X_val["age"].to_numpy(dtype=float), val["age"].to_numpy(dtype=float))
    assert predictor._trainer.bagged_mode is False  # no bagging: no fold can hold a val/test row


def test_no_reference_id_or_split_column_reaches_a_model(result, cohorts):
    from autogluon.tabular import TabularPredictor

    out, results = result
    dev, _ = cohorts
    predictor = TabularPredictor.load(str(out / "autogluon"))
    given = set(predictor.original_features) | set(predictor.feature_metadata_in.get_features())
    forbidden = {ID, SPLIT, LABEL, "text", "ref_saps1", "ref_sofa", *dev.schema.reference_columns}
    assert not given & forbidden
    assert given <= set(dev.schema.feature_columns)
    assert set(results["features"]) == set(dev.schema.feature_columns)
    info = json.loads((out / "run_info.json").read_text())
    assert not set(info["autogluon_features"]) & forbidden


def test_reference_columns_are_refused():
    p12_like = generate_synthetic("mimic-iv", n=50, seed=3)
    with pytest.raises(AlfiaError, match="refusing"):
        check_feature_columns(["age", SPLIT], p12_like)
    with pytest.raises(AlfiaError, match="refusing"):
        check_feature_columns(["age", ID], p12_like)


def dev_task(cohorts) -> dict:
    return cohorts[0].task.to_dict()


def test_unknown_profile_and_model(cohorts, tmp_path):
    dev, _ = cohorts
    with pytest.raises(AlfiaError, match="unknown profile 'fast'"):
        run_baselines(dev, tmp_path, profile="fast")
    # the old keyword still works for one release, with a DeprecationWarning
    with pytest.warns(DeprecationWarning, match=r"preset=\.\.\.\) is deprecated"), \
            pytest.raises(AlfiaError, match="unknown profile 'fast'"):
        run_baselines(dev, tmp_path, preset="fast")
    with pytest.raises(AlfiaError, match="unknown model"):
        select_zoo("quick", ["NoSuchModel"])


def test_boost_uses_embeddings_and_features(cohorts, tmp_path, monkeypatch):
    dev, ext = cohorts

    def fake_embed(run_dir, cohort, batch_size=32, device="auto", precision="auto"):
        rng = np.random.default_rng(int(cohort.df[ID].iloc[0]) % 1000)
        y = cohort.df[LABEL].to_numpy()
        emb = rng.normal(size=(len(y), 4)) + y[:, None]
        data = {ID: cohort.df[ID].to_numpy()} | {f"emb_{i}": emb[:, i] for i in range(4)}
        return pd.DataFrame(data | {"layer_weight_0": np.full(len(y), 0.5)})

    monkeypatch.setattr(boost_mod.inference, "embed_cohort", fake_embed)
    # a random forest stands in for LightGBM here: LightGBM's threads crawl on a busy 2-core test machine
    zoo = (ModelSpec("ALFIA-boost (RandomForest)", "RF", {"n_estimators": 30}),
           ModelSpec("ALFIA-boost (CatBoost)", "CAT", {"iterations": 20}),
           ModelSpec("ALFIA-nn (NeuralNetFastAI)", "FASTAI", requires=("alfia_no_such_module",),
                     missing_reason="fastai cannot run"))
    monkeypatch.chdir(tmp_path)   # CatBoost writes no catboost_info/ where it runs (nor anywhere: AutoGluon's default)
    results = boost_mod.run_boost("unused-run", dev, tmp_path / "out", external=ext, zoo=zoo, n_boot=N_BOOT,
                                  verbosity=0)
    assert not list(tmp_path.rglob("catboost_info"))
    assert {"ALFIA-boost (RandomForest)", "ALFIA-boost (CatBoost)", "ALFIA-boost"} <= set(results["models"])
    assert all(m["family"] == "alfia-derived" for m in results["models"].values())
    assert results["skipped"]["ALFIA-nn (NeuralNetFastAI)"] == "fastai cannot run"
    assert {"emb_0", "emb_3", "layer_weight_0", "age"} <= set(results["features"])
    assert not set(results["features"]) & {ID, SPLIT, LABEL}
    # the embeddings carry the label signal, so the boosters must beat chance clearly
    assert results["models"]["ALFIA-boost"]["test"]["auroc"]["value"] > 0.8


def test_each_profile_names_the_zoos_budget():
    from alfia.training.config import PROFILES

    assert {name: budget_of(name) for name in PROFILES} == {"quick": "quick", "paper": "paper", "ablation": "quick"}


def test_the_model_seed_reaches_every_model_and_the_bootstrap_seed_stays(result, cohorts, tmp_path):
    """``seed`` seeds AutoGluon's models (0, the default, gives the same predictions; another seed other ones),
    recorded in run_info.json; the bootstrap keeps its own seed, so the resamples stay the same."""
    from alfia.baselines import _autogluon
    from alfia.baselines.ft_transformer import FTTransformerModel

    assert _autogluon.seed_key("RF") == "random_state" and _autogluon.seed_key("KNN") is None
    assert _autogluon.seed_key(FTTransformerModel) == "seed"
    dev, ext = cohorts
    zoo = (ModelSpec("RandomForestGini", "RF", {"criterion": "gini", "n_estimators": 20}),)
    out, default = result
    runs = {seed: run_baselines(dev, tmp_path / str(seed), external=ext, zoo=zoo, scores=False, seed=seed,
                                n_boot=N_BOOT, verbosity=0, models=["RandomForestGini"]) for seed in (0, 1)}
    preds = {seed: pd.read_parquet(tmp_path / str(seed) / "predictions.parquet") for seed in runs}
    before = pd.read_parquet(out / "predictions.parquet").query("model == 'RandomForestGini'").reset_index(drop=True)
    pd.testing.assert_frame_equal(preds[0], before)
    assert not np.allclose(preds[1]["probability"], preds[0]["probability"])
    assert [json.loads((tmp_path / str(s) / "run_info.json").read_text())["seed"] for s in runs] == [0, 1]
    assert runs[1]["models"]["RandomForestGini"]["test"]["seed"] == default["models"]["LinearModel"]["test"]["seed"]
