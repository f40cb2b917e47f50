"""Precision: backbones saved in fp16 or bf16 (common on the hub) train and predict on the CPU, in fp32 by default or
in the dtype asked for, and the run says which precision it used."""

import json
import shutil

import numpy as np
import pytest
import torch

from alfia.errors import AlfiaError
from alfia.inference import Run
from alfia.model.runtime import Precision, resolve_device, resolve_precision
from alfia.training.trainer import train
from tests.training.test_trainer import quick, toy_cohort


@pytest.fixture(scope="module", params=[torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
def half_backbone(request, tiny_bert_dir, tmp_path_factory):
    """The tiny BERT saved again with its weights in half precision."""
    from transformers import AutoModel

    folder = tmp_path_factory.mktemp(f"tiny-bert-{request.param}")
    AutoModel.from_pretrained(tiny_bert_dir).to(request.param).save_pretrained(folder)
    for f in tiny_bert_dir.iterdir():
        if f.name not in ("config.json", "model.safetensors"):
            shutil.copy(f, folder / f.name)
    return folder, request.param


@pytest.mark.parametrize("settings", [{}, {"model.dtype": "bf16"}, {"precision": "bf16"},
                                      {"model.dtype": "bf16", "precision": "bf16"}],
                         ids=["fp32", "bf16-weights", "bf16-autocast", "bf16-both"])
def test_a_half_precision_checkpoint_trains_and_predicts_on_the_cpu(tmp_path, half_backbone, settings):
    folder, saved_dtype = half_backbone
    cohort = toy_cohort(n=64)
    run = tmp_path / "run"
    metrics = train(cohort, run, quick(epochs=1, **settings), backbone=str(folder), progress=False, finish=True,
                    n_boot=0)
    assert 0.0 <= metrics["test"]["auprc"]["value"] <= 1.0
    loaded = Run.load(run)
    weights = settings.get("model.dtype", "fp32")
    backbone_dtypes = {p.dtype for n, p in loaded.model.backbone.named_parameters() if "lora_" not in n}
    assert backbone_dtypes == {dict(fp32=torch.float32, bf16=torch.bfloat16)[weights]}
    assert {p.dtype for p in loaded.model.head.parameters()} == {torch.float32}   # fusion/head stay fp32
    p = loaded.predict_proba(cohort)
    assert p.shape == (64,) and np.isfinite(p).all() and ((0 < p) & (p < 1)).all()
    # the precision chosen is in the run's config and manifest
    runtime = json.loads((run / "config.json").read_text())["runtime"]
    assert runtime == json.loads((run / "manifest.json").read_text())["runtime"]
    assert runtime["precision"] == settings.get("precision", "fp32") and runtime["weights"] == weights
    assert runtime["device"] == "cpu"
    assert saved_dtype in (torch.float16, torch.bfloat16)


def test_the_cpu_default_is_fp32_and_gpu_only_modes_are_refused_on_it():
    cpu = resolve_device("auto") if not torch.cuda.is_available() else torch.device("cpu")
    assert resolve_precision("auto", cpu) == Precision("fp32", "cpu")
    assert resolve_precision("bf16", cpu).autocast_dtype == torch.bfloat16
    for name in ("fp16", "tf32"):
        with pytest.raises(AlfiaError, match="CUDA"):
            resolve_precision(name, cpu)
    with pytest.raises(AlfiaError, match="unknown precision"):
        resolve_precision("fp8", cpu)
    with pytest.raises(AlfiaError, match="unknown device"):
        resolve_device("tpu:0")
    if not torch.cuda.is_available():
        with pytest.raises(AlfiaError, match="CUDA is not available"):
            resolve_device("cuda:0")


@pytest.mark.parametrize("capability,auto,scaler", [((9, 0), "bf16", False), ((8, 0), "bf16", False),
                                                     ((7, 5), "fp16", True), ((7, 0), "fp16", True)])
def test_the_gpu_policy_never_picks_emulated_bf16(monkeypatch, capability, auto, scaler):
    """auto on CUDA: bf16 where the GPU computes it natively (compute capability >= 8.0), else fp16 with a gradient
    scaler; an explicit bf16 on an older GPU is refused rather than emulated. TF32 is on unless fp32 is asked."""
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    gpu = torch.device("cuda", 0)
    policy = resolve_precision("auto", gpu)
    assert policy.name == auto and policy.uses_grad_scaler is scaler and policy.tf32
    assert resolve_precision("fp32", gpu).tf32 is False and resolve_precision("tf32", gpu).autocast_dtype is None
    if capability < (8, 0):
        with pytest.raises(AlfiaError, match="no native bf16"):
            resolve_precision("bf16", gpu)
    else:
        assert resolve_precision("bf16", gpu).autocast_dtype == torch.bfloat16
