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


# -- the budget: the job's memory, not only the host's (issue 30, item 1, row "on SLURM/Kubernetes the job is
# OOM-killed instead of spilling the cache to disk") ------------------------------------------------------------
GB = 2**30


def _write(folder, files: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)


def _host(tmp_path, available: int, cgroup: str):
    """A fake /proc: MemAvailable ``available`` bytes, this process in ``cgroup`` (the text of /proc/self/cgroup)."""
    proc = tmp_path / "proc"
    _write(proc, {"meminfo": f"MemTotal: {256 * GB // 1024} kB\nMemAvailable: {available // 1024} kB\n"})
    _write(proc / "self", {"cgroup": cgroup})
    return proc


def _v2(folder, limit, current, inactive) -> None:
    _write(folder, {"memory.max": f"{limit}\n", "memory.current": f"{current}\n",
                    "memory.stat": f"anon {current}\nfile {inactive}\ninactive_file {inactive}\nactive_file 0\n"})


def test_the_budget_reads_the_tightest_cgroup_v2_limit_above_the_process(tmp_path):
    """cgroup v2: memory.max - memory.current + inactive_file, the least of the process's cgroup and its parents
    ("max": no limit); the host's MemAvailable when it is less."""
    from alfia.training.prefix_cache import available_memory, cgroup_available

    proc = _host(tmp_path, 100 * GB, "0::/slurm/job_7/step_0\n")
    root = tmp_path / "cgroup"
    _write(root, {"cgroup.controllers": "cpu memory\n"})   # the root cgroup has no memory.max
    _v2(root / "slurm", "max", 40 * GB, 0)
    _v2(root / "slurm" / "job_7", 16 * GB, 12 * GB, GB)     # the job's limit: 16 - 12 + 1 = 5 GB left
    _v2(root / "slurm" / "job_7" / "step_0", "max", 12 * GB, GB)
    assert cgroup_available(proc, root) == 5 * GB
    assert available_memory(proc, root) == 5 * GB
    _v2(root / "slurm" / "job_7" / "step_0", 13 * GB, 12 * GB, GB)   # a tighter step: 2 GB
    assert available_memory(proc, root) == 2 * GB
    tight = _host(tmp_path / "tight", GB, "0::/slurm/job_7/step_0\n")   # the host has less than the job may take
    assert available_memory(tight, root) == GB
    for cgroup in ("slurm", "slurm/job_7", "slurm/job_7/step_0"):   # no limit anywhere: the host's
        (root / cgroup / "memory.max").write_text("max\n")
    assert cgroup_available(proc, root) is None and available_memory(proc, root) == 100 * GB


def test_the_budget_reads_cgroup_v1_and_a_container_that_sees_only_its_own_cgroup(tmp_path):
    """cgroup v1: memory.limit_in_bytes - memory.usage_in_bytes + total_inactive_file (a page-rounded LONG_MAX: no
    limit); inside a container whose cgroup mount is its own cgroup, the mount's files count."""
    from alfia.training.prefix_cache import available_memory

    no_limit = "9223372036854771712\n"
    proc = _host(tmp_path, 100 * GB, "5:cpu,cpuacct:/\n4:memory:/kubepods/pod1/abc\n0::/\n")
    root = tmp_path / "cgroup"
    memory = root / "memory"
    _write(memory, {"memory.limit_in_bytes": no_limit, "memory.usage_in_bytes": f"{50 * GB}\n"})
    _write(memory / "kubepods", {"memory.limit_in_bytes": no_limit, "memory.usage_in_bytes": f"{40 * GB}\n"})
    _write(memory / "kubepods" / "pod1", {"memory.limit_in_bytes": f"{8 * GB}\n",
                                          "memory.usage_in_bytes": f"{7 * GB}\n",
                                          "memory.stat": f"inactive_file 0\ntotal_inactive_file {GB // 2}\n"})
    _write(memory / "kubepods" / "pod1" / "abc", {"memory.limit_in_bytes": no_limit,
                                                  "memory.usage_in_bytes": f"{7 * GB}\n"})
    assert available_memory(proc, root) == 3 * GB // 2
    container = tmp_path / "container"   # /proc names the host's path; the mount is the pod's own cgroup
    _write(container / "memory", {"memory.limit_in_bytes": f"{4 * GB}\n", "memory.usage_in_bytes": f"{3 * GB}\n",
                                  "memory.stat": "total_inactive_file 0\n"})
    assert available_memory(proc, container) == GB


def test_a_cache_over_what_the_job_may_take_spills_to_a_file(tiny_bert_dir, texts, tmp_path, monkeypatch):
    """With no budget given, the default (a tenth of the available memory) follows the job's cgroup: a job left
    1 KB of room puts its cache in a file; the host's memory alone would have kept it in memory."""
    from alfia.training import prefix_cache

    proc = _host(tmp_path, 100 * GB, "0::/job\n")
    _write(tmp_path / "cgroup", {"cgroup.controllers": "memory\n"})
    _v2(tmp_path / "cgroup" / "job", 100 * GB, 100 * GB - 10_000, 0)   # 10,000 bytes left
    monkeypatch.setattr(prefix_cache, "PROC", proc)
    monkeypatch.setattr(prefix_cache, "CGROUP_ROOT", tmp_path / "cgroup")
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert prefix_cache.default_budget() == 1_000
    model = _model(tiny_bert_dir, 3, 1)
    tokens = TokenizedTexts.from_texts(model.tokenizer, texts, model.max_length)
    cache = PrefixCache(model, tokens, batch_size=4, progress=False, folder=tmp_path / "scratch")
    assert cache.data is None and cache.file is not None
    cache.close()


def test_the_cache_of_a_gpu_run_is_not_allocated_pinned(monkeypatch):
    """Issue 30, item 1, row "a frozen-layer cache of 2^34 + 1 bytes takes 2^35 bytes of pinned memory": the cache
    of a (faked) GPU run is allocated in ordinary memory; only the batches read from it are pinned."""
    from types import SimpleNamespace

    from alfia.model.runtime import Precision

    pins = []
    real_empty = torch.empty

    def empty(*args, pin_memory=False, **kwargs):
        pins.append(pin_memory)
        return real_empty(*args, **kwargs)   # no CUDA here to pin with

    monkeypatch.setattr(torch, "empty", empty)
    monkeypatch.setattr(PrefixCache, "_build", lambda self, *args: None)
    gpu_model = SimpleNamespace(prefix_indices=lambda: [0, 1], config=SimpleNamespace(fusion=SimpleNamespace(
        hidden_size=8)), precision=Precision("bf16", "cuda"), backbone_dtype=torch.float32,
        device=torch.device("cuda", 0))
    cache = PrefixCache(gpu_model, _Tokens(np.array([5, 3, 7])), progress=False, budget=10**9)
    assert cache.pin and cache.data is not None and cache.data.shape == (15, 16)
    assert cache.data.dtype == torch.bfloat16 and not cache.data.is_pinned()
    assert pins and not any(pins)


class _Tokens:
    """Token lengths alone: all the cache's allocation reads."""

    def __init__(self, lengths):
        self.lengths = lengths

    def __len__(self):
        return len(self.lengths)


@pytest.mark.parametrize("n_f,lora_layers", [(3, None), (3, 1), (2, 2)], ids=["frozen", "lora-top-1", "lora-top-2"])
def test_under_bf16_autocast_cached_and_live_scores_are_one_computation(tiny_bert_dir, texts, n_f, lora_layers):
    """Issue 30, item 1, row "under bf16/fp16 autocast the validation scores (from the cache) and the test scores
    (live) come from two different computations": the frozen layers' states cross into the layers above in bf16 on
    both paths, so the same batches give the same probabilities (before: up to ~2e-3 apart; fp32: 1e-7). Batches of
    other shapes are another matter: bf16 kernels round by shape, live or cached alike."""
    model = _model(tiny_bert_dir, n_f, 4 if lora_layers is None else lora_layers)
    if lora_layers is None:   # a frozen backbone: every layer cached
        model = _frozen(tiny_bert_dir, n_f)
    model.to_runtime("cpu", "bf16")
    tokens = TokenizedTexts.from_texts(model.tokenizer, texts, model.max_length)
    n = len(texts)
    for batch in (n, 1):   # one batch of mixed lengths (padding inside it), and one text at a time
        cache = PrefixCache(model, tokens, batch_size=batch, progress=False)
        assert cache.dtype == torch.bfloat16
        cached, live = cache.predict_proba(model, batch_size=batch), model.predict_proba(texts, batch_size=batch)
        assert np.abs(cached - live).max() == 0.0, batch
    # the rounding happens only under autocast: an fp32 model is what it always was
    model.to_runtime("cpu", "fp32")
    np.testing.assert_allclose(PrefixCache(model, tokens, batch_size=n, progress=False).predict_proba(model, n),
                               model.predict_proba(texts, batch_size=n), rtol=0, atol=1e-6)


def _frozen(backbone_dir, n_f: int) -> ALFIA:
    """A model with a frozen backbone (no LoRA), its fusion and head moved off their starting weights."""
    torch.manual_seed(0)
    model = ALFIA(ALFIAConfig(backbone=str(backbone_dir), fusion=FusionConfig(num_fusion_layers=n_f), lora=None,
                              max_length=32))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.2 * torch.randn(p.shape, generator=g))
    return model


def test_a_cache_dir_that_cannot_be_written_is_one_line(tiny_bert_dir, texts, tmp_path):
    """--cache-dir naming a file (not a folder) is refused with one line, not a traceback."""
    from alfia.errors import AlfiaError

    model = _model(tiny_bert_dir, 3, 1)
    tokens = TokenizedTexts.from_texts(model.tokenizer, texts, model.max_length)
    (tmp_path / "a-file").write_text("")
    with pytest.raises(AlfiaError, match=r"^cannot write the frozen-layer cache's file .* in .*a-file.*--cache-dir"):
        PrefixCache(model, tokens, batch_size=4, progress=False, budget=0, folder=tmp_path / "a-file")
