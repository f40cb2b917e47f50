"""What every ``alfia`` command shares: flag definitions, their defaults, exit statuses and logging.

One definition per shared flag keeps names, help and defaults identical across commands (a test walks every
command's ``--help`` to check it). Exit status: 0 success, 1 bad data (an ``AlfiaError``), 2 usage errors (argparse's
own and ``UsageError``), 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import sys
from collections.abc import Callable

from alfia.cli import EXIT_INTERRUPTED, interrupted
from alfia.errors import AlfiaError, SettingError, UsageError

N_BOOT = 1000  # bootstrap resamples for every 95% CI a command reports
BATCH_SIZE = 32  # inference batch
EXIT_OK, EXIT_BAD_DATA, EXIT_USAGE = 0, 1, 2


def whole_number(value: str, least: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}, got {number}")
    return number


def positive_int(value: str) -> int:
    return whole_number(value, 1)


def non_negative_int(value: str) -> int:
    return whole_number(value, 0)


def add_n_boot(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n-boot", type=non_negative_int, default=N_BOOT,
                   help=f"bootstrap resamples for the 95%% CIs (default {N_BOOT}; 0 skips the intervals)")


def add_schema(p: argparse.ArgumentParser) -> None:
    p.add_argument("--schema", help="schema of a plain parquet table without ALFIA metadata (physionet2012, "
                   "mimic-iv, eicu or a registered data set)")


def add_device(p: argparse.ArgumentParser) -> None:
    """``--device`` and ``--precision``: where and how a command's model computes (alfia.model.runtime). No
    ``--precision`` (None) is a trained run's own precision where the device computes it (the commands that load a
    run), and auto for a run being trained."""
    from alfia.model.runtime import DEVICE_HELP, PRECISION_HELP, PRECISIONS, RUN_PRECISION_HELP

    p.add_argument("--device", default="auto", help=f"where the model runs: {DEVICE_HELP} (default auto)")
    p.add_argument("--precision", choices=PRECISIONS, default=None, help=f"how it computes: {PRECISION_HELP} "
                   f"(default: {RUN_PRECISION_HELP})")


def byte_size(value: str) -> int:
    """``8G``, ``512MiB``, ``1.5GB``, ``0`` or a number of bytes (powers of 1024)."""
    units = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
    text = value.strip().lower().removesuffix("ib").removesuffix("b")
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "")
    try:
        size = float(number) * units[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a size; write e.g. 8G, 512M or 0") from None
    if size < 0:
        raise argparse.ArgumentTypeError(f"a size cannot be negative, got {value!r}")
    return int(size)


def add_batch_size(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch-size", type=positive_int, default=BATCH_SIZE,
                   help=f"stays per inference batch (default {BATCH_SIZE})")


def add_external(p: argparse.ArgumentParser, *old_names: str) -> None:
    """``--external``: the external cohort (a file or a bundled name), scored on all rows. ``old_names``: earlier
    spellings, still accepted and hidden from the help."""
    p.add_argument("--external", help="external cohort, scored on all rows (a parquet file, or p12-b)")
    for name in old_names:
        p.add_argument(name, dest="external", help=argparse.SUPPRESS)


def add_external_predictions(p: argparse.ArgumentParser, *old_names: str) -> None:
    p.add_argument("--external-predictions", help="ALFIA's predictions on the external cohort (`alfia predict` "
                   "output, e.g. study/p12-b.predictions.parquet, with its .metrics.json beside it)")
    for name in old_names:
        p.add_argument(name, dest="external_predictions", help=argparse.SUPPRESS)


def add_input(p: argparse.ArgumentParser, name: str, help: str, old_flag: str) -> None:
    """A positional input (``alfia COMMAND INPUT... --out OUT``), still accepted under its old flag name."""
    p.add_argument(name, nargs="?", help=help)
    p.add_argument(old_flag, dest=f"{name}_flag", help=argparse.SUPPRESS)


def get_input(args: argparse.Namespace, name: str) -> str:
    value, old = getattr(args, name), getattr(args, f"{name}_flag")
    if value and old and value != old:
        raise UsageError(f"{name} given twice ({value} and {old}); give it once, as `alfia {args.command} "
                         f"{name.upper()} ...`")
    if not (value or old):
        raise UsageError(f"`alfia {args.command}` needs its {name}: `alfia {args.command} {name.upper()} ...`")
    return value or old


def add_backbone(p: argparse.ArgumentParser, **kwargs) -> None:
    from alfia.model.backbone import BACKBONE_HELP

    p.add_argument("--backbone", help=f"{BACKBONE_HELP} (default: the packaged all-MiniLM-L6-v2)", **kwargs)


def comma_list(value: str) -> tuple[str, ...]:
    items = tuple(v.strip() for v in value.split(","))
    if not all(items):
        raise argparse.ArgumentTypeError(f"{value!r} is not a comma-separated list of names")
    return items


def add_profile(p: argparse.ArgumentParser, *old_names: str, default: str = "quick") -> None:
    """``--profile``: one of the registered profiles (alfia.training.config.PROFILES), the one flag that chooses the
    settings of every command that trains. ``old_names``: earlier spellings (``--preset``, ``--setting``), accepted
    for one release with a deprecation line on stderr, hidden from the help."""
    from alfia.training.config import PROFILES

    choices = tuple(PROFILES)
    p.add_argument("--profile", choices=choices, default=default,
                   help="; ".join(profile.help for profile in PROFILES.values()) + " (default %(default)s)")
    for name in old_names:
        p.add_argument(name, dest="profile", choices=choices, action=DeprecatedFlag, new="--profile",
                       help=argparse.SUPPRESS)


class DeprecatedFlag(argparse.Action):
    """An old spelling of a flag: stores its value as the new flag does and prints one deprecation line on
    stderr."""

    def __init__(self, option_strings, dest, new: str, **kwargs):
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"warning: {option_string} is deprecated and will be removed in the next release; use {self.new}",
              file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_style(p: argparse.ArgumentParser) -> None:
    from alfia.text.encoder import DEFAULT_STYLE, STYLES

    p.add_argument("--style", choices=STYLES, help=f"clinical text style (default {DEFAULT_STYLE})")


def add_mlflow(p: argparse.ArgumentParser) -> None:
    """``--mlflow URI``: the command passes it down to where its folders' manifests are written (alfia.manifest);
    without it, ``ALFIA_MLFLOW_URI`` still turns the logging on."""
    p.add_argument("--mlflow", metavar="URI", help="also log each folder written (a study's and its run's) to the "
                   "MLflow tracking store at URI (default: ALFIA_MLFLOW_URI when set, else no logging)")


def add_verbosity(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="more log lines on stderr (-v: debug)")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr")


def setup_logging(verbose: int = 0, quiet: bool = False) -> None:
    """The library logs to ``logging.getLogger("alfia")``; the command line shows it on stderr."""
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    logger = logging.getLogger("alfia")
    logger.setLevel(level)
    # the command owns its stderr: a library that configures the root logger (a bare logging.info() in one of
    # the baselines' dependencies does) must not print every line twice
    logger.propagate = False
    if not any(getattr(h, "alfia_cli", False) for h in logger.handlers):
        handler = StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.alfia_cli = True
        logger.addHandler(handler)


class StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at each record: a caller (a test, a notebook) may replace it."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ sets it; the current sys.stderr always wins
        pass


@functools.cache
def setting_flags() -> dict[str, str]:
    """Every training setting that has a flag, by path (``model.lora.r`` -> ``--lora-r``): declared on the config
    fields themselves (alfia.codec.setting), so a new setting is one field."""
    from alfia.codec import settings_of
    from alfia.training.config import TrainConfig

    flags = {path: f.metadata["flag"] for path, f, _ in settings_of(TrainConfig) if f.metadata.get("flag")}
    return {**flags, "precision": "--precision"}


def flag_of(field: str) -> str:
    """The flag of a setting the library named: ``batch_size`` -> ``--batch-size``, ``model.lora.r`` ->
    ``--lora-r``; a training setting without a flag keeps its path."""
    flags = setting_flags()
    if field in flags:
        return flags[field]
    return field if "." in field else "--" + field.replace("_", "-")


def run_command(func: Callable[[argparse.Namespace], None], args: argparse.Namespace) -> int:
    """Run a command; an error becomes one line on stderr and its exit status. ``--json``: stdout holds the
    command's returned results alone, as JSON (progress lines go to stderr). A command's ``--mlflow URI`` is passed
    down by the command itself, as an argument (``add_mlflow``)."""
    try:
        if getattr(args, "json", False):
            with contextlib.redirect_stdout(sys.stderr):
                result = func(args)
            print(json.dumps(result, indent=2))
        else:
            func(args)
    except SettingError as exc:  # the library names the setting; the user typed its flag
        print(f"error: {exc.named(flag_of)}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except AlfiaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_DATA
    except BaseException as exc:
        if not interrupted(exc):
            raise
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK
