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
    # issue 30, item 1, row "a run trained in fp32 is scored in bf16 by alfia predict": loaded without a precision,
    # the run computes in its own (a bf16 run on this CPU: bf16, which a CPU computes)
    assert loaded.model.precision.name == runtime["precision"]
    assert Run.load(run, precision="fp32").model.precision.name == "fp32"   # one asked for wins


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


@pytest.mark.parametrize("precision", ["fp32", "tf32"])
def test_fp16_weights_without_a_gradient_scaler_are_refused(tmp_path, capsys, precision):
    """Issue 30, item 1, row "--dtype fp16 --precision fp32 trains the whole backbone in fp16 with no GradScaler":
    one line naming the two ways out, by setting path from Python and by flag on the command line."""
    from alfia.cli import main
    from alfia.errors import SettingError
    from alfia.training.config import make_config

    with pytest.raises(SettingError, match=rf"^precision {precision} with model.dtype fp16 .*underflow.*; use "
                                           r"precision fp16, or model.dtype bf16$"):
        make_config("quick", precision=precision, **{"model.dtype": "fp16"})
    assert make_config("quick", precision="fp16", **{"model.dtype": "fp16"}).precision == "fp16"   # the scaler
    assert make_config("quick", precision=precision, **{"model.dtype": "bf16"}).model.dtype == "bf16"
    assert main(["train", "p12-a", "--out", str(tmp_path / "run"), "--dtype", "fp16", "--precision", precision]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith(f"error: --precision {precision} with --dtype fp16 ")
    assert err.endswith("use --precision fp16, or --dtype bf16")
    assert not (tmp_path / "run").exists()


def test_fp16_weights_are_refused_where_auto_means_fp32():
    """The same row: ``auto`` is fp32 on a CPU, so fp16 weights would train there without a scaler too."""
    from alfia.training.trainer import Trainer

    with pytest.raises(AlfiaError, match=r"--dtype fp16 .*without a gradient scaler under precision fp32 \(auto on "
                                         r"cpu\).*--dtype bf16"):
        Trainer(toy_cohort(n=64), "unused", quick(**{"model.dtype": "fp16"}), device="cpu")


def test_a_run_is_scored_in_its_own_precision_where_the_device_computes_it(monkeypatch):
    """Issue 30, item 1, row "a run trained in fp32 (or on a CPU) is scored in bf16 by alfia predict on a GPU": the
    default precision of scoring is the run's own; where the device cannot compute it, auto's choice there."""
    from alfia.model.runtime import run_precision

    cpu = torch.device("cpu")
    assert [run_precision(p, cpu) for p in ("fp32", "bf16", "fp16", "tf32", "auto", None)] == \
        ["fp32", "bf16", "fp32", "fp32", "fp32", "fp32"]
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    gpu = torch.device("cuda", 0)
    assert [run_precision(p, gpu) for p in ("fp32", "tf32", "bf16", "fp16", None)] == \
        ["fp32", "tf32", "bf16", "fp16", "fp32"]
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 0))   # a V100: no native bf16
    assert run_precision("bf16", gpu) == "fp16" and run_precision("fp32", gpu) == "fp32"


def test_every_loader_of_a_run_defaults_to_the_runs_precision(tmp_path, monkeypatch):
    """The same row, on a (faked) H100: an fp32 run loaded by Run.load, ALFIAPredictor.load, the risk service and
    `alfia predict` asks for fp32, not auto's bf16."""
    from alfia import inference
    from alfia.api import ALFIAPredictor
    from alfia.cli import build_parser
    from alfia.serving.service import RiskService

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    asked = []

    class Loaded(Exception):
        pass

    def load(folder, device="auto", precision="auto", **kwargs):
        asked.append((str(device), precision))
        raise Loaded   # no GPU to put the model on: what was asked is the point

    monkeypatch.setattr(inference.ALFIA, "load", load)
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"train": {"precision": "auto"},
                                                 "runtime": {"device": "cpu", "precision": "fp32"}}))
    for loader in (lambda: inference.Run.load(run, "cuda"), lambda: ALFIAPredictor.load(run, device="cuda"),
                   lambda: RiskService.load(run, device="cuda"), lambda: inference.Run.load(run, "cuda", "bf16")):
        with pytest.raises(Loaded):
            loader()
    assert asked == [("cuda:0", "fp32")] * 3 + [("cuda", "bf16")]
    for command in (["predict", "r", "c", "--out", "o.parquet"], ["embed", "r", "c", "--out", "o.parquet"],
                    ["serve", "r"], ["report", "r", "--out", "o"]):
        assert build_parser().parse_args(command).precision is None, command
