"""The ``train`` command: ALFIA on a cohort; its flags become the training settings they name."""

from __future__ import annotations

import argparse

from alfia.cli.options import (
    add_device,
    add_mlflow,
    add_n_boot,
    add_profile,
    add_schema,
    add_style,
    byte_size,
    comma_list,
    setting_flags,
    whole_number,
)
from alfia.errors import UsageError


def cmd_train(args: argparse.Namespace) -> dict | None:
    from alfia import distributed as dist
    from alfia.evaluation.metrics import format_metrics
    from alfia.text.encoder import DEFAULT_STYLE
    from alfia.text.inputs import load_input
    from alfia.training.config import make_config
    from alfia.training.trainer import train

    config = make_config(args.profile, **_train_overrides(args))  # a SettingError names the flag (run_command)
    cohort = load_input(args.cohort, args.schema, encoded=True, style=args.style or DEFAULT_STYLE)
    if dist.is_main():
        print(f"settings: {config.describe()}", flush=True)
    metrics = train(cohort, args.out, config, backbone=args.backbone, resume=args.resume, finish=True,
                    n_boot=args.n_boot, device=args.device, mlflow=args.mlflow)
    if metrics is not None:  # under torchrun only rank 0 scores and writes
        print("test split (scored once, after training):")
        print(format_metrics(metrics["test"]))
    return metrics


def _train_overrides(args: argparse.Namespace) -> dict:
    """The flags given, as setting paths (``--lora-r 8`` -> ``model.lora.r``). A LoRA flag turns LoRA on, a readout
    flag the readout; ``--no-lora`` / ``--no-readout`` turn them off and refuse their own flags beside."""
    overrides = {path: getattr(args, dest_of(flag)) for path, flag in setting_flags().items()
                 if getattr(args, dest_of(flag)) is not None}
    if args.bf16:   # the old spelling of --precision bf16
        if args.precision not in (None, "auto", "bf16"):
            raise UsageError(f"--bf16 with --precision {args.precision}: give one or the other")
        overrides["precision"] = "bf16"
    if args.lora_layers is not None:
        overrides["model.lora.layers"] = None if args.lora_layers == "all" else args.lora_layers
    for part, off in (("lora", args.no_lora), ("readout", args.readout is False)):
        given = part_flags_given(args, f"model.{part}")
        if off and given:
            raise UsageError(f"--no-{part} with {given[0]}: give one or the other")
        if off:
            overrides[f"model.{part}"] = None
    if args.readout:
        overrides["model.readout"] = {}
    return overrides


def part_flags_given(args: argparse.Namespace, part: str) -> list[str]:
    """The flags given of the settings inside an optional part (``model.lora``: ``--lora-r``, ``--lora-alpha`` ...),
    found from the part's declared settings (alfia.codec.setting), so that a new setting of the part is one field."""
    return [flag for path, flag in setting_flags().items()
            if path.startswith(part + ".") and getattr(args, dest_of(flag), None) is not None]


def _lora_layers(value: str) -> int | str:
    return "all" if value == "all" else whole_number(value, 1)


PARSERS = {"size": byte_size, "list": comma_list, "layers": _lora_layers}   # a setting's ``parse`` -> its reader


def add_setting_flags(p: argparse.ArgumentParser) -> None:
    """A flag for every training setting that declares one (alfia.training.config.TrainConfig and the model's
    config inside it): its help, type and choices from the field; no default, so that a flag not given leaves the
    profile's value. Ranges are checked by the settings themselves (a SettingError names the flag)."""
    from alfia.codec import OneOf, settings_of
    from alfia.training.config import TrainConfig

    for _, field, kind in settings_of(TrainConfig):
        flag = field.metadata.get("flag")
        if not flag:
            continue
        options = {"help": field.metadata["help"], "default": None, "dest": dest_of(flag)}
        if kind is bool:
            options["action"] = argparse.BooleanOptionalAction
        else:
            options["type"] = PARSERS.get(field.metadata.get("parse"), kind)
        if isinstance(field.metadata.get("check"), OneOf):
            options["choices"] = field.metadata["check"].choices
        p.add_argument(flag, **options)


def dest_of(flag: str) -> str:
    return flag.removeprefix("--").replace("-", "_")


def add_commands(sub) -> None:
    p = sub.add_parser("train", help="train ALFIA on a cohort (encoded, or encoded as it is read)")
    p.add_argument("cohort", help="cohort: encoded (alfia encode), or encoded now in --style with cut points from "
                   "its train split")
    p.add_argument("--out", required=True, help="run folder to create (model, encoder, metrics)")
    add_profile(p)
    add_setting_flags(p)
    add_schema(p)
    add_style(p)
    p.add_argument("--no-lora", action="store_true", help="train fusion + head only (the quick profile's default)")
    p.add_argument("--readout", action=argparse.BooleanOptionalAction, default=None,
                   help="add the pooled logistic-regression readout to the head's logit (default: quick yes, paper no)")
    add_device(p)
    p.add_argument("--bf16", action="store_true", help=argparse.SUPPRESS)   # the old spelling of --precision bf16
    add_n_boot(p)
    p.add_argument("--resume", action="store_true", help="continue from the last completed epoch")
    add_mlflow(p)
    p.add_argument("--json", action="store_true", help="print the test metrics as JSON (progress on stderr)")
    p.set_defaults(func=cmd_train)
