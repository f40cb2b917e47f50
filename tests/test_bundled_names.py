"""The bundled PhysioNet 2012 cohorts are named in their own package only: every other module reads the default
study's names (``p12-a``, ``p12-b``) from the data set's registration (``alfia.cohorts.registry.default_study``)
and a study's file names from ``alfia.run_folder.StudyFolder``. Docstrings and help texts may name them for the
reader; defaults, file names and comparisons may not."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "alfia"
HOME = "datasets/physionet2012/"
BUNDLED = re.compile(r"p12[-_][ab]\b", re.IGNORECASE)


def help_positions() -> dict[str, int]:
    """ALFIA's own functions that take a flag's help text (``add_input(p, name, help, old_flag)``): name -> the
    position of their ``help`` parameter."""
    found = {}
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef):
                names = [a.arg for a in node.args.posonlyargs + node.args.args]
                if "help" in names:
                    found[node.name] = names.index("help")
    return found


HELP_AT = help_positions()


def explained(tree: ast.AST) -> set[int]:
    """The ids of the string nodes that explain: docstrings, and a flag's help text with all it holds (``help=``,
    or the ``help`` argument of one of ALFIA's flag helpers given by position)."""
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body \
                and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant):
            ids.add(id(node.body[0].value))
        if isinstance(node, ast.Call):
            helps = [kw.value for kw in node.keywords if kw.arg == "help"]
            callee = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if callee in HELP_AT and len(node.args) > HELP_AT[callee]:
                helps.append(node.args[HELP_AT[callee]])
            ids |= {id(part) for value in helps for part in ast.walk(value)}
    return ids


def named(rel: str, source: str) -> list[str]:
    """Where ``source`` holds a bundled PhysioNet name in a string constant that is no docstring or help text."""
    tree = ast.parse(source)
    skip = explained(tree)
    return [f"alfia/{rel}:{node.lineno} holds {node.value!r}" for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
            and BUNDLED.search(node.value)]


def test_no_module_outside_physionet2012_names_its_bundled_cohorts():
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if not rel.startswith(HOME):
            found += named(rel, path.read_text())
    assert not found, "\n".join(found)


@pytest.mark.parametrize("source", ['def f(cohort="p12-a"):\n    return cohort\n',
                                    'path = folder / "p12-b.metrics.json"\n',
                                    'path = folder / f"{x}/p12-b.predictions.parquet"\n',
                                    'if name != "p12-a":\n    pass\n',
                                    'p.add_argument("c", default="p12-a", help="a cohort")\n'])
def test_the_scan_catches_a_name_in_code(source):
    assert len(named("study.py", source)) == 1


def test_docstrings_and_help_texts_may_name_them():
    assert named("study.py", '"""The study of p12-a and p12-b."""\ndef f():\n    """on p12-b"""\n') == []
    assert named("cli/x.py", 'p.add_argument("c", help="a file or p12-a (default p12-a)")\n') == []
    assert named("cli/x.py", 'p.add_argument("c", help=f"a file or {x}, e.g. p12-b")\n') == []
    assert named("cli/x.py", 'add_input(p, "cohort", "a file, or p12-a", "--cohort")\n') == []
    assert len(named("cli/x.py", 'add_input(p, "p12-a", "a file", "--cohort")\n')) == 1   # not its help
    # the data set's own package declares them
    home = ROOT / HOME / "__init__.py"
    assert named(HOME + "__init__.py", home.read_text())
