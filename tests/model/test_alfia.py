"""The ALFIA wrapper on tiny random BERT and RoBERTa backbones: layer selection, LoRA, save/load, inference."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from alfia.errors import AlfiaError
from alfia.model import ALFIA, ALFIAConfig, FusionConfig, LoraSettings

BERT_LORA_MODULES_PER_LAYER = [
    "attention.self.query", "attention.self.key", "attention.self.value",
    "attention.output.dense",   # attention output projection
    "output.dense",             # FFN output projection: "output.dense" matches both by suffix
]


def _model(backbone_dir, n_f=2, lora=True, gating=True, layers=None, seed=0) -> ALFIA:
    torch.manual_seed(seed)
    config = ALFIAConfig(backbone=str(backbone_dir), fusion=FusionConfig(num_fusion_layers=n_f, use_gating=gating),
                         lora=LoraSettings(r=4, alpha=8, layers=layers) if lora else None, max_length=32)
    return ALFIA(config)


def _perturb(model: ALFIA, seed: int = 0) -> None:
    """Move LoRA B (zero at init), fusion and head weights away from their initial values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.2 * torch.randn(p.shape, generator=g))


def _encode(model: ALFIA, texts):
    enc = model.tokenize(texts)
    return enc["input_ids"], enc["attention_mask"]


def _base_model(model: ALFIA):
    return model.backbone.get_base_model() if model.config.lora is not None else model.backbone


def test_forward_shapes(tiny_backbone_dir, texts):
    model = _model(tiny_backbone_dir).eval()
    ids, mask = _encode(model, texts)
    with torch.no_grad():
        out = model(ids, mask)
    hidden = model.config.fusion.hidden_size
    assert out.logits.shape == (len(texts),)
    assert out.embedding.shape == (len(texts), hidden)
    assert out.layer_weights.shape == (len(texts), 2)
    assert out.token_weights.shape == ids.shape
    torch.testing.assert_close(out.token_weights.sum(-1), torch.ones(len(texts)))
    assert bool((out.token_weights[mask == 0] == 0).all())


def test_only_the_top_layers_are_fused(tiny_backbone_dir, texts):
    """The model's output is the fusion of the backbone's top N_f hidden states as HF reports them; a state below
    them does not reach it (tests/model/test_families.py: only those are kept, for every family)."""
    model = _model(tiny_backbone_dir, n_f=2)
    _perturb(model)
    model.eval()
    ids, mask = _encode(model, texts)
    with torch.no_grad():
        hf = model.backbone(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
        logits = model(ids, mask).logits
        from_hf = model.from_hidden_states(hf[-2:], mask).logits
        lower = model.from_hidden_states(hf[-3:-1], mask).logits
    for ours, theirs in zip(model.top_hidden_states(ids, mask), hf[-2:], strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
    torch.testing.assert_close(logits, from_hf, rtol=0, atol=1e-6)
    assert not torch.allclose(lower, from_hf)


def test_too_many_fusion_layers_is_a_clear_error(tiny_bert_dir):
    with pytest.raises(AlfiaError, match="has 4 layers"):
        _model(tiny_bert_dir, n_f=5)


def test_gating_off_works(tiny_bert_dir, texts):
    model = _model(tiny_bert_dir, gating=False).eval()
    _, weights = model.embed(texts)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)


def test_padding_does_not_change_predictions(tiny_backbone_dir, texts):
    model = _model(tiny_backbone_dir)
    _perturb(model)
    short = texts[3]
    alone = model.predict_proba([short])
    batched = model.predict_proba(texts)          # padded to the longest text
    np.testing.assert_allclose(batched[3], alone[0], rtol=1e-5, atol=1e-6)
    emb_alone, lam_alone = model.embed([short])
    emb, lam = model.embed(texts, batch_size=2)
    np.testing.assert_allclose(emb[3], emb_alone[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(lam[3], lam_alone[0], rtol=1e-5, atol=1e-6)


def test_embed_is_normalised_and_ordered(tiny_bert_dir, texts):
    model = _model(tiny_bert_dir)
    _perturb(model)
    emb, lam = model.embed(texts, batch_size=2)
    assert emb.shape == (len(texts), model.config.fusion.hidden_size) and lam.shape == (len(texts), 2)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    one_by_one = np.concatenate([model.embed([t])[0] for t in texts])
    np.testing.assert_allclose(emb, one_by_one, rtol=1e-4, atol=1e-5)
    probs = model.predict_proba(texts, batch_size=2)
    assert probs.shape == (len(texts),) and probs.dtype == np.float64 and ((probs > 0) & (probs < 1)).all()
    assert model.predict_proba([]).shape == (0,)
    with pytest.raises(AlfiaError, match="list of strings"):
        model.predict_proba("one text")


def test_lora_selects_the_documented_modules(tiny_backbone_dir):
    model = _model(tiny_backbone_dir)
    expected = [f"encoder.layer.{i}.{name}" for i in range(model.num_layers) for name in BERT_LORA_MODULES_PER_LAYER]
    assert model.lora_modules() == expected
    assert not any("intermediate" in n or "pooler" in n for n in model.lora_modules())
    top = _model(tiny_backbone_dir, layers=1)
    last = model.num_layers - 1
    assert top.lora_modules() == [f"encoder.layer.{last}.{name}" for name in BERT_LORA_MODULES_PER_LAYER]
    assert top.num_frozen_layers == model.num_layers - 1
    with pytest.raises(AlfiaError, match="has only"):
        _model(tiny_backbone_dir, layers=model.num_layers + 1)


def test_lora_training_step_leaves_base_weights_untouched(tiny_bert_dir, texts):
    model = _model(tiny_bert_dir)
    _perturb(model)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or n.startswith(("fusion.", "head.")) for n in trainable)
    assert any("lora_A" in n for n in trainable) and any("lora_B" in n for n in trainable)
    assert any(n.startswith("fusion.") for n in trainable) and any(n.startswith("head.") for n in trainable)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    model.train()
    ids, mask = _encode(model, texts)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(model(ids, mask).logits,
                                                                torch.tensor([1.0, 0, 0, 1, 0]))
    loss.backward()
    optimizer.step()
    for name, p in model.named_parameters():
        if name in trainable:
            assert not torch.equal(p, before[name]), name
        else:
            assert torch.equal(p, before[name]), name


def test_without_lora_the_backbone_is_frozen_and_deterministic(tiny_bert_dir, texts):
    model = _model(tiny_bert_dir, lora=False)
    assert all(not p.requires_grad for p in model.backbone.parameters())
    assert model.lora_modules() == []
    model.train()
    assert not model.backbone.training and model.fusion.training
    ids, mask = _encode(model, texts)
    with torch.no_grad():
        a, b = model.top_hidden_states(ids, mask), model.top_hidden_states(ids, mask)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("lora", [True, False])
def test_save_load_reproduces_predictions_exactly(tiny_backbone_dir, texts, tmp_path, lora):
    model = _model(tiny_backbone_dir, lora=lora, gating=lora)
    _perturb(model)
    probs = model.predict_proba(texts)
    emb, lam = model.embed(texts)
    run = tmp_path / "run"
    model.save(run)
    saved = json.loads((run / "config.json").read_text())
    assert saved["kind"] == "alfia.model" and {"alfia", "torch", "transformers"} <= set(saved["versions"])
    assert saved["config"]["backbone"] == str(tiny_backbone_dir.resolve())
    assert (run / "adapter" / "adapter_model.safetensors").exists() == lora
    assert not list(run.rglob("*.bin")) and not list(run.rglob("*.pt"))
    loaded = ALFIA.load(run)
    assert not loaded.training
    assert loaded.config == model.config
    np.testing.assert_array_equal(loaded.predict_proba(texts), probs)
    emb2, lam2 = loaded.embed(texts)
    np.testing.assert_array_equal(emb2, emb)
    np.testing.assert_array_equal(lam2, lam)
    model.save(run)   # overwriting a saved model is allowed
    np.testing.assert_array_equal(ALFIA.load(run).predict_proba(texts), probs)


@pytest.mark.parametrize("damage", ["no_folder", "no_config", "no_head", "no_adapter", "bad_adapter",
                                    "bad_fusion", "bad_json", "wrong_kind", "no_tokenizer"])
def test_damaged_model_folder_is_one_clear_error(tiny_bert_dir, tmp_path, damage):
    run = tmp_path / "run"
    _model(tiny_bert_dir).save(run)
    if damage == "no_folder":
        run = tmp_path / "elsewhere"
    elif damage == "no_config":
        (run / "config.json").unlink()
    elif damage == "no_head":
        (run / "head" / "model.safetensors").unlink()
    elif damage == "no_adapter":
        (run / "adapter" / "adapter_model.safetensors").unlink()
    elif damage == "bad_adapter":
        path = run / "adapter" / "adapter_model.safetensors"
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "bad_fusion":
        path = run / "fusion" / "model.safetensors"
        path.write_bytes(path.read_bytes()[:-10])
    elif damage == "bad_json":
        (run / "config.json").write_text('{"kind": "alfia.model", "config": {"backbone": 3')
    elif damage == "wrong_kind":
        (run / "config.json").write_text('{"kind": "alfia.head", "config": {}}')
    elif damage == "no_tokenizer":
        import shutil
        shutil.rmtree(run / "tokenizer")
    with pytest.raises(AlfiaError) as info:
        ALFIA.load(run)
    assert "\n" not in str(info.value)


def test_save_refuses_to_overwrite_other_folders(tiny_bert_dir, tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(AlfiaError, match="refusing to overwrite"):
        _model(tiny_bert_dir).save(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_one_codec_builds_nested_and_optional_configs():
    from alfia.codec import config_from_dict

    config = ALFIAConfig(fusion=FusionConfig(num_fusion_layers=2), lora=LoraSettings(r=4, alpha=8, layers=1))
    assert ALFIAConfig.from_dict(config.to_dict()) == config
    assert ALFIAConfig.from_dict({**config.to_dict(), "lora": None}).lora is None
    for bad, message in (({"lora": [1]}, r"ALFIAConfig.lora = \(1,\) has the wrong type"),
                         ({"fusion": None}, "ALFIAConfig.fusion = None has the wrong type"),
                         ({"head": {"dropout": "x"}}, r"\[head\]: HeadConfig.dropout = 'x' has the wrong type"),
                         ({"fusion": {"layers": 2}}, r"\[fusion\]: unknown FusionConfig field\(s\) layers")):
        with pytest.raises(AlfiaError, match=message):
            config_from_dict(ALFIAConfig, {**config.to_dict(), **bad}, "test")


def test_a_config_saved_before_the_families_builds_the_same_model(tiny_bert_dir, texts):
    """Saved models of before record attention "sdpa" and BERT's target list; the new defaults ("auto", the
    family's targets) build exactly the same model on a BERT backbone."""
    torch.manual_seed(0)
    old = ALFIA(ALFIAConfig(backbone=str(tiny_bert_dir), fusion=FusionConfig(num_fusion_layers=2), max_length=32,
                            lora=LoraSettings(r=4, alpha=8, target_modules=("query", "key", "value", "output.dense")),
                            attn_implementation="sdpa"))
    new = _model(tiny_bert_dir)
    assert new.config.attn_implementation == "auto" and new.config.lora == old.config.lora
    assert new.lora_modules() == old.lora_modules()
    _perturb(old)
    _perturb(new)
    np.testing.assert_array_equal(new.predict_proba(texts), old.predict_proba(texts))


def test_mean_pooling_is_a_fusion_kind_with_the_same_initial_weights(tiny_bert_dir, texts, tmp_path):
    """The ablation's mean-pool variant is configuration (``fusion.kind="mean"``): the plain attention-mask mean of
    the top layer reaches the head, and every other part starts from the weights the ALF model of the same seed
    has (building it draws the ALF module's random numbers), so the two differ in the pooling alone."""
    from alfia.model.fusion import MeanPooling, masked_mean

    def build(kind):
        torch.manual_seed(0)
        return ALFIA(ALFIAConfig(backbone=str(tiny_bert_dir), fusion=FusionConfig(num_fusion_layers=1, kind=kind),
                                 lora=LoraSettings(r=4, alpha=8, layers=1), max_length=32))

    alf, mean = build("alf"), build("mean")
    assert isinstance(mean.fusion, MeanPooling) and not list(mean.fusion.parameters())
    others = {n: p for n, p in alf.named_parameters() if not n.startswith("fusion.")}
    assert set(others) == {n for n, _ in mean.named_parameters()}
    for name, p in mean.named_parameters():
        assert torch.equal(p, others[name]), name
    ids, mask = _encode(mean, texts)
    mean.eval()
    with torch.no_grad():
        out = mean(ids, mask)
        top = mean.top_hidden_states(ids, mask)[-1]
        torch.testing.assert_close(out.embedding, masked_mean(top, mask.bool()))
        torch.testing.assert_close(out.logits, mean.head(masked_mean(top, mask.bool())))
    assert torch.equal(out.layer_weights, torch.ones(len(texts), 1))
    _perturb(mean)
    mean.save(tmp_path / "m")
    again = ALFIA.load(tmp_path / "m", device="cpu")
    assert again.config.fusion.kind == "mean"
    np.testing.assert_array_equal(again.predict_proba(texts), mean.predict_proba(texts))


def test_a_model_saved_before_the_fusion_kind_loads_as_alf(tiny_bert_dir, texts, tmp_path):
    model = _model(tiny_bert_dir)
    _perturb(model)
    model.save(tmp_path / "m")
    for name in ("config.json", "fusion/config.json"):   # as saved before the setting existed
        path = tmp_path / "m" / name
        data = json.loads(path.read_text())
        fusion = data["config"]["fusion"] if name == "config.json" else data["config"]
        del fusion["kind"]
        path.write_text(json.dumps(data))
    from alfia.model.serialization import write_digests

    write_digests(tmp_path / "m")
    loaded = ALFIA.load(tmp_path / "m", device="cpu")
    assert loaded.config.fusion.kind == "alf"
    np.testing.assert_array_equal(loaded.predict_proba(texts), model.predict_proba(texts))
