"""The report/ablate subcommands parse, and bad input is an AlfiaError (one line), never a traceback."""

import argparse

import pytest

from alfia.cli.analysis import add_commands
from alfia.errors import AlfiaError


def parser():
    p = argparse.ArgumentParser()
    add_commands(p.add_subparsers(dest="command"))
    return p


def test_report_and_ablate_parse():
    args = parser().parse_args(["report", "RUN", "--out", "x.html", "--max-stays", "50", "--projection", "pca"])
    assert args.run == "RUN" and args.max_stays == 50 and args.func.__name__ == "cmd_report"
    args = parser().parse_args(["ablate", "c.parquet", "--out", "D", "--backbone", "a,b", "--variants", "nf1",
                                "--backbone", "c"])   # repeated, or separated by commas
    assert args.func.__name__ == "cmd_ablate" and args.backbone == ["a,b", "c"]


def test_bad_input(tmp_path):
    with pytest.raises(AlfiaError, match="does not exist"):
        args = parser().parse_args(["report", str(tmp_path / "missing")])
        args.func(args)
    with pytest.raises(AlfiaError, match="does not exist"):
        args = parser().parse_args(["ablate", str(tmp_path / "missing.parquet"), "--out", str(tmp_path / "o")])
        args.func(args)
    with pytest.raises(SystemExit):
        parser().parse_args(["report", "RUN", "--max-stays", "0"])
