"""Ctrl-C gives one line and exit 130 wherever it lands, also when an import wraps the KeyboardInterrupt in another
error (torch's dataclasses re-raise it as a RuntimeError from ``__set_name__``; a test killed with SIGINT caught it)."""

import pytest

import alfia.cli as cli
from alfia.cli import EXIT_INTERRUPTED, interrupted


def _wrapped(depth: int) -> BaseException:
    exc: BaseException = KeyboardInterrupt()
    for n in range(depth):
        try:
            raise exc
        except BaseException as inner:
            try:
                raise RuntimeError(f"Error calling __set_name__ ({n})") from inner
            except RuntimeError as outer:
                exc = outer
    return exc


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_an_interrupt_is_found_however_deeply_it_is_wrapped(depth):
    assert interrupted(_wrapped(depth))


def test_other_errors_are_not_interrupts():
    try:
        try:
            raise ValueError("inner")
        except ValueError:
            raise RuntimeError("outer")  # noqa: B904 - an implicit __context__ chain
    except RuntimeError as exc:
        assert not interrupted(exc)


@pytest.mark.parametrize("where", ["parser", "command"])
def test_a_wrapped_interrupt_is_one_line_and_exit_130(monkeypatch, capsys, where):
    def boom(*_):
        raise _wrapped(2)

    if where == "parser":
        monkeypatch.setattr(cli, "build_parser", boom)
        code = cli.main(["cohort", "--help"])
    else:
        from alfia.cli.options import run_command
        code = run_command(boom, type("Args", (), {})())
    assert code == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "error: interrupted\n"


def test_a_real_error_still_raises(monkeypatch):
    def boom(*_):
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli, "build_parser", boom)
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main([])


def test_the_command_ignores_ctrl_c_once_its_work_is_done(tmp_path):
    """A Ctrl-C while the interpreter shuts down printed a traceback from torch's exit hooks; the command (main
    without argv) ignores it from then on, and main called from Python leaves the caller's handler alone."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = ("import signal, sys\n"
              "from alfia.cli import main\n"
              "before = signal.getsignal(signal.SIGINT)\n"
              "assert main(['--verbose', 'backbones']) in (0, 1)\n"
              "assert signal.getsignal(signal.SIGINT) is before\n"
              "sys.argv = ['alfia', 'backbones']\n"
              "main()\n"
              "print(signal.getsignal(signal.SIGINT) == signal.SIG_IGN)\n")
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(root)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "True"
