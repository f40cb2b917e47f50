"""The ``report`` and ``ablate`` commands: the HTML page about a run, and the ablations."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from alfia.cli.options import (
    add_device,
    add_external,
    add_external_predictions,
    add_n_boot,
    add_profile,
    non_negative_int,
    positive_int,
)
from alfia.errors import AlfiaError
from alfia.model.backbone import BACKBONE_HELP


def cmd_report(args: argparse.Namespace) -> None:
    from alfia.analysis.report import build_report
    from alfia.api import find_run_cohort
    from alfia.text.inputs import load_input

    run = Path(args.run)
    if not run.is_dir():
        raise AlfiaError(f"run folder {run} does not exist; train one with `alfia train`")
    cohort = load_input(args.cohort, encoded=True) if args.cohort else find_run_cohort(run)
    if cohort is None:
        logging.getLogger("alfia").warning("note: no --cohort given and none found beside the run: "
                                           "sections 1, 4, 5 and 6 will be partial")
    for flag, value in (("--baselines", args.baselines), ("--ablation", args.ablation)):
        if value and not Path(value).is_dir():
            raise AlfiaError(f"{flag} {value} is not a folder")
    for flag, value in (("--external-predictions", args.external_predictions), ("--bench", args.bench)):
        if value and not Path(value).is_file():
            raise AlfiaError(f"{flag} {value} does not exist")
    path = build_report(run, args.out, baselines=args.baselines, ablation=args.ablation, cohort=cohort,
                        external_predictions=args.external_predictions, bench=args.bench,
                        max_stays=args.max_stays, projection=args.projection, n_boot=args.n_boot,
                        classifier=args.classifier, include_texts=not args.no_texts, device=args.device,
                        precision=args.precision)
    print(f"wrote {path}")


def cmd_ablate(args: argparse.Namespace) -> None:
    from alfia.analysis.ablation import run_ablation
    from alfia.text.inputs import load_input

    cohort = load_input(args.cohort, encoded=True)
    backbones = [b.strip() or None for given in args.backbone for b in given.split(",")] if args.backbone else None
    variants = [v.strip() for v in args.variants.split(",")] if args.variants else None
    overrides = {"epochs": args.epochs} if args.epochs else {}
    external = load_input(args.external, training=cohort)
    name = Path(str(args.external)).stem if args.external else "external"
    path = run_ablation(cohort, args.out, backbones=backbones, variants=variants, n_boot=args.n_boot,
                        profile=args.profile, external=external, external_name=name, boost=args.boost,
                        baselines=args.baselines, speed_stays=args.speed_stays, **overrides)
    print(Path(path).with_suffix(".md").read_text())
    print(f"wrote {path}")


def add_commands(sub) -> None:
    from alfia.analysis.ablation import REFERENCE  # here: the module imports torch

    p = sub.add_parser("report", help="one self-contained HTML page about a trained run (figures + numbers)")
    p.add_argument("run", help="run folder written by `alfia train` / `alfia study`")
    p.add_argument("--baselines", help="folder with results.json and predictions.parquet of the baselines")
    p.add_argument("--ablation", help="folder written by `alfia ablate`")
    p.add_argument("--cohort", help="the run's cohort (encoded parquet or p12-a); default: found beside the run")
    add_external_predictions(p)
    p.add_argument("--bench", help="benchmark JSON (…_infer_ms_per_sample keys)")
    p.add_argument("--out", help="the HTML file (default RUN/report.html)")
    p.add_argument("--max-stays", type=positive_int, default=1000,
                   help="latent space: at most this many train (classifier) and test stays (default 1000)")
    p.add_argument("--projection", choices=("umap", "pca"), default="umap", help="latent-space maps (default umap)")
    p.add_argument("--classifier", choices=("auto", "autogluon", "mlp"), default="auto",
                   help="latent space downstream classifier (auto: AutoGluon NN_TORCH if installed, else MLP)")
    add_n_boot(p)
    p.add_argument("--no-texts", action="store_true", help="leave every patient text and stay id out of the page")
    add_device(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("ablate", help="ablations: pre-trained vs random init, LoRA, N_f, fusion vs mean pooling")
    p.add_argument("cohort", help="encoded cohort parquet (or p12-a)")
    p.add_argument("--out", required=True, help="output folder (one run folder per variant)")
    p.add_argument("--backbone", action="append", help=f"a backbone to compare: {BACKBONE_HELP}; repeat the flag "
                   "(or separate by commas) for several, the first gets every variant (default: all-MiniLM-L6-v2)")
    p.add_argument("--variants", help="comma-separated subset of: default, random-init, no-lora, nf1, nf2, nf6, "
                                      "mean-pool")
    add_profile(p, "--setting", default="ablation")  # a training profile as it is, or the ablation's budget
    p.add_argument("--epochs", type=positive_int, help="override the profile's epochs")
    add_external(p)
    p.add_argument("--boost", action="store_true", help="also train and score ALFIA-boost on each run (with the "
                   "external cohort where one is given)")
    p.add_argument("--baselines", help="folder of `alfia baselines` on the same cohort: adds its "
                   f"{REFERENCE} as the tabular reference row")
    p.add_argument("--speed-stays", type=non_negative_int, default=64,
                   help="test stays every run's model scores back to back for the inference ms/stay (default 64; "
                        "0 skips the timing)")
    add_n_boot(p)
    p.set_defaults(func=cmd_ablate)
