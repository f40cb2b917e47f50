"""The ``study`` command: the main job, the whole study in one run (alfia.study)."""

from __future__ import annotations

import argparse

from alfia.cli.options import add_device, add_external, add_mlflow, add_profile, add_style, positive_int


def cmd_study(args: argparse.Namespace) -> None:
    from alfia.study import run_study

    run_study(args.out, style=args.style, profile=args.profile, cohort=args.cohort, external=args.external,
              device=args.device, precision=args.precision, mlflow=args.mlflow, seeds=args.seeds)


def add_commands(sub) -> None:
    p = sub.add_parser("study", help="the main job: the whole study (default: the bundled PhysioNet 2012 cohorts)")
    p.add_argument("cohort", nargs="?", help="development cohort with train/val/test splits (a parquet file or "
                   "bundled name; default: the study its data set declares, p12-a with --external p12-b)")
    add_external(p)
    p.add_argument("--out", default="study", help="output folder (default study)")
    p.add_argument("--seeds", type=positive_int, default=1, help="train every model N times, each with its seed + "
                   "0..N-1 (ALFIA 42 + r, AutoGluon's models 0 + r), and write the spread over the seeds and the "
                   "headline comparisons per seed and pooled to seeds.md (default 1: the single-seed study)")
    add_style(p)
    add_profile(p)
    add_device(p)
    add_mlflow(p)
    p.set_defaults(func=cmd_study)
