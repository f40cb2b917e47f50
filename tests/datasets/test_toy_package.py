"""Adding a data set is one new package under alfia/datasets/ and nothing else.

The toy package (tests/datasets/toy_package/: schema, template, builder) is copied to TMP/alfia/datasets/toy/, outside
ALFIA's source tree, and `alfia` runs with TMP on PYTHONPATH: cohort -> encode -> train (tiny backbone, one epoch)
-> predict, each command a fresh process. No file of ALFIA names the data set.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

import alfia
from alfia.cohorts.registry import cohort_names

TOY_PACKAGE = Path(__file__).parent / "toy_package"
SOURCE = Path(alfia.__file__).parent  # ALFIA's own package folder
# the commands run through `alfia`'s entry point, one after the other in one fresh process (one start-up, not four)
COMMANDS = """
import json, sys
from alfia.cli import main
for args in json.loads(sys.argv[1]):
    print("$ alfia", *args, flush=True)
    if main(args) != 0:
        sys.exit(f"alfia {' '.join(args)} failed")
"""


def names_the_toy_data_set(path: Path) -> bool:
    data = path.read_bytes()
    return b"\0" not in data and re.search(rb"\btoy\b", data, re.IGNORECASE) is not None  # text files only


def test_no_file_of_alfia_names_the_toy_data_set():
    files = [p for p in SOURCE.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    files.append(SOURCE.parent / "pyproject.toml")
    assert len(files) > 100 and (SOURCE / "datasets" / "physionet2012" / "__init__.py") in files
    assert [str(p) for p in files if names_the_toy_data_set(p)] == []
    assert names_the_toy_data_set(TOY_PACKAGE / "__init__.py")  # the check can fail


def test_a_new_package_runs_cohort_encode_train_predict(tmp_path, tiny_bert_dir):
    plugins = tmp_path / "plugins"
    shutil.copytree(TOY_PACKAGE, plugins / "alfia" / "datasets" / "toy", ignore=shutil.ignore_patterns("__pycache__"))
    # TMP/alfia has no __init__.py: the installed alfia stays the package, and alfia.datasets' path is extended
    # (pkgutil.extend_path) to TMP/alfia/datasets. ALFIA's own folder comes next, for editable installs whose finder
    # would otherwise lose to TMP/alfia as a namespace package.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugins), str(SOURCE.parent),
                                                         os.environ.get("PYTHONPATH", "")])}

    cohort, encoded, model, out = (tmp_path / f for f in ("toy.parquet", "toy.text.parquet", "run", "pred.parquet"))
    commands = [["cohort", "toy", "--n", "120", "--seed", "3", "--out", str(cohort)],
                ["encode", str(cohort), "--out", str(encoded)],
                ["train", str(encoded), "--out", str(model), "--backbone", str(tiny_bert_dir), "--epochs", "1",
                 "--batch-size", "16", "--max-length", "48", "--fusion-layers", "2", "--lora-r", "4", "--n-boot", "0"],
                ["predict", str(model), str(cohort), "--out", str(out)]]  # the run's encoder writes the texts again
    done = subprocess.run([sys.executable, "-c", COMMANDS, json.dumps(commands)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "wrote " + str(cohort) + ": 120 stays" in done.stdout
    texts = pd.read_parquet(encoded)["text"]  # read as a plain table: this process does not know the data set
    assert texts.str.contains("-year-old patient").all() and texts.str.contains("Lactate").all()
    assert (model / "model").is_dir() and json.loads((model / "encoder.json").read_text())["schema"] == "toy"
    pred = pd.read_parquet(out)
    assert pred["stay_id"].tolist() == list(range(1, 121)) and pred["probability"].between(0, 1).all()
    # `alfia cohort --help` names it, with what its --source is
    shown = subprocess.run([sys.executable, "-c", "from alfia.cli import main; main(['cohort', '--help'])"], env=env,
                           capture_output=True, text=True, timeout=120).stdout
    assert "toy" in shown and "the toy stays are generated" in " ".join(shown.split())
    assert "toy" not in cohort_names()  # the data set lives in TMP only: this process never saw it
