"""Every command's --help: each flag explained, shared flags spelled, explained and defaulted the same everywhere."""

import argparse

import pytest

from alfia.cli import build_parser, main
from alfia.cli_options import N_BOOT

SHARED = ("--n-boot", "--schema", "--external", "--external-predictions", "--profile", "--style")
OLD_NAMES = ("--external-cohort", "--alfia-external", "--db")


def commands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {a.option_strings[-1]: a for a in parser._actions if a.option_strings and a.dest != "help"}


@pytest.mark.parametrize("command", list(commands()))
def test_help_explains_every_flag(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    shown = capsys.readouterr().out
    for name, action in options(commands()[command]).items():
        if action.help == argparse.SUPPRESS:
            assert name in OLD_NAMES and name not in shown, name  # hidden: only old spellings
            continue
        assert action.help and len(action.help) >= 8, f"{command} {name} has no help"
        assert name in shown
    for old in OLD_NAMES:
        assert old not in shown


def test_shared_flags_are_the_same_everywhere():
    seen: dict[str, list[tuple]] = {name: [] for name in SHARED}
    for command, parser in commands().items():
        for name, action in options(parser).items():
            if name in SHARED:
                seen[name].append((command, action.help, action.default, action.choices))
    assert len(seen["--n-boot"]) >= 5 and all(d == N_BOOT for _, _, d, _ in seen["--n-boot"])
    for name, uses in seen.items():
        assert uses, f"no command has {name}"
        assert len({(h, d, tuple(c or ())) for _, h, d, c in uses}) == 1, (name, uses)
    assert seen["--profile"][0][3] == ("paper", "quick") or set(seen["--profile"][0][3]) == {"paper", "quick"}
    assert set(seen["--style"][0][3]) == {"numeric", "banded"}


def test_old_flag_names_still_work():
    args = build_parser().parse_args(["leaderboard", "d", "--external-cohort", "p12-b", "--alfia-external", "x"])
    assert args.external == "p12-b" and args.external_predictions == "x"
    assert build_parser().parse_args(["cohort", "mimic-iv", "--db", "m.duckdb", "--out", "o"]).source == "m.duckdb"
