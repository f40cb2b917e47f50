"""The real demo patients the suite runs on are the ones of ../shared/data, byte for byte: the YAIB cohorts shipped in
the package and the eICU demo tables under tests/data (tests must not need ../shared, so they read these copies;
this test, skipped where ../shared is absent, proves the copies are the real files)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
COPIES = [(ROOT / "alfia" / "datasets" / "yaib" / "data" / demo, SHARED / "yaib-demo" / demo)
          for demo in ("eicu_demo", "mimic_demo")] + [(ROOT / "tests" / "data" / "eicu-demo", SHARED / "eicu-demo")]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(("copy", "original"), COPIES, ids=[c.name for c, _ in COPIES])
def test_the_shipped_demo_files_are_the_shared_originals(copy, original):
    if not original.is_dir():
        pytest.skip(f"{original} is absent (../shared is not beside the checkout)")
    data = [p for p in original.iterdir() if p.suffix in (".parquet", ".gz", ".csv")]
    assert data, f"{original} holds no data files"
    for path in data:
        assert (copy / path.name).is_file(), f"{path.name} of {original} is not shipped in {copy}"
        assert _sha256(copy / path.name) == _sha256(path), f"{copy / path.name} differs from {path}"
