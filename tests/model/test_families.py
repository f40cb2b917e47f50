"""Every supported encoder family, on a tiny random model of each built offline (tests/conftest.py): ALFIA's layer
runner gives HF's own hidden states, the frozen-layer cache is the same computation, LoRA lands on every layer's
attention projections, and a model trains, saves, loads, predicts (fp32 and int8) and explains its scores."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import torch

from alfia.errors import AlfiaError, SettingError
from alfia.model import ALFIA, ALFIAConfig, FusionConfig, LoraSettings
from alfia.model.backbone import load_backbone
from tests.conftest import FAMILY_TYPES, TEXTS
from tests.model.test_alfia import _perturb
from tests.training.test_trainer import quick, toy_cohort

ALL_TYPES = ("bert", "roberta", *FAMILY_TYPES)
NO_SDPA = {"megatron-bert", "deberta-v2", "mpnet"}            # transformers has no SDPA attention for these
NO_CHECKPOINTING = {"mpnet", "albert"}                       # nor gradient checkpointing for these


@pytest.fixture(params=ALL_TYPES)
def family_dir(request, tiny_family_dirs):
    return request.param, tiny_family_dirs[request.param]


def _model(folder, *, n_f: int = 2, layers: int | None = None, lora: bool = True, targets=None,
           attn: str = "auto") -> ALFIA:
    torch.manual_seed(0)
    settings = LoraSettings(r=4, alpha=8, dropout=0.0, layers=layers, target_modules=targets) if lora else None
    return ALFIA(ALFIAConfig(backbone=str(folder), fusion=FusionConfig(num_fusion_layers=n_f), lora=settings,
                             max_length=32, attn_implementation=attn))


def _encode(model: ALFIA):
    enc = model.tokenize(TEXTS)
    return enc["input_ids"], enc["attention_mask"]


def _no_dropout(model: ALFIA) -> None:
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        if isinstance(module, torch.nn.MultiheadAttention):
            module.dropout = 0.0


def test_hidden_states_are_hf_own_and_only_the_fused_ones_are_kept(family_dir):
    model_type, folder = family_dir
    model = _model(folder)
    _perturb(model)   # LoRA B moved away from zero: the adapters take part
    model.eval()
    expected = "eager" if model_type in NO_SDPA else "sdpa"
    assert model.base_model().config._attn_implementation == expected
    ids, mask = _encode(model)
    num_layers = model.num_layers
    with torch.no_grad():
        hf = model.backbone(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
        ours = model.hidden_states(ids, mask, set(range(num_layers + 1)))
    assert len(hf) == num_layers + 1 == len(ours)
    real = mask.bool()   # padded positions are masked everywhere downstream
    for index in range(num_layers + 1):
        torch.testing.assert_close(ours[index][real], hf[index][real], rtol=1e-5, atol=1e-5, msg=str(index))

    kept = []
    run = model.family.hidden_states

    def spy(*args):
        kept.append(run(*args))
        return kept[-1]

    model.family = type(model.family)()   # a private instance: the registry's entry stays unpatched
    model.family.hidden_states = spy
    with torch.no_grad():
        logits = model(ids, mask).logits
        from_hf = model.from_hidden_states(hf[-2:], mask).logits
    assert [sorted(states) for states in kept] == [[num_layers - 1, num_layers]]
    torch.testing.assert_close(logits, from_hf, rtol=1e-5, atol=1e-5)


def test_lora_lands_on_every_layers_attention_projections(family_dir):
    model_type, folder = family_dir
    model = _model(folder)
    names = set(model.lora_modules())
    base = model.base_model()
    module_names = {id(m): n for n, m in base.named_modules()}
    for layer in model._layers():
        for path in model.family.projections.values():
            assert f"{module_names[id(layer)]}.{path}" in names, (model_type, path)
    assert model.config.lora.target_modules == model.family.lora_targets   # saved as resolved
    if model.family.shares_layers:
        with pytest.raises(SettingError, match="share one set of weights") as info:
            _model(folder, layers=1)
        assert "\n" not in str(info.value)
        return
    top = _model(folder, layers=1)   # peft finds each family's layer index (ModernBERT: "layers.<i>")
    last = next(n for n, m in top.base_model().named_modules() if m is top._layers()[-1])
    assert top.lora_modules() and all(n.startswith(last + ".") for n in top.lora_modules())
    assert top.num_frozen_layers == top.num_layers - 1


def _loss_and_grads(model: ALFIA, logits_fn, y: torch.Tensor):
    model.zero_grad(set_to_none=True)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits_fn().float(), y)
    loss.backward()
    return float(loss.detach()), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_the_frozen_layer_cache_is_the_full_path(family_dir):
    from alfia.model.tokens import TokenizedTexts
    from alfia.training.prefix_cache import PrefixCache

    model_type, folder = family_dir
    shared = _model(folder).family.shares_layers
    # LoRA on the top two layers, the bottom ones cached (ALBERT, whose layers share their weights: no LoRA)
    model = _model(folder, n_f=3, layers=None if shared else 2, lora=not shared)
    _perturb(model)
    _no_dropout(model)
    model.train()
    tokens = TokenizedTexts.from_texts(model.tokenizer, TEXTS, model.max_length)
    cache = PrefixCache(model, tokens, batch_size=2, progress=False)
    rows = np.array([4, 0, 2, 1])
    y = torch.tensor([1.0, 0.0, 1.0, 0.0])
    ids, mask = tokens.collate(rows)
    prefix, cmask = cache.collate(rows, model.device)
    loss_live, grads_live = _loss_and_grads(model, lambda: model(ids, mask).logits, y)
    loss_cached, grads_cached = _loss_and_grads(model, lambda: model(None, cmask, prefix=prefix).logits, y)
    assert loss_cached == pytest.approx(loss_live, rel=1e-5, abs=1e-6)
    assert set(grads_live) == set(grads_cached) and any("fusion" in n for n in grads_live)
    assert shared or any("lora_B" in n for n in grads_live)
    for name, grad in grads_live.items():
        torch.testing.assert_close(grads_cached[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_gradient_checkpointing_runs_through_the_layer_runner(family_dir):
    model_type, folder = family_dir
    model = _model(folder)
    _perturb(model)
    _no_dropout(model)
    model.train()
    base = model.base_model()
    if model_type in NO_CHECKPOINTING:
        assert not base.supports_gradient_checkpointing
        return
    ids, mask = _encode(model)
    y = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0])
    calls = []
    # a module inside the layer: the layer's forward (not its hooks) is what a checkpoint recomputes
    inner = model._layers()[0].get_submodule(next(iter(model.family.projections.values())))
    handle = inner.register_forward_hook(lambda *args: calls.append(1))
    try:
        loss, grads = _loss_and_grads(model, lambda: model(ids, mask).logits, y)
        plain_calls = len(calls)
        base.activation_checkpointing_enable()
        calls.clear()
        loss_ckpt, grads_ckpt = _loss_and_grads(model, lambda: model(ids, mask).logits, y)
    finally:
        handle.remove()
    assert len(calls) == 2 * plain_calls   # recomputed in the backward pass: checkpointing is on
    assert loss_ckpt == pytest.approx(loss, rel=1e-6)
    assert set(grads_ckpt) == set(grads) and any("lora_A" in n for n in grads)
    for name, grad in grads.items():
        torch.testing.assert_close(grads_ckpt[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_trains_saves_loads_predicts_and_explains(family_dir, tmp_path):
    """One epoch with LoRA on every layer, through the trainer; the saved run predicts what it saved, the int8
    path and the service's explanation work, and the benchmark counts its FLOPs."""
    from alfia.bench.measure import flops_per_sample
    from alfia.inference import Run
    from alfia.serving.scoring import Scorer
    from alfia.training.trainer import train

    model_type, folder = family_dir
    cohort = toy_cohort(n=60)
    run = tmp_path / "run"
    train(cohort, run, quick(epochs=1, **{"model.lora": {"r": 4, "alpha": 8, "layers": None}}),
          backbone=str(folder), progress=False, finish=True, n_boot=0)
    loaded = Run.load(run)
    model = loaded.model
    assert model.config.lora.layers is None and len(model.lora_modules()) >= len(model.family.projections)
    saved = pd.read_parquet(run / "predictions.parquet")
    texts = cohort.df["text"].tolist()
    raw = model.predict_proba(texts)
    assert np.isfinite(raw).all() and ((raw > 0) & (raw < 1)).all()
    shown = loaded.calibrator.transform(raw)
    order = saved.set_index("stay_id").loc[cohort.df["stay_id"]]
    np.testing.assert_allclose(order["probability"].to_numpy(), shown, rtol=0, atol=1e-6)
    int8 = model.predict_proba(texts[:8], quantize=True)
    assert np.abs(int8 - raw[:8]).max() < 0.1
    scored = Scorer(model, calibrate=loaded.calibrator.transform).score(texts[:3])
    for text, result, p in zip(texts[:3], scored, shown[:3], strict=True):
        assert result.probability == pytest.approx(p, abs=2e-4)
        assert [w for w, _ in result.words] == text.split()
        assert 0 < sum(b for _, b in result.words) <= 1 + 1e-3
        assert len(result.layer_weights) == model.config.fusion.num_fusion_layers
    assert flops_per_sample(model, texts[:2]) > 0


def error_lines(capsys) -> list[str]:
    """The command's own lines on stderr (transformers draws its loading bars there too); exactly one."""
    err = capsys.readouterr().err
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines


def test_an_unknown_family_is_refused(tmp_path, tiny_bert_dir, monkeypatch, capsys):
    from transformers import AutoTokenizer, GPT2Config, GPT2Model

    from alfia.cli import main

    GPT2Model(GPT2Config(n_embd=32, n_layer=2, n_head=4, vocab_size=50, n_positions=64)).save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(tiny_bert_dir).save_pretrained(tmp_path)
    with pytest.raises(AlfiaError, match="model type 'gpt2' is not a supported encoder family") as info:
        load_backbone(tmp_path)
    assert "\n" not in str(info.value) and "mpnet" in str(info.value)
    monkeypatch.setattr("alfia.text.inputs.load_input", lambda *a, **k: toy_cohort(n=60))
    assert main(["train", "toy", "--out", str(tmp_path / "run"), "--backbone", str(tmp_path)]) == 1
    assert error_lines(capsys)[0].startswith("error: backbone model type 'gpt2' is not a supported")


def test_the_train_command_refuses_lora_targets_that_miss_a_projection(tiny_family_dirs, tmp_path, monkeypatch,
                                                                       capsys):
    from alfia.cli import main

    monkeypatch.setattr("alfia.text.inputs.load_input", lambda *a, **k: toy_cohort(n=60))
    args = ["train", "toy", "--out", str(tmp_path / "run"), "--backbone", str(tiny_family_dirs["distilbert"])]
    assert main([*args, "--lora-targets", "q_lin,v_lin"]) == 2
    assert error_lines(capsys)[0].startswith("error: --lora-targets q_lin,v_lin puts LoRA on query, value of layer "
                                             "0's attention projections but not on key, attention output")
    assert main([*args, "--lora-targets", "q_lin,v_lin", "--no-lora"]) == 2
    assert "--no-lora with --lora-targets" in capsys.readouterr().err


@pytest.mark.parametrize("model_type,targets,message", [
    ("bert", ("query", "value"), "puts LoRA on query, value of layer 0's attention projections but not on key, "
                                 "attention output"),
    ("modernbert", ("Wqkv",), "not on attention output"),
    ("distilbert", ("query", "key", "value", "output.dense"), "matches no module of this DistilBERT backbone"),
    ("mpnet", ("q", "k", "v"), "not on attention output"),
])
def test_lora_targets_that_miss_a_projection_are_refused(tiny_family_dirs, model_type, targets, message):
    with pytest.raises(SettingError, match=message) as info:
        _model(tiny_family_dirs[model_type], targets=targets)
    assert info.value.field == "model.lora.target_modules" and "\n" not in str(info.value)
    assert _model(tiny_family_dirs[model_type], targets=("all-linear",)).lora_modules()


def test_attention_falls_back_to_eager_where_a_family_has_no_sdpa(tiny_family_dirs, caplog):
    with caplog.at_level(logging.INFO, logger="alfia"):
        model = _model(tiny_family_dirs["mpnet"])
    assert model.base_model().config._attn_implementation == "eager"
    assert "MPNet has no SDPA attention in transformers: using eager attention" in caplog.text
    with pytest.raises(AlfiaError, match="MPNet has no SDPA attention") as info:
        _model(tiny_family_dirs["mpnet"], attn="sdpa")
    assert "\n" not in str(info.value)
    assert _model(tiny_family_dirs["bert"], attn="eager").base_model().config._attn_implementation == "eager"


def test_a_family_variant_alfia_cannot_run_is_refused(tiny_family_dirs):
    """ALBERT with several layers per group would make HF report a state per inner layer: refused, not misread."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    folder = tiny_family_dirs["albert"]
    config = AutoConfig.from_pretrained(folder)
    config.inner_group_num = 2
    with pytest.raises(AlfiaError, match="ALBERT with inner_group_num 2 is not supported") as info:
        ALFIA(ALFIAConfig(backbone=str(folder), fusion=FusionConfig(num_fusion_layers=2), lora=None),
              backbone=AutoModel.from_config(config), tokenizer=AutoTokenizer.from_pretrained(folder))
    assert "\n" not in str(info.value)
