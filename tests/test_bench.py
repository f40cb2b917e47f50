"""`alfia bench` smoke test on the tiny model: it runs end to end and reports every key (not a timing test)."""

from __future__ import annotations

import json

import pytest

from alfia.bench import REQUIRED_KEYS, main


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
