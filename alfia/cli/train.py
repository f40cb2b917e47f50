"""The ``train`` command: ALFIA on an encoded cohort; its flags become the training settings they name."""

from __future__ import annotations

import argparse

from alfia.cli.options import (
    TRAIN_FLAGS,
    add_backbone,
    add_device,
    add_n_boot,
    add_profile,
    byte_size,
    comma_list,
    positive_int,
)
from alfia.errors import AlfiaError, UsageError


def _read_encoded(path: str, schema: str | None = None):
    from alfia.cohorts import load_cohort

    cohort = load_cohort(path, schema=schema)
    if "text" not in cohort.df.columns:
        raise AlfiaError(f"{path} has no text column; run `alfia encode {path} --out ENCODED.parquet` first")
    return cohort


def cmd_train(args: argparse.Namespace) -> dict | None:
    from alfia import distributed as dist
    from alfia.evaluation.metrics import format_metrics
    from alfia.training.config import make_config
    from alfia.training.trainer import train

    config = make_config(args.profile, **_train_overrides(args))  # a SettingError names the flag (run_command)
    cohort = _read_encoded(args.cohort)
    if dist.is_main():
        print(f"settings: {config.describe()}", flush=True)
    metrics = train(cohort, args.out, config, backbone=args.backbone, resume=args.resume, finish=True,
                    n_boot=args.n_boot, device=args.device)
    if metrics is not None:  # under torchrun only rank 0 scores and writes
        print("test split (scored once, after training):")
        print(format_metrics(metrics["test"]))
    return metrics


def _train_overrides(args: argparse.Namespace) -> dict:
    """The flags given, as setting paths (``--lora-r 8`` -> ``model.lora.r``). A LoRA flag turns LoRA on, a readout
    flag the readout; ``--no-lora`` / ``--no-readout`` turn them off and refuse their own flags beside."""
    overrides = {path: getattr(args, dest) for dest, path in TRAIN_FLAGS.items() if getattr(args, dest) is not None}
    if args.bf16:   # the old spelling of --precision bf16
        if args.precision not in ("auto", "bf16"):
            raise UsageError(f"--bf16 with --precision {args.precision}: give one or the other")
        overrides["precision"] = "bf16"
    if args.lora_layers is not None:
        overrides["model.lora.layers"] = None if args.lora_layers == "all" else args.lora_layers
    for part, off, flags in (("lora", args.no_lora, ("--lora-r", "--lora-layers", "--lora-alpha", "--lora-dropout",
                                                    "--lora-targets")),
                             ("readout", args.readout is False, ("--readout-c",))):
        given = [flag for flag in flags if getattr(args, flag[2:].replace("-", "_")) is not None]
        if off and given:
            raise UsageError(f"--no-{part} with {given[0]}: give one or the other")
        if off:
            overrides[f"model.{part}"] = None
    if args.readout:
        overrides["model.readout"] = {}
    return overrides


def _lora_layers(value: str) -> int | str:
    return "all" if value == "all" else positive_int(value)


def add_commands(sub) -> None:
    p = sub.add_parser("train", help="train ALFIA on an encoded cohort")
    p.add_argument("cohort", help="encoded cohort (alfia encode)")
    p.add_argument("--out", required=True, help="run folder to create (model, encoder, metrics)")
    add_backbone(p)
    add_profile(p)
    p.add_argument("--epochs", type=positive_int, help="maximum epochs (default: the profile's)")
    p.add_argument("--lr", type=float, help="learning rate of the LoRA adapters (default: the profile's)")
    p.add_argument("--batch-size", type=positive_int, help="training batch (default: the profile's)")
    p.add_argument("--max-length", type=positive_int, help="tokens per text (default: the profile's; quick: the "
                   "backbone's maximum, capped at 512)")
    p.add_argument("--patience", type=positive_int, help="epochs without a better validation AUPRC before "
                   "stopping (default: the profile's)")
    p.add_argument("--fusion-layers", type=positive_int, help="N_f, the top layers fused (default 4)")
    p.add_argument("--lora-r", type=positive_int, help="LoRA rank (default 16; turns LoRA on)")
    p.add_argument("--lora-alpha", type=positive_int, help="LoRA scaling alpha (default 16; turns LoRA on)")
    p.add_argument("--lora-dropout", type=float, help="LoRA dropout (default 0.05; turns LoRA on)")
    p.add_argument("--lora-layers", type=_lora_layers, help="LoRA on the top k layers, or 'all' "
                   "(default: the profile's; turns LoRA on)")
    p.add_argument("--lora-targets", type=comma_list, metavar="NAMES",
                   help="comma-separated module names that get LoRA, matched as peft does (by suffix; or all-linear); "
                   "they must cover every adapted layer's query, key, value and attention output (default: the "
                   "backbone family's, docs/model.md; turns LoRA on)")
    p.add_argument("--no-lora", action="store_true", help="train fusion + head only (the quick profile's default)")
    p.add_argument("--attn-implementation", choices=("auto", "sdpa", "eager"),
                   help="attention kernels: auto (default) is SDPA where the backbone family has it, else eager")
    p.add_argument("--head-lr", type=float, help="learning rate of fusion, head and readout (default: the profile's)")
    p.add_argument("--readout", action=argparse.BooleanOptionalAction, default=None,
                   help="add the pooled logistic-regression readout to the head's logit (default: quick yes, paper no)")
    p.add_argument("--readout-c", type=float, help="inverse L2 strength of the readout's starting fit (default 0.3; "
                   "turns the readout on)")
    p.add_argument("--distill", type=float, help="weight of the tabular teacher's out-of-fold probabilities in "
                   "the target, 0-1 (default: quick 1, paper 0)")
    p.add_argument("--class-weight", action=argparse.BooleanOptionalAction, default=None,
                   help="pos_weight = negatives/positives in the loss (default: quick no, paper yes)")
    p.add_argument("--calibration", choices=("none", "platt", "temperature"),
                   help="recalibration fitted on the validation split (default platt)")
    p.add_argument("--eval-batch-size", type=positive_int, help="stays per batch in validation, caching and the "
                   "final scoring (default 32)")
    p.add_argument("--grad-accum", type=positive_int, help="micro-batches per optimiser step (default 1): the "
                   "effective batch is --batch-size x --grad-accum x processes")
    p.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction, default=None,
                   help="recompute the backbone's activations in backward: less GPU memory, ~1/3 more compute")
    p.add_argument("--weight-decay", type=float, help="AdamW weight decay (default 0.01)")
    p.add_argument("--warmup", type=float, help="share of the optimiser steps spent warming up (default 0.1)")
    p.add_argument("--seed", type=int, help="random seed of the initial weights and batch order (default 42)")
    add_device(p)
    p.add_argument("--dtype", choices=("fp32", "bf16", "fp16"), help="the backbone's weights in memory (default "
                   "fp32, whatever dtype the checkpoint was saved in)")
    p.add_argument("--bf16", action="store_true", help=argparse.SUPPRESS)   # the old spelling of --precision bf16
    p.add_argument("--cache-budget", type=byte_size, help="memory the frozen-layer cache may take, e.g. 8G "
                   "(default: a quarter of the available memory); above it the cache is a file in the run folder")
    add_n_boot(p)
    p.add_argument("--resume", action="store_true", help="continue from the last completed epoch")
    p.add_argument("--mlflow", metavar="URI", help="also log the run to MLflow (the same as ALFIA_MLFLOW_URI)")
    p.add_argument("--json", action="store_true", help="print the test metrics as JSON (progress on stderr)")
    p.set_defaults(func=cmd_train)
