"""The ``alfia`` command: a thin layer over the Python API.

Every command validates its inputs, writes outputs atomically, and turns an error into one line on stderr: exit
status 1 for bad data, 2 for a wrong command line (``alfia.cli.options``).

One module per command group; :data:`COMMAND_GROUPS` names them in the order ``alfia --help`` shows their commands,
and each adds its commands to the parser with its ``add_commands``. They are imported by :func:`build_parser`, inside
:func:`main`, so that a Ctrl-C while they load is one line too.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from alfia import __version__
from alfia.cli.options import add_verbosity, run_command, setup_logging

COMMAND_GROUPS = ("cohorts", "train", "predict", "baselines", "analysis", "bench", "serve", "experts", "backbones",
                  "study")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alfia", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"alfia {__version__}")
    add_verbosity(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        importlib.import_module(f"alfia.cli.{group}").add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)  # inside: Ctrl-C while the parser imports is one line too
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    setup_logging(args.verbose, args.quiet)
    return run_command(args.func, args)
