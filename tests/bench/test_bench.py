"""`alfia bench` smoke tests on tiny models: they run end to end and report every key (not timing tests)."""

from __future__ import annotations

import dataclasses
import json
import os
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
        assert set(row) >= {"stays_per_s", "backward_over_forward", "loop_s", "epoch_s"}
