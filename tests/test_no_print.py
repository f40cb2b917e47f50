"""Library code logs through logging.getLogger("alfia") (children included); only the command-line layer,
alfia/cli/, prints."""

import ast
import logging
import sys
from pathlib import Path

import alfia

PACKAGE = Path(alfia.__file__).parent
CLI_PACKAGE = PACKAGE / "cli"


def print_calls(source: str) -> list[int]:
    return [n.lineno for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
            and n.func.id == "print"]


def test_the_checker_finds_a_print():
    assert print_calls("def f():\n    print('x')\n\ndef cmd_a(args):\n    sys.stdout.write('y')\n") == [2]


def test_no_print_in_library_code():
    found = {str(p.relative_to(PACKAGE)): lines for p in PACKAGE.rglob("*.py") if CLI_PACKAGE not in p.parents
             and (lines := print_calls(p.read_text()))}
    assert not found, f"use logging.getLogger(__name__) instead of print: {found}"


def test_cli_verbosity_sets_the_alfia_log_level(monkeypatch):
    import io

    from alfia.cli.options import setup_logging

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
