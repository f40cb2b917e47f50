"""Names written once: the files of a run folder are spelled only in ``alfia.run_folder.RunFolder`` and the outcome
columns (each task's label) only in ``alfia.cohorts.task``: code reads them from a cohort's task. The scan reads
string constants in code (docstrings and help texts may name the files for the reader)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from alfia.cohorts.task import TASKS
from alfia.run_folder import RunFolder

ROOT = Path(__file__).resolve().parents[1] / "alfia"
RUN_FILES = {v for k, v in vars(RunFolder).items() if k.isupper() and isinstance(v, str) and "." in v[1:]}
HOMES = {**{t.label: {"cohorts/task.py"} for t in TASKS.values()}, **{name: {"run_folder.py"} for name in RUN_FILES}}
# a saved model folder is a HuggingFace-style folder: its own config.json is the model's, not the run's
ALLOWED = {("config.json", "model/serialization.py"), ("config.json", "model/backbone.py")}


def spelled(source: str) -> list[tuple[int, str]]:
    """``(line, value)`` of every string constant of ``source`` that is not a docstring."""
    tree = ast.parse(source)
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def misplaced(rel: str, source: str) -> list[str]:
    return [f"alfia/{rel}:{line} spells {value!r}" for line, value in spelled(source)
            if value in HOMES and rel not in HOMES[value] and (value, rel) not in ALLOWED]


def test_run_files_and_the_outcome_are_spelled_in_one_place():
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        found += misplaced(path.relative_to(ROOT).as_posix(), path.read_text())
    assert not found, "\n".join(found)


@pytest.mark.parametrize("source", ['def f(run):\n    return run / "metrics.json"\n',
                                    'y = df["hospital_mortality"]\n', 'y = df["icu_mortality"]\n'])
def test_the_scan_catches_a_spelled_name(source):
    assert len(misplaced("inference.py", source)) == 1
    assert misplaced("inference.py", '"""Reads metrics.json."""\n') == []
