"""`alfia bench` smoke tests on tiny models: they run end to end and report every key (not timing tests)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from alfia.bench.paper import TINY, TINY_BERT, gpu_peak
from alfia.bench.quick import REQUIRED_KEYS
from alfia.cli import main as alfia_main

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str]) -> int:
    """`alfia bench ARGV...`"""
    return alfia_main(["bench", *argv])


@pytest.mark.parametrize("model_type", ["bert", "mpnet"])   # MPNet: eager attention only, its own LoRA targets
def test_bench_writes_every_key(tmp_path, tiny_family_dirs, model_type):
    out = tmp_path / "bench.json"
    rc = main(["--stays", "32", "--backbone", str(tiny_family_dirs[model_type]), "--out", str(out),
               "--reference-stays", "32", "--reference-steps", "4", "--threads", "1"])
    assert rc == 0
    result = json.loads(out.read_text())
    missing = [k for k in REQUIRED_KEYS if result.get(k) is None]
    assert not missing, missing
    assert result["inference_speedup"] > 0 and result["training_speedup"] > 0
    assert result["max_abs_prob_diff"] < 1e-3   # the same weights: padding and attention kernel do not matter
    assert {"cpu", "cpu_count", "torch"} <= set(result["machine"])
    assert (result["device"], result["precision"]) == ("cpu", "fp32")   # auto on a machine without a GPU
    assert result["alfia_infer_sizes"][0]["stays"] == 32
    # the reference pads to the backbone's limit (512 for real backbones; the tiny model's tokenizer stops at 48),
    # not to the trained run's own, data-derived length
    assert result["reference_infer"]["padded_tokens"] == 48
    # the exact path (no frozen-layer cache) trains the same model: the same validation AUPRC
    assert result["val_auprc_exact"] is not None and result["val_auprc_diff_vs_exact"] < 0.01
    table = out.with_suffix(".md").read_text()
    assert "inference ms/sample" in table and "training samples/s" in table


def test_bench_refuses_a_non_json_output(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "bench.txt")]) == 2
    assert "--out must name a .json file" in capsys.readouterr().err
    assert not (tmp_path / "bench.txt").exists()


def test_bench_refuses_a_precision_the_device_cannot_do(tmp_path, capsys):
    for profile in ("quick", "paper"):
        out = tmp_path / f"{profile}.json"
        assert main(["--profile", profile, "--device", "cpu", "--precision", "tf32", "--out", str(out)]) == 1
        assert "precision tf32 is for CUDA GPUs" in capsys.readouterr().err
        assert not out.exists() and not out.with_suffix(".md").exists()
    assert main(["--tiny", "--out", str(tmp_path / "quick.json")]) == 2   # the quick profile has no --tiny
    assert "options of --profile paper" in capsys.readouterr().err


def test_gpu_peaks_are_found_by_the_names_torch_gives():
    names = {"NVIDIA H100 80GB HBM3": "H100 SXM", "NVIDIA H100 PCIe": "H100 PCIe", "NVIDIA H100 NVL": "H100 NVL",
             "NVIDIA H200": "H200 SXM", "NVIDIA A100-SXM4-80GB": "A100", "NVIDIA L4": "L4", "NVIDIA L40S": "L40S",
             "NVIDIA GeForce RTX 4090": "RTX 4090", "Tesla V100-PCIE-32GB": "V100 PCIe",
             "Tesla V100-SXM2-16GB": "V100 SXM2", "Tesla T4": "T4"}
    for name, label in names.items():
        found, peaks = gpu_peak(name)
        assert found == label, name
        assert peaks["fp32"] < peaks["fp16"] and ("tf32" in peaks) == ("bf16" in peaks) == (label[0] not in "VT")
        assert peaks["fp32"] <= peaks.get("tf32", peaks["fp32"]) < peaks.get("bf16", peaks["fp16"] + 1)
    for unknown in ("NVIDIA A10", "NVIDIA L40", "NVIDIA GH200 480GB", "NVIDIA GeForce RTX 3090", None):
        assert gpu_peak(unknown) is None


def _layer_flops(shape: dict, batch: int, tokens: int) -> tuple[int, int]:
    """An encoder's forward FLOPs at batch x tokens: its linear layers, and its attention's two matmuls."""
    h, f, n = shape["hidden_size"], shape["intermediate_size"], shape["num_hidden_layers"]
    return 2 * batch * tokens * n * (4 * h * h + 2 * h * f), 4 * batch * tokens * tokens * h * n


def test_gpu_script_runs_the_paper_setting_on_a_cpu(tmp_path):
    """`benchmarks/gpu.sh --device cpu --tiny`: every backbone x precision row, tf32 skipped with its reason, the
    FLOPs of the shapes it claims to run (a smoke run: the figures are not checked for speed)."""
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu.sh"), str(tmp_path / "results"), "--device", "cpu",
                           "--tiny", "--threads", "1"], env={**os.environ, "PYTHON": sys.executable},
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    (out,) = (tmp_path / "results").glob("gpu-*.json")
    r = json.loads(out.read_text())
    assert (r["profile"], r["tiny"], r["device"], r["gpu"]) == ("paper", True, "cpu", None)
    assert r["sizes"] == dataclasses.asdict(TINY) and r["machine"]["torch_threads"] == 1
    batch, tokens = TINY.batch_size, TINY.tokens
    large = "tiny BERT shape (random weights)"
    runs = [("fp32", False), ("tf32", False), ("bf16", False), ("bf16", True)]
    assert [(row["backbone"], row["precision"], row["gradient_checkpointing"]) for row in r["rows"]] == \
        [(b, p, c) for b in (large, "all-MiniLM-L6-v2") for p, c in runs]
    for row in r["rows"]:
        if row["precision"] == "tf32":   # CUDA only
            assert row["status"] == "skipped" and "CUDA" in row["reason"], row
            continue
        assert row["status"] == "ok", row
        train, infer, set_a = row["train"], row["infer"], row["set_a"]
        assert train["stays_per_s"] > 0 and train["step_ms"] > 0 and infer["ms_per_stay"] > 0
        assert set_a["ms_per_stay"] > 0 and set_a["stays"] == TINY.set_a_stays and set_a["median_tokens"] <= tokens
        assert row["full_batch_fill"] == 1.0   # joined texts fill every row to the last token
        for part in (train, infer, set_a):
            assert part["peak_gpu_mb"] is None   # no GPU
        for part in (train, infer):
            assert part["tflops_per_s"] > 0 and part["share_of_peak"] is None   # no datasheet peak for a CPU
        assert 0 < row["trainable_params"] < row["backbone_params"]
        linear, attention = _layer_flops(row["shape"], batch, tokens)
        # torch counts every matmul of the forward (LoRA, fusion and head add a little; the CPU's fused attention
        # kernel is not counted): at least the linear layers of batch x tokens, not much more than all of it
        assert linear <= infer["flops_per_batch"] <= 1.6 * (linear + attention), row
        if not row["gradient_checkpointing"]:   # backward: gradients of the activations (the base is frozen)
            assert 1.8 <= train["flops_per_step"] / infer["flops_per_batch"] <= 3.2, row
    rows = {(row["backbone"], row["precision"], row["gradient_checkpointing"]): row for row in r["rows"]}
    for backbone in (large, "all-MiniLM-L6-v2"):   # checkpointing recomputes the forward in backward
        ratio = rows[backbone, "bf16", True]["train"]["flops_per_step"] / rows[backbone, "bf16", False]["train"][
            "flops_per_step"]
        assert 1.25 <= ratio <= 1.7, (backbone, ratio)
    assert rows[large, "fp32", False]["shape"] == TINY_BERT
    table = out.with_suffix(".md").read_text()
    assert "Tiny smoke run, not a measurement" in table and table in done.stdout
    assert sum(line.startswith(("| tiny BERT", "| all-MiniLM")) for line in table.splitlines()) == len(r["rows"])
    loop = r["trainer_loop"]   # issue 30, item 3: alfia train's own loop, every precision
    assert loop["backbone"] == large and [x["precision"] for x in loop["rows"]] == ["fp32", "tf32", "bf16", "fp16"]
    assert [x["status"] for x in loop["rows"]] == ["ok", "skipped", "ok", "skipped"]
    assert all(x["peak_gpu_mb"] is None and x["epoch_s"] > 0 for x in loop["rows"] if x["status"] == "ok")
    # ... in the markdown too, one row per precision, with the measured ratio's line and the paper's setting's cost
    # (the tiny epochs are shorter than the history's 0.1 s: no ratio, and the cost says so)
    lines = table.splitlines()
    start = lines.index("| precision | trainer stays/s | backward/forward | warm epoch s | its validation s | "
                        "forward s | peak GPU MB |")
    rows = [line.split(" | ")[0].strip("| ") for line in lines[start + 2:start + 6]]
    assert rows == ["fp32", "tf32", "bf16", "fp16"] and "skipped: precision fp16" in lines[start + 5]
    assert r["paper_cost"]["headline"] is None and r["paper_cost"]["measured_on"] == large
    assert "Backward/forward ratio: not measured" in table and "BioLinkBERT-large" in table


def test_gpu_script_answers_the_model_question_on_a_cpu(tmp_path):
    """Issue 30, item 4: `benchmarks/gpu.sh --device cpu --tiny` puts everything in one folder: the bench with its
    trainer-loop rows (JSON and markdown), ALFIA trained with the paper's mechanics on a sample of set A (a tiny
    random backbone, never the real MiniLM) and set B's stays scored with AUPRC and AUROC with CIs, the GPU tests'
    log and junit file (every test skipped without CUDA), and a summary of them all."""
    import pandas as pd

    from alfia.cohorts.bundled import load_bundled

    folder = tmp_path / "session"
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu.sh"), str(folder), "--device", "cpu", "--tiny"],
                          env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (bench,) = folder.glob("gpu-*.json")
    r = json.loads(bench.read_text())
    assert [x["precision"] for x in r["trainer_loop"]["rows"]] == ["fp32", "tf32", "bf16", "fp16"]
    assert "| precision | trainer stays/s | backward/forward |" in bench.with_suffix(".md").read_text()

    mq = folder / "model-question"
    config = json.loads((mq / "run" / "config.json").read_text())["train"]
    assert config["profile"] == "paper" and config["epochs"] == 1 and config["batch_size"] == 4
    assert config["model"]["lora"]["layers"] is None and config["model"]["fusion"]["num_fusion_layers"] == 4
    assert Path(config["model"]["backbone"]) == mq / "tiny" / "backbone"   # not the real MiniLM
    scored = json.loads((mq / "p12-b.metrics.json").read_text())["metrics"]
    for name in ("auprc", "auroc"):
        m = scored[name]
        assert m["ci_low"] <= m["value"] <= m["ci_high"] and m["ci_low"] < m["ci_high"], (name, m)
    predictions = pd.read_parquet(mq / "p12-b.predictions.parquet")
    assert len(predictions) == scored["n"] == 400 and predictions["probability"].between(0, 1).all()
    assert set(predictions["stay_id"]) <= set(load_bundled("p12-b").df["stay_id"])   # set B's stays

    assert "skipped" in (folder / "gpu-tests.log").read_text()
    tests = (folder / "gpu-tests.xml").read_text()
    assert 'skipped="' in tests and 'failures="0"' in tests and 'errors="0"' in tests

    summary = (folder / "summary.md").read_text()
    assert summary in done.stdout
    for step in ("bench", "tiny-inputs", "train", "predict-p12-b", "gpu-tests"):
        assert re.search(rf"^\| {step} \| \d+ \| 0 \|$", summary, re.M), step
    assert "| precision | trainer stays/s | backward/forward |" in summary and "Backward/forward ratio" in summary
    b = scored["auprc"]
    assert f"| this run, set B (p12-b, a 400-stay sample) | 400 | {scored['n_pos']} | {b['value']:.3f} " \
        f"({b['ci_low']:.3f}–{b['ci_high']:.3f}) |" in summary
    q = json.loads((ROOT / "results" / "study" / "p12-b.metrics.json").read_text())["metrics"]
    assert f"| quick profile, set B (results/study) | {q['n']:,} | {q['n_pos']} | {q['auprc']['value']:.3f} " \
        f"({q['auprc']['ci_low']:.3f}–{q['auprc']['ci_high']:.3f}) |" in summary
    assert re.search(r"^0 passed, 0 failed, 0 errors, (\d+) skipped of \1\.$", summary, re.M)


def test_gpu_script_records_a_failed_step_and_still_writes_the_summary(tmp_path):
    """A step that fails does not stop the others: the summary names it with its exit status, the script exits 1."""
    folder = tmp_path / "session"
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu.sh"), str(folder), "--device", "cpu", "--tiny"],
                          env={**os.environ, "PYTHON": sys.executable, "STEPS": "model", "EPOCHS": "0"},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 1
    assert "step train failed (exit status 2)" in done.stderr
    summary = (folder / "summary.md").read_text()
    assert "| train | " in summary and re.search(r"^\| train \| \d+ \| 2 \|$", summary, re.M)
    assert re.search(r"^\| predict-p12-b \| \d+ \| [1-9]\d* \|$", summary, re.M)
    assert "No bench results" in summary and "Set B was not scored" in summary and "No test results" in summary
    assert not list(folder.glob("gpu-*.json"))


def test_the_trainer_loop_rows_come_from_alfia_train(tmp_path, monkeypatch):
    """Issue 30, item 3: the paper bench runs `train` itself (the paper profile's mechanics, batch 4) on set-A stays
    for every precision: fp32 and bf16 on a CPU, tf32 and fp16 skipped with their reason (not a timing test)."""
    import torch

    from alfia.bench import paper
    from alfia.training import trainer

    calls = []
    real = trainer.train
    monkeypatch.setattr(trainer, "train", lambda *a, **k: (calls.append(a[2]), real(*a, **k))[1])
    backbone = paper.random_backbone(tmp_path / "b", TINY_BERT)
    rows = paper.trainer_loop_rows(str(backbone), torch.device("cpu"), steps=3, val_stays=8, max_length=32)
    assert [r["precision"] for r in rows] == ["fp32", "tf32", "bf16", "fp16"]
    assert [c.precision for c in calls] == ["fp32", "bf16"]
    assert all(c.batch_size == 4 and c.model.lora.layers is None and c.epochs == 2 for c in calls)
    for row in rows:
        if row["precision"] in ("tf32", "fp16"):
            assert row["status"] == "skipped" and "CUDA" in row["reason"], row
            continue
        assert row["status"] == "ok" and row["epochs"] == 2 and row["train_stays"] == 12, row
        assert row["forward_s"] > 0 and row["validation_s"] > 0
        assert set(row) >= {"stays_per_s", "backward_over_forward", "loop_s", "epoch_s", "peak_gpu_mb"}


def test_the_paper_settings_cost_comes_from_the_measured_ratio():
    """Issue 30, item 3: the cost of the paper's setting (BioLinkBERT-large, 49,000 training stays, 25 epochs) is
    the forward's FLOPs x (1 + the MEASURED backward/forward ratio), bf16's where measured, and hours from the trainer
    loop's stays/s; the fixed 3x is only printed beside it."""
    from alfia.bench.paper import PAPER_SETTING, paper_cost
    from alfia.bench.report import describe_cost, trainer_loop_markdown

    rows = [{"precision": "fp32", "status": "ok", "backward_over_forward": 1.8, "stays_per_s": 40.0, "epoch_s": 5.6,
             "validation_s": 0.6, "forward_s": 1.8, "peak_gpu_mb": 9000.0, "batch_size": 4, "train_stays": 200,
             "steps_per_epoch": 50},
            {"precision": "tf32", "status": "skipped", "reason": "out of GPU memory at batch 4"},
            {"precision": "bf16", "status": "ok", "backward_over_forward": 1.25, "stays_per_s": 100.0, "epoch_s": 2.3,
             "validation_s": 0.3, "forward_s": 0.9, "peak_gpu_mb": 6000.0},
            {"precision": "fp16", "status": "ok", "backward_over_forward": None, "stays_per_s": None, "epoch_s": 0.4,
             "validation_s": 0.1, "forward_s": 0.1, "peak_gpu_mb": 6000.0}]
    cost = paper_cost(rows, measured_on="BERT-large shape (random weights)")
    forward = 2 * 335e6 * 215 / 1e12
    assert cost["forward_tflop_per_stay"] == pytest.approx(forward) and cost["epochs"] == 25
    assert [e["precision"] for e in cost["estimates"]] == ["fp32", "bf16"]   # fp16: no ratio measured
    head = cost["headline"]
    assert head["precision"] == "bf16" and head["backward_over_forward"] == 1.25
    assert head["pflop_per_epoch"] == pytest.approx(forward * 2.25 * PAPER_SETTING["train_stays"] / 1e3)
    assert head["hours_per_epoch"] == pytest.approx(49_000 / 100.0 / 3600)
    assert head["hours_all_epochs"] == pytest.approx(25 * head["hours_per_epoch"])
    assert cost["assumed"]["pflop_per_epoch"] == pytest.approx(forward * 3 * 49_000 / 1e3)   # the old 3x
    text = describe_cost(cost)
    assert "fp32 1.80, bf16 1.25" in text and "(1 + 1.25)" in text and f"{head['pflop_per_epoch']:.3g} PFLOP" in text
    # another shape than BERT-large (the tiny run): the ratio still counts, its rate says nothing of BERT-large's
    assert paper_cost(rows, measured_on="tiny", paper_shape=False)["headline"]["hours_per_epoch"] is None
    assert paper_cost(rows[1:2] + rows[3:], measured_on="x")["headline"] is None   # nothing measured
    table = trainer_loop_markdown({"backbone": "BERT-large shape (random weights)", "rows": rows})
    assert "| bf16 | 100.0 | 1.25 | 2.3 | 0.30 | 0.90 | 6000 |" in table
    assert "| tf32 | skipped: out of GPU memory at batch 4 |" + " |" * 5 in table
    assert "| fp16 | – | – | 0.4 |" in "\n".join(table)
