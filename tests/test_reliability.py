"""Interruptions, full disks, determinism and privacy (docs/reliability.md lists what was tried and what happened)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alfia.cli import main
from alfia.cohorts import read_cohort

ROOT = Path(__file__).resolve().parents[1]


def _alfia(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "alfia.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_cohort_killed_at_random_moments_leaves_the_old_or_the_new_file(tmp_path, sig):
    out = tmp_path / "cohort.parquet"
    assert main(["cohort", "synth-eicu", "--n", "40", "--seed", "1", "--out", str(out)]) == 0
    old = out.read_bytes()
    rng = np.random.default_rng(int(sig))
    for delay in sorted(rng.uniform(0.5, 4.0, size=4)):
        proc = _alfia("cohort", "synth-eicu", "--n", "3000", "--seed", "2", "--out", str(out))
        time.sleep(delay)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        now = out.read_bytes()
        if now != old:  # the command finished before the signal: the new file is complete
            cohort = read_cohort(out)
            assert len(cohort.df) == 3000
            old = now
        if sig == signal.SIGINT:
            assert "Traceback" not in err
            if proc.returncode != 0 and err.strip():  # (a signal during interpreter shutdown prints nothing)
                assert err.strip().splitlines()[-1] == "error: interrupted", err
                assert proc.returncode in (130, -signal.SIGINT)
            assert _leftovers(tmp_path) == []  # an interrupted write removes its temporary file
    read_cohort(out)  # whatever happened, the file under the name is a complete cohort


def test_a_failing_write_is_one_clear_error_and_keeps_the_old_file(tmp_path, monkeypatch, capsys):
    import pyarrow.parquet as pq

    out = tmp_path / "cohort.parquet"
    assert main(["cohort", "synth-eicu", "--n", "40", "--out", str(out)]) == 0
    old = out.read_bytes()
    real = pq.write_table

    def disk_full(table, where, *args, **kwargs):
        real(table.slice(0, 5), where, *args, **kwargs)  # something is written, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq, "write_table", disk_full)
    capsys.readouterr()
    assert main(["cohort", "synth-eicu", "--n", "80", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: cannot write {out} (No space left on device)")
    assert out.read_bytes() == old and _leftovers(tmp_path) == []


def test_a_full_tmpfs_gives_a_clear_error_and_keeps_earlier_results(tmp_path, capsys):
    disk = tmp_path / "tiny"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tiny tmpfs here (needs root); the failing-write test covers the logic")
    try:
        out = disk / "cohort.parquet"
        assert main(["cohort", "synth-eicu", "--n", "20", "--out", str(out)]) == 0
        old = out.read_bytes()
        capsys.readouterr()
        assert main(["cohort", "synth-eicu", "--n", "4000", "--out", str(out)]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "No space left on device" in err[0], err
        assert out.read_bytes() == old and _leftovers(disk) == []
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_same_command_twice_gives_byte_identical_predictions_and_no_patient_text_reaches_the_output(
        tmp_path, tiny_bert_dir, capfd):
    """A small pipeline through the CLI, twice: identical bytes on CPU; nothing printed or logged holds a text."""
    cohort, encoded = tmp_path / "cohort.parquet", tmp_path / "encoded.parquet"
    assert main(["cohort", "synth-eicu", "--n", "120", "--seed", "5", "--out", str(cohort)]) == 0
    assert main(["encode", str(cohort), "--out", str(encoded)]) == 0
    outputs = []
    for attempt in ("a", "b"):
        run, pred = tmp_path / f"run-{attempt}", tmp_path / f"pred-{attempt}.parquet"
        assert main(["train", str(encoded), "--out", str(run), "--backbone", str(tiny_bert_dir), "--epochs", "1",
                     "--batch-size", "16", "--max-length", "64", "--fusion-layers", "2", "--lora-r", "4"]) == 0
        assert main(["predict", str(run), str(cohort), "--out", str(pred)]) == 0
        outputs.append((run, pred))
    (run_a, pred_a), (run_b, pred_b) = outputs
    assert pred_a.read_bytes() == pred_b.read_bytes()
    assert (run_a / "predictions.parquet").read_bytes() == (run_b / "predictions.parquet").read_bytes()
    assert pd.read_parquet(pred_a)["probability"].nunique() > 1

    printed = "".join(capfd.readouterr())
    texts = read_cohort(encoded).df["text"].tolist()
    written = [p for run in (run_a, run_b) for p in run.rglob("*") if p.is_file() and p.suffix in (".json", ".jsonl")]
    written += [pred_a.with_suffix(".metrics.json")]
    for text in texts:
        assert text not in printed
        for path in written:
            assert text not in path.read_text(), path
    # not even a long piece of one (the first sentence of every text is patient-specific)
    for text in texts:
        first = text.split(".")[0]
        assert len(first) < 20 or first not in printed
