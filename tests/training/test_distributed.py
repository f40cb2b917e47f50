"""Data-parallel training with 2 gloo processes on the CPU: it never hangs (uneven sizes, early stopping, a SIGKILL
and resume) and gives what one process gives on the same global batches, up to float noise."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from alfia.training.batching import bucketed_batches, epoch_plan

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(),
                                reason="this torch build has no torch.distributed")

# argv: out backbone train_rows mode variant [resume]; mode "ddp" (under torchrun) or "merged" (one process whose
# every step is the union of the two ranks' rows of that step: the same global batches); variant "all" (LoRA on every
# layer) or "cached" (LoRA on the top layer over the frozen-layer cache, each rank caching its own rows, and the
# pooled readout, whose starting fit reads every rank's rows)
SCRIPT = """
import sys
import numpy as np
import torch
torch.set_num_threads(1)
from tests.training.test_distributed import cohort_with_train_rows
from tests.training.test_trainer import quick
from alfia.training import batching, trainer

out, backbone, rows, mode, variant = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
if mode == "merged":
    def merged(lengths, batch_size, world, grad_accum, seed):
        steps = batching.epoch_plan(lengths, batch_size, 2, grad_accum, seed)
        return [batching.Step([[np.concatenate(ranks)] for ranks in s.micro], s.rows) for s in steps]
    trainer.epoch_plan = merged
settings = {"model.fusion.dropout": 0.0, "model.head.dropout": 0.0, "model.lora.dropout": 0.0,
            "model.lora.layers": None, "batch_size": 4, "epochs": 6, "patience": 1, "lr": 5e-3, "head_lr": 5e-3}
if variant == "cached":
    settings.update({"model.lora.layers": 1, "model.readout": {}, "cache_budget": 0})   # the cache in a file
trainer.train(cohort_with_train_rows(rows), out, quick(**settings), backbone=backbone, progress=False,
              finish=True, n_boot=0, resume=len(sys.argv) > 6)
"""


def cohort_with_train_rows(n_train: int):
    """The toy cohort with exactly ``n_train`` training rows (and 24 validation, 24 test rows)."""
    from tests.training.test_trainer import toy_cohort

    cohort = toy_cohort(n=n_train + 48, seed=3)
    cohort.df["split"] = ["train"] * n_train + ["val", "test"] * 24
    return cohort


def _env():
    return {**os.environ, "PYTHONPATH": os.getcwd(), "OMP_NUM_THREADS": "1"}


def _command(tmp_path, out, backbone, rows, mode, variant="all", *extra):
    if mode == "merged":
        return [sys.executable, "-c", SCRIPT, str(out), str(backbone), str(rows), mode, variant, *extra]
    script = tmp_path / "train_script.py"
    script.write_text(SCRIPT)
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
            str(out), str(backbone), str(rows), mode, variant, *extra]


def _weights(run):
    out = {}
    for part in ("fusion", "head", "readout"):
        if (run / "model" / part).is_dir():
            out.update({f"{part}.{k}": v
                        for k, v in load_file(str(run / "model" / part / "model.safetensors")).items()})
    out.update(load_file(str(run / "model" / "adapter" / "adapter_model.safetensors")))
    # Weights the output cannot depend on get gradients of pure rounding noise, which Adam turns into steps of
    # random sign: the token scorer's last bias (a shift of every token score, ignored by the softmax) and the
    # query/key projections of the head's attention over a length-1 sequence (its softmax is always 1).
    out.pop("fusion.token_scorer.4.bias")
    for key in ("head.attention.in_proj_weight", "head.attention.in_proj_bias"):
        out[key] = out[key][2 * out[key].shape[0] // 3:]
    return out


def _history(run):
    return [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]


def test_every_rank_has_a_step_in_every_step_of_the_plan():
    """49 rows at batch 4 on 2 ranks: shards of 25 and 24 rows, 7 and 6 batches; the 7th step gives rank 1 an empty
    (zero-weighted) micro-step instead of no step at all, and every row is in exactly one step."""
    lengths = np.random.default_rng(0).integers(5, 40, size=49)
    for accum in (1, 3):
        plan = epoch_plan(lengths, 4, world=2, grad_accum=accum, seed=7)
        assert all(len(ranks) == 2 for step in plan for ranks in step.micro)
        rows = np.concatenate([rows for step in plan for ranks in step.micro for rows in ranks])
        assert sorted(rows.tolist()) == list(range(49))
        assert sum(step.rows for step in plan) == 49
        assert len(plan) == -(-7 // accum)
        for r in (0, 1):   # a rank only ever sees the rows it owns (and caches)
            assert all(int(i) % 2 == r for step in plan for ranks in step.micro for i in ranks[r])
    # one process: the batches it always had
    single = [b for step in epoch_plan(lengths, 4, world=1, grad_accum=1, seed=7) for b in step.micro]
    assert [m[0].tolist() for m in single] == [b.tolist() for b in bucketed_batches(lengths, 4, shuffle=True, seed=7)]


@pytest.mark.parametrize("rows,variant", [(49, "all"), (50, "all"), (51, "all"), (51, "cached")])
def test_two_gloo_processes_on_uneven_sizes_match_one_process(tmp_path, tiny_bert_dir, rows, variant):
    ddp, merged = tmp_path / "ddp", tmp_path / "merged"
    for out, mode in ((ddp, "ddp"), (merged, "merged")):
        subprocess.run(_command(tmp_path, out, tiny_bert_dir, rows, mode, variant), check=True, env=_env(),
                       timeout=300)
    a, b = _history(ddp), _history(merged)
    assert len(a) >= 2 and [h["epoch"] for h in a] == [h["epoch"] for h in b]   # early stopping at the same epoch
    for x, y in zip(a, b, strict=True):
        assert x["train_loss"] == pytest.approx(y["train_loss"], abs=1e-5)
        assert x["val_auprc"] == pytest.approx(y["val_auprc"], abs=1e-6)
        assert x["best"] == y["best"]
    wa, wb = _weights(ddp), _weights(merged)
    assert wa.keys() == wb.keys() and len(wa) > 10
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], atol=1e-4, rtol=1e-3, msg=key)
    pa, pb = (pd.read_parquet(run / "predictions.parquet") for run in (ddp, merged))
    assert pa["stay_id"].tolist() == pb["stay_id"].tolist() and len(pa) == rows + 48
    np.testing.assert_allclose(pa["p_raw"], pb["p_raw"], atol=1e-4)
    # only rank 0 wrote, and the temporary folder is gone
    assert sorted(p.name for p in ddp.iterdir()) == sorted(p.name for p in merged.iterdir())
    assert not (ddp / ".tmp").exists()
    assert json.loads((ddp / "config.json").read_text())["runtime"]["world_size"] == 2


def test_two_gloo_processes_resume_after_sigkill(tmp_path, tiny_bert_dir):
    full, killed = tmp_path / "full", tmp_path / "killed"
    command = _command(tmp_path, full, tiny_bert_dir, 51, "ddp")
    subprocess.run(command, check=True, env=_env(), timeout=300)
    command[command.index(str(full))] = str(killed)
    proc = subprocess.Popen(command, env=_env(), start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        history = killed / "history.jsonl"
        if history.exists() and len(history.read_text().splitlines()) >= 1:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)   # torchrun and both ranks, in the middle of epoch 2
    proc.wait()
    subprocess.run(command + ["resume"], check=True, env=_env(), timeout=300)
    a, b = _history(full), _history(killed)
    assert [h["epoch"] for h in a] == [h["epoch"] for h in b]
    assert [(h["train_loss"], h["val_auprc"]) for h in a] == [(h["train_loss"], h["val_auprc"]) for h in b]
    wa, wb = _weights(full), _weights(killed)
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], atol=0, rtol=0, msg=key)


@pytest.mark.parametrize("rank", [0, 1])
def test_resuming_an_old_checkpoint_joins_the_same_collectives_on_every_node(tmp_path, monkeypatch, rank):
    """Issue 30, item 1, row "resuming a checkpoint of an older format on several nodes without a shared file
    system hangs": a checkpoint without the best epoch's weights takes them from the saved model, which only rank
    0's node has; whether the broadcast runs is rank 0's decision, so rank 1 (no run folder on its disk) joins it
    and gets rank 0's weights. (Faked: rank 0's broadcasts are replayed to this process.)"""
    from types import SimpleNamespace

    from alfia import distributed as dist
    from alfia.run_folder import RunFolder
    from alfia.training.trainer import Trainer

    best = {"w": torch.ones(2)}   # the saved model's weights, as rank 0 read them
    sent = [(None, None), (best, None)]   # rank 0's broadcasts: _start's, then the best weights
    joined = []

    def broadcast(obj):
        joined.append(obj)
        return sent[len(joined) - 1]

    monkeypatch.setattr(dist, "broadcast", broadcast)
    monkeypatch.setattr(dist, "is_main", lambda: rank == 0)
    run = RunFolder(tmp_path / "run")
    if rank == 0:   # rank 0's node has the run folder and its saved model
        run.model.mkdir(parents=True)
    trainer = Trainer.__new__(Trainer)
    w = torch.nn.Parameter(torch.zeros(2))
    trainer.__dict__.update(config=SimpleNamespace(epochs=1, patience=5), out=run.path, run=run, best_state=None,
                            trainable=[("w", w)], model=SimpleNamespace(readout=None))
    monkeypatch.setattr(trainer, "_start", lambda resume: None, raising=False)
    monkeypatch.setattr(trainer, "_build", lambda: None, raising=False)
    monkeypatch.setattr(trainer, "_load_checkpoint", lambda: (1, 0.5, 0), raising=False)   # epoch 1 of 1, no best
    monkeypatch.setattr(trainer, "_write_config", lambda: None, raising=False)
    monkeypatch.setattr(trainer, "_saved_best_state", lambda: best if run.model.is_dir() else None, raising=False)
    monkeypatch.setattr(RunFolder, "write_history", lambda self, rows: None)
    assert trainer.fit(resume=True) == []
    assert len(joined) == 2   # every rank: the start and the best weights
    assert torch.equal(w.detach(), torch.ones(2))
