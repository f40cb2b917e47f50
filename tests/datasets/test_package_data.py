"""Every file a data set ships in its ``data/`` folder (tables, raw files, licences, citations) is package data, so
that `pip install alfia` carries the bundled cohorts and the licence each of them requires."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_shipped_data_file_is_package_data_and_each_folder_has_its_licence():
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["alfia"]
    folders = sorted((ROOT / "alfia" / "datasets").glob("*/data"))
    assert {f.parent.name for f in folders} >= {"physionet2012", "yaib"}
    for folder in folders:
        assert list(folder.glob("LICENSE-*.txt")), f"{folder} ships data without its licence text"
        for path in (p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            where = path.relative_to(ROOT / "alfia").as_posix()
            assert any(fnmatch.fnmatch(where, pattern) for pattern in patterns), f"{where} is not package data"
    licences = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    assert licences == "MIT AND ODbL-1.0 AND ODC-By-1.0"
