"""Library code logs through logging.getLogger("alfia") (children included); only the command-line layer prints:
modules named cli.py / cli_options.py and the command functions (cmd_*, main) of other modules."""

import ast
import logging
import sys
from pathlib import Path

import alfia

PACKAGE = Path(alfia.__file__).parent
CLI_MODULES = {"cli.py", "cli_options.py"}


def prints_outside_the_cli(source: str) -> list[int]:
    tree = ast.parse(source)
    allowed: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and (node.name.startswith("cmd_") or node.name == "main"):
            allowed |= {id(n) for n in ast.walk(node)}
    return [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
            and n.func.id == "print" and id(n) not in allowed]


def test_the_checker_finds_a_print():
    assert prints_outside_the_cli("def f():\n    print('x')\n\ndef cmd_a(args):\n    print('y')\n") == [2]


def test_no_print_in_library_code():
    found = {str(p.relative_to(PACKAGE)): lines for p in PACKAGE.rglob("*.py") if p.name not in CLI_MODULES
             and (lines := prints_outside_the_cli(p.read_text()))}
    assert not found, f"use logging.getLogger(__name__) instead of print: {found}"


def test_cli_verbosity_sets_the_alfia_log_level(monkeypatch):
    import io

    from alfia.cli_options import setup_logging

    logger = logging.getLogger("alfia")
    try:
        setup_logging(quiet=True)
        assert logger.level == logging.WARNING
        setup_logging(verbose=1)
        assert logger.level == logging.DEBUG
        assert sum(getattr(h, "alfia_cli", False) for h in logger.handlers) == 1  # one handler, however often
        for _ in range(2):  # the lines go to the current stderr, even after it was replaced (as pytest does)
            monkeypatch.setattr("sys.stderr", io.StringIO())
            logging.getLogger("alfia.study").info("stage done")
            assert sys.stderr.getvalue() == "stage done\n"
    finally:
        logger.setLevel(logging.NOTSET)
        logger.handlers = [h for h in logger.handlers if not getattr(h, "alfia_cli", False)]
