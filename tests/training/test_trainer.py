"""Training on a tiny random BERT: it learns a toy signal, saves what it needs, and resumes after SIGKILL."""

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

from alfia.cohorts import Cohort, get_schema
from alfia.cohorts.splits import assign_splits
from alfia.errors import AlfiaError
from alfia.inference import Run, finish_run
from alfia.model.alfia import ALFIA
from alfia.training.config import make_config
from alfia.training.trainer import train


def toy_cohort(n=240, seed=0) -> Cohort:
    """Deaths are described with 'sepsis ... lactate high', survivors with 'elective ... normal'."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    filler = ["the patient is", "admitted to icu", "heart rate", "blood pressure", "gcs 15"]
    texts = []
    for label in y:
        words = list(rng.choice(filler, size=3))
        words.insert(int(rng.integers(0, 3)), "sepsis , lactate high" if label else "elective , lactate normal")
        texts.append(" , ".join(words))
    ids = pd.Series(np.arange(1, n + 1))
    df = pd.DataFrame({"stay_id": ids, "hospital_mortality": y, "text": texts})
    df["split"] = assign_splits(ids, df["hospital_mortality"])
    return Cohort(df=df, schema=get_schema("physionet2012"), info={"source": "toy"})


def quick(**kw):
    """The quick profile's mechanics with LoRA, on labels alone (the toy cohort has texts, no features)."""
    base = {"epochs": 3, "batch_size": 16, "lr": 5e-3, "head_lr": 5e-3, "patience": 3, "distill": 0.0,
            "class_weight": True, "calibration": "none", "model.fusion.num_fusion_layers": 2,
            "model.lora": {"r": 4, "alpha": 8, "layers": None}, "model.readout": None}
    return make_config("quick", **{**base, **kw})


def test_learns_a_separable_signal_and_round_trips(tmp_path, tiny_bert_dir):
    cohort = toy_cohort()
    run = tmp_path / "run"
    original = {n: p.clone() for n, p in __import__("transformers").AutoModel.from_pretrained(
        tiny_bert_dir).state_dict().items()}
    train(cohort, run, quick(), backbone=str(tiny_bert_dir), progress=False)
    metrics = finish_run(run, cohort, n_boot=50)
    assert metrics["test"]["auroc"]["value"] > 0.9
    history = [json.loads(x) for x in (run / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    config = json.loads((run / "config.json").read_text())
    assert config["versions"]["alfia"] and config["versions"]["torch"] and config["cohort"]["checksum"]
    # one config tree: the training settings hold the model's config, and the saved model carries all of it,
    # the backbone's dropout (the quick profile's 0) included
    assert config["train"]["model"]["fusion"]["num_fusion_layers"] == 2
    assert config["train"]["model"]["backbone"] == str(tiny_bert_dir) == config["backbone"]
    saved_model, _ = ALFIA.read_config(run / "model")
    assert saved_model.backbone_dropout == 0.0 == config["train"]["model"]["backbone_dropout"]
    assert saved_model.lora.r == 4 and saved_model.lora.alpha == 8 and saved_model.readout is None
    # LoRA B matrices moved away from their zero init; base weights are bit-identical
    loaded = Run.load(run)
    dropouts = {n: m.p for n, m in loaded.model.base_model().named_modules() if isinstance(m, torch.nn.Dropout)}
    assert {p for n, p in dropouts.items() if "lora_" not in n} == {0.0}  # the backbone's own
    assert {p for n, p in dropouts.items() if "lora_" in n} == {0.05}  # LoRA's dropout is LoRA's setting
    lora_b = {n: p for n, p in loaded.model.backbone.named_parameters() if "lora_B" in n}
    assert lora_b and all(p.abs().sum() > 0 for p in lora_b.values())
    base = {n.replace("base_model.model.", "").replace(".base_layer", ""): p
            for n, p in loaded.model.backbone.state_dict().items() if "lora_" not in n}
    for name, value in original.items():
        assert torch.equal(base[name], value), name
    # save -> load -> predict reproduces the saved predictions exactly
    saved = pd.read_parquet(run / "predictions.parquet")
    again = loaded.predict_proba(cohort)
    np.testing.assert_array_equal(saved["probability"].to_numpy(), again)
    # no pickles anywhere in the run
    files = [p for p in run.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in (".pt", ".pth", ".bin", ".pkl")]
    assert load_file(str(run / "model" / "head" / "model.safetensors"))


def test_threshold_ignores_test_labels(tmp_path, tiny_bert_dir):
    cohort = toy_cohort()
    run = tmp_path / "run"
    train(cohort, run, quick(epochs=1), backbone=str(tiny_bert_dir), progress=False)
    finish_run(run, cohort, n_boot=10)
    first = json.loads((run / "threshold.json").read_text())["threshold"]
    shuffled = cohort.df.copy()
    test = shuffled["split"] == "test"
    shuffled.loc[test, "hospital_mortality"] = np.random.default_rng(1).permutation(
        shuffled.loc[test, "hospital_mortality"].to_numpy())
    finish_run(run, Cohort(shuffled, cohort.schema, cohort.info), n_boot=10)
    assert json.loads((run / "threshold.json").read_text())["threshold"] == first


def test_refuses_a_non_empty_run_folder_and_unencoded_cohorts(tmp_path, tiny_bert_dir):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "mine.txt").write_text("keep me")
    with pytest.raises(AlfiaError, match="not empty"):
        train(toy_cohort(), tmp_path / "run", quick(epochs=1), backbone=str(tiny_bert_dir), progress=False)
    assert (tmp_path / "run" / "mine.txt").read_text() == "keep me"
    bare = toy_cohort()
    bare.df = bare.df.drop(columns=["text"])
    with pytest.raises(AlfiaError, match="encode"):
        train(bare, tmp_path / "other", quick(epochs=1), backbone=str(tiny_bert_dir), progress=False)


RESUME_SCRIPT = """
import sys
import torch
torch.set_num_threads(1)
from tests.training.test_trainer import quick, toy_cohort
from alfia.training.trainer import train
train(toy_cohort(), sys.argv[1], quick(epochs=4, patience=4), backbone=sys.argv[2], progress=False,
      resume=len(sys.argv) > 3)
"""


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path, tiny_bert_dir, sig):
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    full, killed = tmp_path / "full", tmp_path / "killed"
    subprocess.run([sys.executable, "-c", RESUME_SCRIPT, str(full), str(tiny_bert_dir)], check=True, env=env)
    proc = subprocess.Popen([sys.executable, "-c", RESUME_SCRIPT, str(killed), str(tiny_bert_dir)], env=env)
    deadline = time.time() + 120
    while time.time() < deadline and not (killed / "history.jsonl").exists() or \
            len((killed / "history.jsonl").read_text().splitlines()) < 2:
        time.sleep(0.05)
        if proc.poll() is not None:
            break
    os.kill(proc.pid, sig)  # in the middle of epoch 3
    proc.wait()
    subprocess.run([sys.executable, "-c", RESUME_SCRIPT, str(killed), str(tiny_bert_dir), "resume"],
                   check=True, env=env)
    a = [json.loads(x) for x in (full / "history.jsonl").read_text().splitlines()]
    b = [json.loads(x) for x in (killed / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in b] == [1, 2, 3, 4]
    assert [h["val_auprc"] for h in a] == [h["val_auprc"] for h in b]
    assert [round(h["train_loss"], 6) for h in a] == [round(h["train_loss"], 6) for h in b]


def test_cached_training_finishes_with_the_predictions_of_the_saved_model(tmp_path, tiny_bert_dir):
    """The quick path (LoRA on the top layer over cached frozen layers, finished from the caches in memory) gives
    the predictions that the saved run gives when loaded, and keeps the embeddings for ALFIA-boost."""
    from alfia.inference import embed_cohort

    cohort = toy_cohort()
    run = tmp_path / "run"
    metrics = train(cohort, run, quick(epochs=2, **{"model.lora.layers": 1}), backbone=str(tiny_bert_dir),
                    progress=False, finish=True, n_boot=20)
    assert metrics["test"]["auroc"]["value"] > 0.8
    saved = pd.read_parquet(run / "predictions.parquet")
    again = Run.load(run).predict_proba(cohort)
    np.testing.assert_allclose(saved["probability"].to_numpy(), again, atol=1e-5)
    emb = embed_cohort(run, cohort)  # from the run's embedding cache
    assert len(list((run / "embeddings").glob("*.parquet"))) == 1
    assert emb.shape[0] == len(cohort.df) and np.allclose(np.linalg.norm(emb.filter(like="emb_"), axis=1), 1, 1e-5)


def test_a_resumed_run_finishes_with_the_best_epoch_in_memory(tmp_path, tiny_bert_dir, monkeypatch):
    """--resume after the last epoch (so the best epoch came before the interruption): the final scoring uses the
    best weights restored from the checkpoint, on the training device, without reloading the model from disk."""
    from alfia import inference

    cohort = toy_cohort(n=120)
    run = tmp_path / "run"
    first = train(cohort, run, quick(epochs=2), backbone=str(tiny_bert_dir), progress=False, finish=True, n_boot=0)
    before = pd.read_parquet(run / "predictions.parquet")

    def no_reload(*args, **kwargs):
        raise AssertionError("the final scoring reloaded the model from disk")

    monkeypatch.setattr(inference.Run, "load", no_reload)
    again = train(cohort, run, quick(epochs=2), backbone=str(tiny_bert_dir), progress=False, finish=True, n_boot=0,
                  resume=True)
    monkeypatch.undo()
    after = pd.read_parquet(run / "predictions.parquet")
    np.testing.assert_array_equal(before["p_raw"].to_numpy(), after["p_raw"].to_numpy())
    assert again["test"]["auprc"] == first["test"]["auprc"]
    np.testing.assert_array_equal(Run.load(run).predict_proba(cohort), after["probability"].to_numpy())


def test_gradient_accumulation_equals_the_larger_batch(tmp_path, tiny_bert_dir, monkeypatch):
    """--grad-accum 2 at batch 4 takes the optimiser steps that one batch of the same 8 rows takes (the schedule
    counts optimiser steps); with gradient checkpointing too, the same weights up to float noise."""
    from alfia.training import batching
    from alfia.training import trainer as trainer_module
    from tests.training.test_distributed import _weights

    cohort = toy_cohort(n=100)
    settings = {"epochs": 2, "batch_size": 4, "model.fusion.dropout": 0.0, "model.head.dropout": 0.0,
                "model.lora.dropout": 0.0}
    train(cohort, tmp_path / "accum", quick(grad_accum=2, **settings), backbone=str(tiny_bert_dir), progress=False)
    train(cohort, tmp_path / "checkpointed", quick(grad_accum=2, gradient_checkpointing=True, **settings),
          backbone=str(tiny_bert_dir), progress=False)
    real = batching.epoch_plan

    def merged(lengths, batch_size, world, grad_accum, seed):
        steps = real(lengths, batch_size, world, 2, seed)
        return [batching.Step([[np.concatenate([m[0] for m in s.micro])]], s.rows) for s in steps]

    monkeypatch.setattr(trainer_module, "epoch_plan", merged)
    train(cohort, tmp_path / "merged", quick(**settings), backbone=str(tiny_bert_dir), progress=False)
    history = {name: [json.loads(x) for x in (tmp_path / name / "history.jsonl").read_text().splitlines()]
               for name in ("accum", "checkpointed", "merged")}
    for name in ("accum", "checkpointed"):
        assert [h["train_loss"] for h in history[name]] == pytest.approx([h["train_loss"] for h in history["merged"]],
                                                                         abs=1e-5)
        a, b = _weights(tmp_path / name), _weights(tmp_path / "merged")
        for key in a:
            torch.testing.assert_close(a[key], b[key], atol=1e-4, rtol=1e-3, msg=key)
    config = json.loads((tmp_path / "checkpointed" / "config.json").read_text())
    assert config["runtime"]["effective_batch"] == 8 and config["runtime"]["gradient_checkpointing"] is True


def test_feeding_batches_leaves_the_global_random_state_alone(tmp_path, tiny_bert_dir):
    """The DataLoader that feeds the steps has its own generator: dropout masks (the global RNG) are what they would be
    without it, so a run reproduces the runs of earlier versions bit for bit."""
    from alfia.training.trainer import Trainer

    trainer = Trainer(toy_cohort(n=60), tmp_path / "run", quick(epochs=1), backbone=str(tiny_bert_dir),
                      progress=False)
    trainer._build()
    state = torch.get_rng_state()
    batches = list(trainer._loader([np.array([0, 1]), np.array([2])]))
    assert torch.equal(state, torch.get_rng_state())
    ids, mask = batches[0]
    assert ids.shape[0] == 2 and torch.equal(ids, trainer.train_tokens.collate(np.array([0, 1]))[0])


def test_the_checkpoint_lives_under_the_run_folders_names_and_survives_a_kill_between_renames(tmp_path,
                                                                                              tiny_bert_dir):
    from alfia.io import previous_folder
    from alfia.run_folder import RunFolder
    from alfia.training.checkpoint import META, Progress
    from alfia.training.trainer import Trainer

    out = tmp_path / "run"
    train(toy_cohort(n=60), out, quick(epochs=1), backbone=str(tiny_bert_dir), progress=False)
    run = RunFolder(out)
    assert (run.checkpoint / META).is_file() and not run.checkpoint_tmp.exists() and not run.checkpoint_old.exists()
    assert run.checkpoint_tmp.name == RunFolder.CHECKPOINT_TMP and run.checkpoint_old == previous_folder(run.checkpoint)
    run.checkpoint.rename(run.checkpoint_old)   # killed after the old one moved aside, before the new one moved in
    trainer = Trainer(toy_cohort(n=60), out, quick(epochs=1), backbone=str(tiny_bert_dir), progress=False)
    trainer._build()
    state, meta = trainer.checkpoint.read()
    assert meta["epoch"] == 1 and (run.checkpoint / META).is_file() and not run.checkpoint_old.exists()
    progress, best = trainer.checkpoint.restore((state, meta), rank=0, device=torch.device("cpu"))
    assert progress == Progress(1, meta["best_val_auprc"], meta["bad_epochs"]) and set(best) == {
        n for n, _ in trainer.trainable}


def test_build_is_one_step_per_job(tmp_path, tiny_bert_dir):
    """The model, its inputs, the targets and the optimiser are built by separate steps, in that order."""
    from alfia.training.trainer import Trainer

    trainer = Trainer(toy_cohort(n=60), tmp_path / "run", quick(epochs=1), backbone=str(tiny_bert_dir),
                      progress=False)
    calls = []
    for step in ("_build_model", "_build_inputs", "_build_targets", "_build_optimiser"):
        real = getattr(trainer, step)
        setattr(trainer, step, lambda *a, _real=real, _name=step: (calls.append(_name), _real(*a))[1])
    trainer._build()
    assert calls == ["_build_model", "_build_inputs", "_build_targets", "_build_optimiser"]
    assert trainer.checkpoint.optimizer is trainer.optimizer and trainer.checkpoint.trainable is trainer.trainable


def test_cache_dir_puts_a_cache_over_its_budget_on_scratch(tmp_path, tiny_bert_dir, caplog):
    """Issue 30, item 1, row "the spill file goes to the run folder, often a network file system": ``--cache-dir``
    (the ``cache_dir`` setting) puts the frozen-layer cache's file there, not in the run folder."""
    import logging

    from alfia.cli import build_parser
    from alfia.cli.train import _train_overrides

    args = build_parser().parse_args(["train", "x.parquet", "--out", "run", "--cache-dir", str(tmp_path / "s")])
    assert _train_overrides(args)["cache_dir"] == str(tmp_path / "s")
    scratch = tmp_path / "scratch"
    with caplog.at_level(logging.INFO, logger="alfia"):
        train(toy_cohort(n=64), tmp_path / "run", quick(epochs=1, cache_budget=0, cache_dir=str(scratch),
                                                        **{"model.lora.layers": 1}),
              backbone=str(tiny_bert_dir), progress=False)
    assert f"in a file in {scratch} " in caplog.text and ".tmp" not in caplog.text
    assert scratch.is_dir() and list(scratch.iterdir()) == []   # unlinked at once
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["train"]["cache_dir"] == str(scratch)
