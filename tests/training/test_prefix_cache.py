"""Frozen-prefix caching is the same computation as the uncached forward: same loss, same gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alfia.model import ALFIA, ALFIAConfig, FusionConfig, LoraSettings
from alfia.model.tokens import TokenizedTexts
from alfia.training.prefix_cache import PrefixCache


def _model(backbone_dir, n_f: int, layers: int) -> ALFIA:
    torch.manual_seed(0)
    config = ALFIAConfig(backbone=str(backbone_dir), fusion=FusionConfig(num_fusion_layers=n_f),
                         lora=LoraSettings(r=4, alpha=8, dropout=0.0, layers=layers), max_length=32)
    model = ALFIA(config)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:   # LoRA B starts at zero: move every trainable weight
                p.add_(0.2 * torch.randn(p.shape, generator=g))
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
            if isinstance(module, torch.nn.MultiheadAttention):   # the head's attention dropout is a float
                module.dropout = 0.0
    return model


def _loss_and_grads(model: ALFIA, logits_fn, y: torch.Tensor) -> tuple[float, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits_fn().float(), y,
                                                                pos_weight=torch.tensor(2.0))
    loss.backward()
    return float(loss), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("n_f,layers", [(4, 2), (2, 2), (3, 1)])
def test_cached_prefix_gives_the_same_loss_and_gradients(tiny_bert_dir, texts, n_f, layers):
    model = _model(tiny_bert_dir, n_f, layers)
    model.train()
    assert model.num_frozen_layers == 4 - layers
    tokens = TokenizedTexts.from_texts(model.tokenizer, texts, model.max_length)
    cache = PrefixCache(model, tokens, batch_size=2, progress=False)
    # building the cache leaves the frozen layers in eval mode and the trainable ones in training mode
    layers, p = list(model._layers()), model.num_frozen_layers
    assert not any(m.training for layer in layers[:p] for m in layer.modules())
    assert all(m.training for layer in layers[p:] for m in layer.modules())
    rows = np.array([4, 0, 2, 1])   # mixed lengths: padding inside the batch
    y = torch.tensor([1.0, 0.0, 1.0, 0.0])
    ids, mask = tokens.collate(rows)
    prefix, cmask = cache.collate(rows, model.device)
    assert torch.equal(mask, cmask)

    loss_live, grads_live = _loss_and_grads(model, lambda: model(ids, mask).logits, y)
    loss_cached, grads_cached = _loss_and_grads(model, lambda: model(None, cmask, prefix=prefix).logits, y)

    assert loss_cached == pytest.approx(loss_live, rel=1e-5, abs=1e-6)
    assert set(grads_live) == set(grads_cached) and grads_live
    assert any("lora_" in n for n in grads_live)
    for name, grad in grads_live.items():
        assert grad.abs().sum() > 0 or "lora_A" in name, f"{name} has no gradient"
        torch.testing.assert_close(grads_cached[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_cached_prefix_predictions_match_predict_proba(tiny_bert_dir, texts):
    model = _model(tiny_bert_dir, 4, 2)
    tokens = TokenizedTexts.from_texts(model.tokenizer, texts, model.max_length)
    cache = PrefixCache(model, tokens, batch_size=3, progress=False)
    np.testing.assert_allclose(cache.predict_proba(model, batch_size=2), model.predict_proba(texts, batch_size=5),
                               rtol=0, atol=1e-6)


def test_the_cache_would_differ_if_a_bottom_layer_were_trainable(tiny_bert_dir, texts):
    """The check above can fail: changing a bottom layer after caching changes the live loss, not the cached."""
    model = _model(tiny_bert_dir, 4, 2)
    model.train()
    tokens = TokenizedTexts.from_texts(model.tokenizer, texts, model.max_length)
    cache = PrefixCache(model, tokens, batch_size=5, progress=False)
    with torch.no_grad():
        model._layers()[0].output.dense.weight.mul_(1.5)
    rows = np.arange(len(texts))
    ids, mask = tokens.collate(rows)
    prefix, cmask = cache.collate(rows, model.device)
    with torch.no_grad():
        live, cached = model(ids, mask).logits, model(None, cmask, prefix=prefix).logits
    assert not torch.allclose(live, cached, atol=1e-4)


def test_over_its_budget_the_cache_is_a_file_that_gives_the_same_batches(tiny_bert_dir, texts, tmp_path, caplog):
    """Above its memory budget the cache is written to an (already unlinked) file in the run's temporary folder and
    read back batch by batch: the same states as in memory; a rank's cache holds only the rows it owns."""
    import logging

    model = _model(tiny_bert_dir, 3, 1)
    tokens = TokenizedTexts.from_texts(model.tokenizer, texts * 3, model.max_length)
    in_memory = PrefixCache(model, tokens, batch_size=4, progress=False)
    with caplog.at_level(logging.INFO, logger="alfia"):
        on_disk = PrefixCache(model, tokens, batch_size=4, progress=False, budget=0, folder=tmp_path / ".tmp")
    assert on_disk.data is None and in_memory.data is not None
    estimate = sum(tokens.lengths) * len(model.prefix_indices()) * 32 * 4   # tokens x layers x hidden x fp32
    assert f"{estimate / 1000:.1f} KB in a file" in caplog.text
    assert list((tmp_path / ".tmp").iterdir()) == []   # unlinked at once: nothing outlives the process
    rows = np.array([7, 0, 14, 3])
    for (a, mask_a), (b, mask_b) in [(in_memory.collate(rows, model.device), on_disk.collate(rows, model.device))]:
        assert torch.equal(mask_a, mask_b) and a.keys() == b.keys()
        for j in a:
            assert torch.equal(a[j], b[j])
    np.testing.assert_array_equal(in_memory.predict_proba(model), on_disk.predict_proba(model))
    mine = np.arange(1, len(tokens), 2)   # rank 1 of 2
    shard = PrefixCache(model, tokens, batch_size=4, progress=False, rows=mine, budget=0, folder=tmp_path)
    assert len(shard) == len(mine) and shard.offsets[-1] == tokens.lengths[mine].sum()
    prefix, _ = shard.collate(np.array([3, 1]), model.device)
    reference, _ = in_memory.collate(np.array([3, 1]), model.device)
    assert all(torch.equal(prefix[j], reference[j]) for j in prefix)
    with pytest.raises(IndexError, match="rows outside this cache"):
        shard.collate(np.array([2]), model.device)
    on_disk.close()
    shard.close()
