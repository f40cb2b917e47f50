"""GPU tests (issue 30, item 2): what only a CUDA device shows, run in one call by a session that has one
(`pytest -m gpu`; `benchmarks/gpu.sh` runs them too). Without CUDA every test here is skipped with its reason.

Each runs the project's own code on the tiny backbones of tests/conftest.py: the trainer (``train``, ``Trainer``),
``Run.load`` / ``predict_cohort`` and the frozen-layer cache, the way the CPU tests of tests/training/ do."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from alfia.inference import Run, predict_cohort
from alfia.training.trainer import Trainer, train
from tests.training.test_trainer import quick, toy_cohort

CUDA = torch.cuda.is_available()
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU (torch.cuda.is_available() is False): "
                                                  "run `pytest -m gpu` on a GPU machine")]
DEVICE = "cuda:0"


def require(condition: bool, reason: str) -> None:
    """Skip the test with ``reason`` unless ``condition`` (what a GPU must have beyond CUDA itself)."""
    if not condition:
        pytest.skip(reason)


def require_bf16() -> None:
    require(torch.cuda.get_device_capability(0) >= (8, 0),
            f"bf16 needs compute capability 8.0 or more; GPU 0 has {torch.cuda.get_device_capability(0)}")


def _history(run) -> list[dict]:
    return [json.loads(x) for x in (run / "history.jsonl").read_text().splitlines()]


def test_nccl_in_one_process(tmp_path, tiny_bert_dir):
    """NCCL initialises in one process (world size 1, a FileStore), its collectives run on the GPU, and the trainer
    trains inside that process group and tears it down."""
    import torch.distributed as torch_dist

    from alfia import distributed as dist

    require(torch_dist.is_available() and torch_dist.is_nccl_available(), "this torch build has no NCCL")
    assert dist.backend(DEVICE) == "nccl" and dist.backend("cpu") == "gloo"
    torch.cuda.set_device(0)
    store = torch_dist.FileStore(str(tmp_path / "store"), 1)
    torch_dist.init_process_group("nccl", store=store, rank=0, world_size=1)
    try:
        assert torch_dist.get_backend() == "nccl"
        t = torch.arange(3, dtype=torch.float32, device=DEVICE)
        torch_dist.all_reduce(t)
        assert t.tolist() == [0.0, 1.0, 2.0]
        box = [{"rank": 0}]
        torch_dist.broadcast_object_list(box, src=0)
        assert box == [{"rank": 0}]
        torch_dist.barrier()
        run = tmp_path / "run"
        train(toy_cohort(n=64), run, quick(epochs=1), backbone=str(tiny_bert_dir), progress=False, device=DEVICE)
        assert len(_history(run)) == 1 and math.isfinite(_history(run)[0]["train_loss"])
        assert not torch_dist.is_initialized()   # train() tears the group down
    finally:
        if torch_dist.is_initialized():
            torch_dist.destroy_process_group()


@pytest.mark.parametrize("settings", [{"precision": "bf16"}, {"precision": "bf16", "model.lora.layers": 1}],
                         ids=["lora-every-layer", "lora-top-cached"])
def test_bf16_autocast_trains_and_predicts(tmp_path, tiny_bert_dir, settings):
    require_bf16()
    cohort = toy_cohort(n=96)
    run = tmp_path / "run"
    metrics = train(cohort, run, quick(epochs=2, **settings), backbone=str(tiny_bert_dir), progress=False,
                    finish=True, n_boot=0, device=DEVICE)
    assert 0.0 <= metrics["test"]["auprc"]["value"] <= 1.0
    assert all(math.isfinite(h["train_loss"]) for h in _history(run))
    runtime = json.loads((run / "config.json").read_text())["runtime"]
    assert runtime["device"] == DEVICE and runtime["precision"] == "bf16"
    loaded = Run.load(run, device=DEVICE)   # the run's own precision
    assert loaded.model.precision.name == "bf16" and loaded.model.device == torch.device(DEVICE)
    p = loaded.predict_proba(cohort)
    assert p.shape == (96,) and np.isfinite(p).all() and ((0 < p) & (p < 1)).all()
    table, _ = predict_cohort(run, cohort, device=DEVICE)
    np.testing.assert_allclose(table["probability"].to_numpy(), p, atol=1e-6)
    saved = pd.read_parquet(run / "predictions.parquet")   # scored at the end of training (other batch shapes)
    np.testing.assert_allclose(saved["probability"].to_numpy(), p, atol=1e-2)


@pytest.mark.parametrize("weights", ["fp32", "fp16"])
def test_fp16_with_a_gradient_scaler_trains(tmp_path, tiny_bert_dir, weights):
    """fp16 autocast trains through a GradScaler (unscaled before clipping), with fp32 or fp16 backbone weights."""
    trainer = Trainer(toy_cohort(n=96), tmp_path / "run", quick(epochs=2, precision="fp16", **{"model.dtype": weights}),
                      backbone=str(tiny_bert_dir), progress=False, device=DEVICE)
    try:
        results = trainer.fit()
        assert isinstance(trainer.scaler, torch.amp.GradScaler) and trainer.scaler.is_enabled()
        assert math.isfinite(trainer.scaler.get_scale()) and trainer.scaler.get_scale() > 0
        assert [r.epoch for r in results] == [1, 2] and all(math.isfinite(r.train_loss) for r in results)
        lora_b = {n: p for n, p in trainer.trainable if "lora_B" in n}
        assert lora_b and all(p.dtype == torch.float32 and p.abs().sum() > 0 for p in lora_b.values())
    finally:
        trainer.close()
    assert Run.load(tmp_path / "run", device=DEVICE).model.precision.name == "fp16"


@pytest.mark.parametrize("cached", [False, True], ids=["token-ids", "frozen-layer-cache"])
def test_batches_are_pinned_by_dataloader_workers(tmp_path, tiny_bert_dir, cached):
    """On a GPU the trainer's batches come from worker processes in pinned memory (token ids, or the frozen-layer
    cache's states) and equal what the rows collate to; they reach the GPU without blocking."""
    from alfia.training.trainer import LOADER_WORKERS

    settings = {"model.lora.layers": 1} if cached else {}
    trainer = Trainer(toy_cohort(n=60), tmp_path / "run", quick(epochs=1, **settings), backbone=str(tiny_bert_dir),
                      progress=False, device=DEVICE)
    try:
        trainer._build()
        assert (trainer.train_cache is not None) == cached
        rows = [np.array([0, 1]), np.array([2, 3, 4]), np.array([5])]
        loader = trainer._loader(rows)
        assert loader.num_workers == LOADER_WORKERS > 0 and loader.pin_memory
        batches = list(loader)
        assert len(batches) == len(rows)
        collate = trainer.train_cache.padded if cached else trainer.train_tokens.collate
        for batch, r in zip(batches, rows, strict=True):
            assert all(t.is_pinned() for t in batch)
            for got, want in zip(batch, collate(r), strict=True):
                assert torch.equal(got, want)
        ids, mask, prefix = trainer._inputs(batches[1])
        assert mask.device == torch.device(DEVICE) and mask.shape[0] == 3
        assert (prefix is not None) == cached and (ids is None) == cached
    finally:
        trainer.close()


class _Interrupted(Exception):
    pass


def test_resume_restores_the_cuda_random_state_exactly(tmp_path, tiny_bert_dir, monkeypatch):
    """Interrupted after epoch 2 and resumed, epoch 3 draws the dropout masks of an uninterrupted run: the checkpoint
    restores the CUDA random state (the loss of epoch 3 is the same); without it the loss differs."""
    from alfia.training.checkpoint import random_states

    cohort = toy_cohort(n=96)
    config = quick(epochs=3, patience=3, precision="fp32")
    train(cohort, tmp_path / "full", config, backbone=str(tiny_bert_dir), progress=False, device=DEVICE)
    real = Trainer._train_epoch

    def until_two(self, epoch):
        if epoch == 3:
            raise _Interrupted
        return real(self, epoch)

    for name in ("resumed", "without-cuda-state"):
        monkeypatch.setattr(Trainer, "_train_epoch", until_two)
        with pytest.raises(_Interrupted):
            train(cohort, tmp_path / name, config, backbone=str(tiny_bert_dir), progress=False, device=DEVICE)
        monkeypatch.undo()
    # the checkpoint holds the GPU's state after epoch 2, and restoring puts it back
    trainer = Trainer(cohort, tmp_path / "resumed", config, backbone=str(tiny_bert_dir), progress=False, device=DEVICE)
    try:
        trainer._build()
        state, meta = trainer.checkpoint.read()
        assert meta["epoch"] == 2 and "rng.cuda.0" in state
        torch.cuda.manual_seed(12345)
        trainer.checkpoint.restore((state, meta), rank=0, device=torch.device(DEVICE))
        assert torch.equal(random_states(torch.device(DEVICE))["cuda"], state["rng.cuda.0"])
    finally:
        trainer.close()
    torch.cuda.manual_seed(12345)
    train(cohort, tmp_path / "resumed", config, backbone=str(tiny_bert_dir), progress=False, device=DEVICE,
          resume=True)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda *a, **k: None)   # the CUDA state not restored
    train(cohort, tmp_path / "without-cuda-state", config, backbone=str(tiny_bert_dir), progress=False,
          device=DEVICE, resume=True)
    monkeypatch.undo()
    full, resumed, without = (_history(tmp_path / n) for n in ("full", "resumed", "without-cuda-state"))
    assert [h["epoch"] for h in resumed] == [1, 2, 3]
    assert resumed[2]["train_loss"] == pytest.approx(full[2]["train_loss"], rel=1e-6, abs=1e-7)
    assert resumed[2]["val_auprc"] == pytest.approx(full[2]["val_auprc"], abs=1e-6)
    assert without[2]["train_loss"] != pytest.approx(full[2]["train_loss"], rel=1e-6, abs=1e-7)   # it can fail


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("n_f,lora_layers", [(3, None), (3, 1), (2, 2)], ids=["frozen", "lora-top-1", "lora-top-2"])
def test_cached_and_live_scores_are_one_computation_under_autocast(tiny_bert_dir, texts, precision, n_f,
                                                                   lora_layers):
    """The GPU form of the CPU test in tests/training/test_prefix_cache.py: under bf16/fp16 autocast the scores from
    the frozen-layer cache (validation) and the live ones (test, predict) agree on the same batches (before issue 30:
    ~2e-3 apart)."""
    from alfia.model.tokens import TokenizedTexts
    from alfia.training.prefix_cache import PrefixCache
    from tests.training.test_prefix_cache import _frozen, _model

    if precision == "bf16":
        require_bf16()
    model = _frozen(tiny_bert_dir, n_f) if lora_layers is None else _model(tiny_bert_dir, n_f, lora_layers)
    model.to_runtime(DEVICE, precision)
    tokens = TokenizedTexts.from_texts(model.tokenizer, texts, model.max_length)
    n = len(texts)
    for batch in (n, 1):
        cache = PrefixCache(model, tokens, batch_size=batch, progress=False)
        try:
            assert cache.dtype == dict(bf16=torch.bfloat16, fp16=torch.float16)[precision]
            cached, live = cache.predict_proba(model, batch_size=batch), model.predict_proba(texts, batch_size=batch)
        finally:
            cache.close()
        assert np.abs(cached - live).max() <= 1e-6, (batch, np.abs(cached - live).max())
    model.to_runtime(DEVICE, "fp32")
    cache = PrefixCache(model, tokens, batch_size=n, progress=False)
    np.testing.assert_allclose(cache.predict_proba(model, n), model.predict_proba(texts, batch_size=n), atol=1e-5)
    cache.close()


CONTEXT_SCRIPT = """
import json, sys
import torch
from tests.training.test_trainer import quick, toy_cohort
from alfia.inference import Run
from alfia.training.trainer import train

device, out, backbone = sys.argv[1:4]
cohort = toy_cohort(n=64)
train(cohort, out, quick(epochs=1), backbone=backbone, progress=False, finish=True, n_boot=0, device=device)
Run.load(out, device=device).predict_proba(cohort)
torch.cuda.synchronize(device)
print(json.dumps([bool(torch._C._cuda_hasPrimaryContext(i)) for i in range(torch.cuda.device_count())]))
"""


@pytest.mark.parametrize("last", [False, True], ids=["cuda:0", "last-gpu"])
def test_one_device_opens_no_context_on_another_gpu(tmp_path, tiny_bert_dir, last):
    """A process that trains and predicts on ``--device cuda:N`` (train(device=...), Run.load(device=...)) holds a
    CUDA context on GPU N alone (checked in a fresh process: this one has contexts of its own)."""
    count = torch.cuda.device_count()
    require(count > 1, f"needs more than one GPU to see a context on another; this machine has {count}")
    require(hasattr(torch._C, "_cuda_hasPrimaryContext"), "this torch build cannot tell which GPUs hold a context")
    index = count - 1 if last else 0
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    done = subprocess.run([sys.executable, "-c", CONTEXT_SCRIPT, f"cuda:{index}", str(tmp_path / "run"),
                           str(tiny_bert_dir)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    contexts = json.loads(done.stdout.strip().splitlines()[-1])
    assert contexts == [i == index for i in range(len(contexts))]
