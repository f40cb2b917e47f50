"""Texts longer than the model's token limit are counted in every output and warned about once per command
(regression: they were cut without a word); training leaves headroom up to the backbone's maximum."""

from __future__ import annotations

import json
import warnings

import pandas as pd
import pytest
import torch

from alfia.cohorts import Cohort, get_schema
from alfia.inference import TruncationWarning, finish_run, predict_cohort, truncated_texts
from alfia.model import ALFIA, ALFIAConfig, FusionConfig
from tests.conftest import TEXTS


def _cohort() -> Cohort:
    texts = TEXTS * 3
    df = pd.DataFrame({"stay_id": range(1, 16), "hospital_mortality": [0, 1, 0, 1, 1] * 3, "text": texts,
                       "split": ["train"] * 5 + ["val"] * 5 + ["test"] * 5})
    return Cohort(df=df, schema=get_schema("physionet2012"), info={"source": "test"})


def _run(folder, backbone, max_length):
    torch.manual_seed(0)
    model = ALFIA(ALFIAConfig(backbone=str(backbone), fusion=FusionConfig(num_fusion_layers=2), lora=None,
                              max_length=max_length))
    model.save(folder / "model")
    return model


def test_truncated_texts_are_counted_in_predictions_and_metrics_and_warned_once(tiny_bert_dir, tmp_path):
    cohort = _cohort()
    model = _run(tmp_path, tiny_bert_dir, max_length=10)
    lengths = [len(x) for x in model.tokenizer(TEXTS)["input_ids"]]
    expected = [n > 10 for n in lengths]
    assert 0 < sum(expected) < len(TEXTS)
    assert truncated_texts(model, TEXTS).tolist() == expected
    with pytest.warns(TruncationWarning) as caught:
        metrics = finish_run(tmp_path, cohort, n_boot=20, model=model)
    assert len([w for w in caught if w.category is TruncationWarning]) == 1
    assert f"{3 * sum(expected)} of 15 texts" in str(caught[0].message)
    assert metrics["truncation"] == {"limit_tokens": 10, "truncated_texts": {s: sum(expected)
                                                                             for s in ("train", "val", "test")}}
    assert json.loads((tmp_path / "metrics.json").read_text())["truncation"]["limit_tokens"] == 10
    preds = pd.read_parquet(tmp_path / "predictions.parquet")
    assert preds["truncated"].tolist() == expected * 3
    with pytest.warns(TruncationWarning):
        out, info = predict_cohort(tmp_path, cohort)
    assert out["truncated"].tolist() == expected * 3 and info["truncated_texts"] == 3 * sum(expected)
    for text in TEXTS:  # the warning carries counts, never a patient's text
        assert text not in str(caught[0].message)


def test_no_warning_when_nothing_is_cut(tiny_bert_dir, tmp_path):
    _run(tmp_path, tiny_bert_dir, max_length=48)
    (tmp_path / "threshold.json").write_text('{"threshold": 0.5}')
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncationWarning)
        out, info = predict_cohort(tmp_path, _cohort())
    assert info["truncated_texts"] == 0 and not out["truncated"].any()


def test_training_leaves_headroom_up_to_the_backbones_maximum(tiny_bert_dir, tmp_path):
    from alfia.training.trainer import Trainer
    from tests.training.test_trainer import quick, toy_cohort

    cohort = toy_cohort(n=40)
    trainer = Trainer(cohort, tmp_path / "run", quick(**{"model.max_length": None}), backbone=str(tiny_bert_dir),
                      progress=False)
    trainer._build()
    longest = max(len(x) for x in trainer.model.tokenizer(cohort.df["text"].tolist())["input_ids"])
    assert trainer.model.max_length == 48 > longest  # the tiny tokenizer's model_max_length
