"""Every command's --help: each flag explained, shared flags spelled, explained and defaulted the same everywhere."""

import argparse

import pytest

from alfia.cli import build_parser, main
from alfia.cli.options import N_BOOT

SHARED = ("--n-boot", "--schema", "--external", "--external-predictions", "--profile", "--style", "--device",
          "--precision")
OLD_NAMES = ("--external-cohort", "--alfia-external", "--db", "--cohort", "--run", "--bf16", "--preset",
             "--setting")  # hidden, accepted


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
    positional = [a for a in commands()[command]._actions if not a.option_strings]
    assert all(a.help and a.dest in shown for a in positional), command


def test_shared_flags_are_the_same_everywhere():
    seen: dict[str, list[tuple]] = {name: [] for name in SHARED}
    for command, parser in commands().items():
        for name, action in options(parser).items():
            if name in SHARED:
                seen[name].append((command, action.help, action.default, action.choices))
    assert len(seen["--n-boot"]) >= 5 and all(d == N_BOOT for _, _, d, _ in seen["--n-boot"])
    for name, uses in seen.items():
        assert uses, f"no command has {name}"
        # --profile: one registry, one help; its default is the command's own (ablate: the ablation profile)
        assert len({(h, d if name != "--profile" else None, tuple(c or ())) for _, h, d, c in uses}) == 1, (name, uses)
    from alfia.training.config import PROFILES

    assert {command for command, *_ in seen["--profile"]} == {"train", "baselines", "boost", "ablate", "bench",
                                                              "study"}
    assert set(seen["--profile"][0][3]) == set(PROFILES) >= {"quick", "paper", "ablation"}
    assert {command: d for command, _, d, _ in seen["--profile"]} == {
        "train": "quick", "baselines": "quick", "boost": "quick", "ablate": "ablation", "bench": "quick",
        "study": "quick"}
    assert set(seen["--style"][0][3]) == {"numeric", "banded"}


def test_old_flag_names_still_work():
    args = build_parser().parse_args(["leaderboard", "d", "--external-cohort", "p12-b", "--alfia-external", "x"])
    assert args.external == "p12-b" and args.external_predictions == "x"
    assert build_parser().parse_args(["cohort", "mimic-iv", "--db", "m.duckdb", "--out", "o"]).source == "m.duckdb"


def test_inputs_are_positional_everywhere():
    from alfia.cli.options import get_input
    from alfia.errors import UsageError

    new = build_parser().parse_args(["boost", "RUN", "p12-a", "--out", "o"])
    old = build_parser().parse_args(["boost", "--run", "RUN", "--cohort", "p12-a", "--out", "o"])
    for args in (new, old):
        assert (get_input(args, "run"), get_input(args, "cohort")) == ("RUN", "p12-a")
    with pytest.raises(UsageError, match="needs its cohort"):
        get_input(build_parser().parse_args(["baselines", "--out", "o"]), "cohort")
    with pytest.raises(UsageError, match="given twice"):
        get_input(build_parser().parse_args(["baselines", "a.parquet", "--cohort", "b.parquet", "--out", "o"]),
                  "cohort")
