"""The ``alfia`` command: a thin layer over the Python API.

Every command validates its inputs, writes outputs atomically, and turns an error into one line on stderr: exit
status 1 for bad data, 2 for a wrong command line (``alfia.cli.options``).

One module per command group; :data:`COMMAND_GROUPS` names them in the order ``alfia --help`` shows their commands,
and each adds its commands to the parser with its ``add_commands``. Everything is imported inside :func:`main`, so
that a Ctrl-C while the modules load is one line too.
"""

from __future__ import annotations

import signal
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

COMMAND_GROUPS = ("cohorts", "train", "predict", "baselines", "analysis", "bench", "serve", "experts", "backbones",
                  "study")
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    import argparse
    import importlib

    from alfia import __version__
    from alfia.cli.options import add_verbosity

    parser = argparse.ArgumentParser(prog="alfia", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"alfia {__version__}")
    add_verbosity(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        importlib.import_module(f"alfia.cli.{group}").add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        return _run(argv)
    except BaseException as exc:
        if not interrupted(exc):
            raise
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if argv is None:  # this process is the command: its work is done, and a Ctrl-C now would only print a
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # traceback from torch's exit hooks


def _run(argv: list[str] | None) -> int:
    from alfia.cli.options import run_command, setup_logging

    args = build_parser().parse_args(argv)
    setup_logging(args.verbose, args.quiet)
    return run_command(args.func, args)


def interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` is a Ctrl-C, or an error raised because of one: an import interrupted inside a C extension or
    a dataclass's ``__set_name__`` (torch's import) re-raises the KeyboardInterrupt wrapped in another exception."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False
