"""The scoring loop (alfia.model.scoring): the model class's predict_proba / embed are thin wrappers of it, and one
assemble function puts batches (or a chunk of a cohort) back in row order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alfia.errors import AlfiaError
from alfia.model import ALFIA, ALFIAConfig, FusionConfig, scoring


@pytest.fixture(scope="module")
def model(tiny_bert_dir):
    torch.manual_seed(0)
    return ALFIA(ALFIAConfig(backbone=str(tiny_bert_dir), fusion=FusionConfig(num_fusion_layers=2), lora=None,
                             max_length=32))


def test_one_pass_gives_what_each_wrapper_gives(model, texts):
    p, emb, weights, means = scoring.predict_embed(model, texts, batch_size=2)
    np.testing.assert_array_equal(p, model.predict_proba(texts, batch_size=2))
    np.testing.assert_array_equal(p, scoring.predict_proba(model, texts, batch_size=2))
    e, w = model.embed(texts, batch_size=2)
    np.testing.assert_array_equal(emb, e)
    np.testing.assert_array_equal(weights, w)
    assert means is None and p.dtype == np.float64 and emb.dtype == np.float32


def test_score_restores_the_training_mode_and_counts_batches(model, texts):
    model.train()
    seen = []
    parts = scoring.score(model, texts, 3, scoring.probability, on_batch=seen.append)
    assert model.training and sum(seen) == len(texts) == sum(len(idx) for idx, _ in parts)
    model.eval()
    with pytest.raises(AlfiaError, match="batch size"):
        scoring.score(model, texts, 0, scoring.probability)


def test_assemble_outputs_puts_a_chunk_back_in_row_order():
    rng = np.random.default_rng(0)
    rows = np.arange(100, 110)   # a chunk of a cohort: consecutive rows
    p, e, w = rng.random(10), rng.random((10, 3)).astype(np.float32), rng.random((10, 2)).astype(np.float32)
    order = rng.permutation(10)
    parts = [(rows[order[:4]], (p[order[:4]], e[order[:4]], w[order[:4]], None)),
             (rows[order[4:]], (p[order[4:]], e[order[4:]], w[order[4:]], None))]
    got = scoring.assemble_outputs(parts, 10, first=100)
    np.testing.assert_array_equal(got[0], p)
    np.testing.assert_array_equal(got[1], e)
    np.testing.assert_array_equal(got[2], w)
    assert got[3] is None
    local = [(idx - 100, value) for idx, value in parts]
    for a, b in zip(scoring.assemble_outputs(local, 10)[:3], got[:3], strict=True):
        np.testing.assert_array_equal(a, b)
