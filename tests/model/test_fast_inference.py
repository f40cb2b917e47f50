"""The inference path: token-length bucketing and dynamic padding change no prediction; int8 quantisation stays
within its stated tolerance and leaves the model untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.ao.nn.quantized.dynamic import Linear as QuantizedLinear

from alfia.errors import AlfiaError
from alfia.model import ALFIA, ALFIAConfig, FusionConfig, LoraSettings
from alfia.model.quantize import quantized_copy

INT8_PROB_TOLERANCE = 2e-2   # stated for tiny random models in docs/speed.md (MiniLM: measured there)


def _model(backbone_dir, layers=None, lora=True) -> ALFIA:
    torch.manual_seed(0)
    config = ALFIAConfig(backbone=str(backbone_dir), fusion=FusionConfig(num_fusion_layers=2),
                         lora=LoraSettings(r=4, alpha=8, layers=layers) if lora else None, max_length=32)
    model = ALFIA(config)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.2 * torch.randn(p.shape, generator=g))
    return model.eval()


def _many(texts: list[str]) -> list[str]:
    return [a + " " + b for a in texts for b in texts[:3]] + texts   # 20 texts of varied lengths


def test_bucketed_batches_match_one_by_one(tiny_backbone_dir, texts):
    model = _model(tiny_backbone_dir)
    many = _many(texts)
    batched = model.predict_proba(many, batch_size=6)
    single = np.array([model.predict_proba([t], batch_size=1)[0] for t in many])
    np.testing.assert_allclose(batched, single, rtol=0, atol=1e-6)
    emb, weights = model.embed(many, batch_size=7)
    for i in (0, 7, len(many) - 1):
        e1, w1 = model.embed([many[i]], batch_size=1)
        np.testing.assert_allclose(emb[i], e1[0], atol=1e-5)
        np.testing.assert_allclose(weights[i], w1[0], atol=1e-5)


def test_bucketing_matches_the_plain_forward_in_the_callers_order(tiny_bert_dir, texts):
    model = _model(tiny_bert_dir)
    many = _many(texts)
    with torch.no_grad():
        enc = model.tokenize(many)
        plain = torch.sigmoid(model(enc["input_ids"], enc["attention_mask"]).logits).numpy()
    np.testing.assert_allclose(model.predict_proba(many, batch_size=4), plain, rtol=0, atol=1e-6)
    rev = model.predict_proba(many[::-1], batch_size=4)
    np.testing.assert_allclose(rev[::-1], plain, rtol=0, atol=1e-6)


def test_inference_keeps_the_training_mode_and_handles_no_texts(tiny_bert_dir, texts):
    model = _model(tiny_bert_dir).train()
    assert model.predict_proba([]).shape == (0,)
    model.predict_proba(texts)
    assert model.training
    with pytest.raises(AlfiaError, match="batch size"):
        model.predict_proba(texts, batch_size=0)
    with pytest.raises(AlfiaError, match="list of strings"):
        model.predict_proba("one text")


@pytest.mark.parametrize("layers,lora", [(None, True), (2, True), (None, False)])
def test_int8_stays_within_its_tolerance(tiny_bert_dir, texts, layers, lora):
    model = _model(tiny_bert_dir, layers=layers, lora=lora)
    many = _many(texts)
    before = {n: p.detach().clone() for n, p in model.state_dict().items()}
    fp32 = model.predict_proba(many, batch_size=8)
    int8 = model.predict_proba(many, batch_size=8, quantize=True)
    assert np.abs(int8 - fp32).max() <= INT8_PROB_TOLERANCE
    assert not np.array_equal(int8, fp32)    # it really ran another computation
    emb32, _ = model.embed(many)
    emb8, _ = model.embed(many, quantize=True)
    assert (emb32 * emb8).sum(1).min() > 0.99   # cosine similarity of the normalised embeddings
    # the model itself is untouched: same weights, same fp32 predictions, no quantised module inside
    after = model.state_dict()
    assert set(after) == set(before) and all(torch.equal(after[n], before[n]) for n in before)
    np.testing.assert_array_equal(model.predict_proba(many, batch_size=8), fp32)
    assert not any(isinstance(m, QuantizedLinear) for m in model.modules())
    q = quantized_copy(model)
    assert any(isinstance(m, QuantizedLinear) for m in q.backbone.modules())
    assert not any(type(m) is torch.nn.Linear for m in q.backbone.modules())
    assert not any(hasattr(m, "lora_A") for m in q.modules())   # LoRA merged into the base weights


def test_int8_copy_is_reused_and_rebuilt_when_weights_change(tiny_bert_dir, texts):
    model = _model(tiny_bert_dir, layers=2)
    first = quantized_copy(model)
    assert quantized_copy(model) is first
    p1 = model.predict_proba(texts, quantize=True)
    with torch.no_grad():
        next(p for n, p in model.named_parameters() if "lora_B" in n).add_(1.0)
        model.head.output.bias.add_(2.0)
    assert quantized_copy(model) is not first
    p2 = model.predict_proba(texts, quantize=True)
    assert np.abs(p2 - model.predict_proba(texts)).max() <= INT8_PROB_TOLERANCE
    assert not np.allclose(p1, p2)
