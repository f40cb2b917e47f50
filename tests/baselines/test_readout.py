"""The frozen-encoder logistic regression and the out-of-fold readout logit (ALFIA-boost's stacking feature)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from alfia.baselines import readout as readout_mod
from alfia.cohorts.synthetic import generate_synthetic


@pytest.fixture(scope="module")
def cohorts():
    return generate_synthetic("eicu", n=400, seed=5), generate_synthetic("eicu", n=150, seed=6)


def fake_means(cohort, n_layers=2, hidden=6, seed=0):
    """Layer means that carry the label (plus noise), as a run's cached readout input would."""
    rng = np.random.default_rng(seed)
    y = cohort.df["hospital_mortality"].to_numpy()
    x = rng.normal(size=(len(y), n_layers * hidden)) + y[:, None] * 0.8
    return pd.DataFrame(x, index=pd.Index(cohort.df["stay_id"].to_numpy(), name="stay_id"),
                        columns=[f"layer_mean_{k}" for k in range(n_layers * hidden)])


def fake_run(tmp_path, monkeypatch, cohorts, lora=False, **train):
    """A run folder's settings: config.json's training settings and the saved model's config."""
    from alfia.model.alfia import ALFIA, ALFIAConfig, FusionConfig, LoraSettings, ReadoutConfig
    from alfia.model.serialization import write_config

    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"train": {"seed": 1, **train}}))
    model = ALFIAConfig(fusion=FusionConfig(num_fusion_layers=2), lora=LoraSettings() if lora else None,
                        readout=ReadoutConfig(C=0.3))
    write_config(run / "model", ALFIA.config_kind, model.to_dict())
    means = {id(c): fake_means(c, seed=i) for i, c in enumerate(cohorts)}
    monkeypatch.setattr(readout_mod.inference, "layer_means", lambda folder, cohort, **runtime: means[id(cohort)])
    return run


def test_frozen_readout_is_a_scored_baseline(tmp_path, monkeypatch, cohorts):
    dev, ext = cohorts
    run = fake_run(tmp_path, monkeypatch, cohorts, lora=False)
    results = readout_mod.run_frozen_readout(run, dev, tmp_path / "out", external=ext, n_boot=20)
    entry = results["models"][readout_mod.FROZEN_LR]
    assert entry["family"] == "frozen encoder"
    assert entry["test"]["auroc"]["value"] > 0.8 and entry["external"]["auroc"]["value"] > 0.8
    preds = pd.read_parquet(tmp_path / "out" / "predictions.parquet")
    assert set(preds["where"]) == {"val", "test", "external"}


def test_frozen_readout_refuses_a_fine_tuned_backbone(tmp_path, monkeypatch, cohorts):
    dev, ext = cohorts
    run = fake_run(tmp_path, monkeypatch, cohorts, lora=True)
    results = readout_mod.run_frozen_readout(run, dev, tmp_path / "out", external=ext, n_boot=20)
    assert results["models"] == {} and "LoRA" in results["skipped"][readout_mod.FROZEN_LR]


@pytest.mark.parametrize("distill", [0.0, 1.0])
def test_out_of_fold_logit_never_comes_from_a_model_that_saw_the_row(tmp_path, monkeypatch, cohorts, distill):
    dev, ext = cohorts
    run = fake_run(tmp_path, monkeypatch, cohorts, lora=False, distill=distill)
    base, base_ext = readout_mod.out_of_fold_readout(run, dev, ext)
    assert list(base.index) == list(dev.df["stay_id"]) and list(base_ext.index) == list(ext.df["stay_id"])
    train = np.flatnonzero((dev.df["split"] == "train").to_numpy())
    flipped = dev.df.copy()
    i = train[3]
    flipped.loc[i, "hospital_mortality"] = 1 - flipped.loc[i, "hospital_mortality"]
    other = type(dev)(flipped, dev.schema, dev.info)
    dev_means, ext_means = fake_means(dev, seed=0), fake_means(ext, seed=1)
    monkeypatch.setattr(readout_mod.inference, "layer_means",
                        lambda folder, cohort, **runtime: ext_means if cohort is ext else dev_means)
    moved, _ = readout_mod.out_of_fold_readout(run, other, ext)
    assert moved.iloc[i] == pytest.approx(base.iloc[i], abs=1e-12)   # its own logit did not see its label
    assert not np.allclose(moved.to_numpy(), base.to_numpy())         # the trap can fire
    # validation/test labels are never read
    shuffled = dev.df.copy()
    rest = shuffled["split"] != "train"
    shuffled.loc[rest, "hospital_mortality"] = shuffled.loc[rest, "hospital_mortality"].to_numpy()[::-1]
    again, _ = readout_mod.out_of_fold_readout(run, type(dev)(shuffled, dev.schema, dev.info), ext)
    assert np.allclose(again.to_numpy(), base.to_numpy())
