"""The pooled readout, the tabular teacher and recalibration: traps for leaks and round trips."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from alfia.cohorts.synthetic import generate_synthetic
from alfia.evaluation.calibration import Calibrator
from alfia.inference import Run, finish_run
from alfia.model.alfia import ALFIA, ALFIAConfig
from alfia.model.fusion import FusionConfig
from alfia.model.readout import PooledReadout, ReadoutConfig
from alfia.training.teacher import out_of_fold_teacher
from alfia.training.trainer import train


@pytest.fixture(scope="module")
def synth():
    return generate_synthetic("mimic-iv", n=500, seed=3)


def test_teacher_never_sees_a_rows_own_label_nor_validation_or_test(synth):
    base = out_of_fold_teacher(synth, folds=5, seed=0)
    train = np.flatnonzero((synth.df["split"] == "train").to_numpy())
    assert len(base) == len(train) and np.all((base > 0) & (base < 1))
    # validation and test labels shuffled: nothing changes
    other = synth.df.copy()
    rows = other["split"] != "train"
    other.loc[rows, "hospital_mortality"] = np.random.default_rng(0).permutation(other.loc[rows, "hospital_mortality"])
    assert np.array_equal(out_of_fold_teacher(type(synth)(other, synth.schema, synth.info), seed=0), base)
    # one training row's label flipped: that row's own target does not move (its model never saw the label)
    flipped = synth.df.copy()
    i = train[7]
    flipped.loc[i, "hospital_mortality"] = 1 - flipped.loc[i, "hospital_mortality"]
    moved = out_of_fold_teacher(type(synth)(flipped, synth.schema, synth.info), seed=0)
    assert moved[7] == base[7]
    assert not np.array_equal(moved, base)  # the trap can fire: other rows' models did see it


def test_readout_starts_at_the_logistic_regression():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2, 8))
    y = (x[:, 1, 0] + 0.3 * rng.normal(size=200) > 0).astype(float)
    readout = PooledReadout(ReadoutConfig(hidden_size=8, num_layers=2, C=0.5))
    flat = x.reshape(200, -1)
    readout.fit_start(flat, y)
    z = (flat - flat.mean(0)) / flat.std(0)
    expected = LogisticRegression(C=0.5, max_iter=2000).fit(z, y).decision_function(z)
    got = readout(torch.tensor(x, dtype=torch.float32)).detach().numpy()
    assert np.allclose(got, expected, atol=1e-3)


def test_model_with_readout_starts_at_it_and_round_trips(tmp_path, tiny_bert_dir, texts):
    config = ALFIAConfig(backbone=str(tiny_bert_dir), fusion=FusionConfig(num_fusion_layers=2), lora=None,
                         max_length=32, readout=ReadoutConfig())
    model = ALFIA(config).eval()
    assert model.config.readout.num_layers == 2 and model.config.readout.hidden_size == 32
    with torch.no_grad():
        model.readout.linear.weight.normal_()
        enc = model.tokenize(texts)
        out = model(enc["input_ids"], enc["attention_mask"])
        # the head's output layer starts at zero: the logit is the readout's alone
        assert torch.allclose(out.logits, model.readout(out.layer_means), atol=1e-6)
    model.save(tmp_path / "m")
    loaded = ALFIA.load(tmp_path / "m")
    assert np.allclose(loaded.predict_proba(texts), model.predict_proba(texts), atol=1e-6)


def test_calibrator_fits_platt_and_temperature():
    rng = np.random.default_rng(1)
    z = rng.normal(size=4000) * 2
    y = (rng.random(4000) < 1 / (1 + np.exp(-(0.5 * z - 1.0)))).astype(int)
    p_raw = 1 / (1 + np.exp(-z))
    platt = Calibrator("platt").fit(y, p_raw)
    assert abs(platt.a - 0.5) < 0.1 and abs(platt.b + 1.0) < 0.15
    temperature = Calibrator("temperature").fit(y, p_raw)
    assert temperature.b == 0.0 and 0 < temperature.a < 1
    assert np.array_equal(Calibrator("none").fit(y, p_raw).transform(p_raw), p_raw)
    assert Calibrator.from_dict(json.loads(json.dumps(platt.to_dict()))).a == platt.a


def test_calibrator_and_threshold_ignore_test_labels(tmp_path, tiny_bert_dir):
    from tests.training.test_trainer import quick, toy_cohort

    cohort = toy_cohort(n=200, seed=4)
    config = quick(epochs=1, class_weight=False, calibration="platt", **{"model.lora": None, "model.readout": {}})
    train(cohort, tmp_path / "run", config, backbone=str(tiny_bert_dir), progress=False)
    finish_run(tmp_path / "run", cohort, n_boot=10)
    first = (tmp_path / "run" / "calibration.json").read_text(), (tmp_path / "run" / "threshold.json").read_text()
    shuffled = cohort.df.copy()
    test = shuffled["split"] == "test"
    shuffled.loc[test, "hospital_mortality"] = shuffled.loc[test, "hospital_mortality"].to_numpy()[::-1]
    finish_run(tmp_path / "run", type(cohort)(shuffled, cohort.schema, cohort.info), n_boot=10)
    assert first == ((tmp_path / "run" / "calibration.json").read_text(),
                     (tmp_path / "run" / "threshold.json").read_text())
    run = Run.load(tmp_path / "run")
    assert run.calibrator.method == "platt"
    import pandas as pd

    pred = pd.read_parquet(tmp_path / "run" / "predictions.parquet")
    assert np.allclose(run.calibrator.transform(pred["p_raw"].to_numpy()), pred["probability"].to_numpy())
    history = [json.loads(x) for x in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert history[0]["epoch"] == 0 and history[0]["train_loss"] is None  # the starting readout is a candidate
