"""Caches are keyed by the model's weight digests and the code version (regression: they were keyed by stay id and
text, or by model/config.json, so retraining into the same run folder served the old model's outputs)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from alfia.analysis.latent import latent_key
from alfia.cohorts import Cohort, get_schema
from alfia.inference import embed_cohort
from alfia.model import ALFIA, ALFIAConfig, FusionConfig, LoraSettings, scoring
from tests.conftest import TEXTS


def _save_model(backbone, folder, seed):
    torch.manual_seed(seed)
    config = ALFIAConfig(backbone=str(backbone), fusion=FusionConfig(num_fusion_layers=2),
                         lora=LoraSettings(r=4, alpha=8), max_length=32)
    model = ALFIA(config)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.3 * torch.randn(p.shape))
    model.save(folder)
    return model


def _cohort() -> Cohort:
    df = pd.DataFrame({"stay_id": range(1, 6), "hospital_mortality": [0, 1, 0, 1, 0], "text": TEXTS,
                       "split": ["train", "train", "val", "test", "test"]})
    return Cohort(df=df, schema=get_schema("physionet2012"), info={"source": "test"})


def test_retraining_into_the_same_folder_invalidates_the_embedding_and_latent_caches(tiny_bert_dir, tmp_path):
    cohort = _cohort()
    _save_model(tiny_bert_dir, tmp_path / "model", seed=0)
    first = embed_cohort(tmp_path, cohort)
    key_first = latent_key(tmp_path, cohort, 100, "pca")
    assert len(list((tmp_path / "embeddings").iterdir())) == 1
    retrained = _save_model(tiny_bert_dir, tmp_path / "model", seed=1)  # same config.json, other weights
    second = embed_cohort(tmp_path, cohort)
    _, expected, _, _ = scoring.predict_embed(retrained, TEXTS)
    emb = second[[c for c in second.columns if c.startswith("emb_")]].to_numpy()
    np.testing.assert_allclose(emb, expected, atol=1e-5)
    assert not np.allclose(emb, first[[c for c in first.columns if c.startswith("emb_")]].to_numpy())
    assert latent_key(tmp_path, cohort, 100, "pca") != key_first


def test_the_code_version_is_part_of_the_key(tiny_bert_dir, tmp_path, monkeypatch):
    import alfia.inference as inference

    cohort = _cohort()
    _save_model(tiny_bert_dir, tmp_path / "model", seed=0)
    key = latent_key(tmp_path, cohort, 100, "pca")
    monkeypatch.setattr(inference, "code_version", lambda: "another-version")
    assert latent_key(tmp_path, cohort, 100, "pca") != key
