"""The ``bench`` command: ALFIA's speed against the authors' reference setup (``--profile quick``,
:mod:`alfia.bench.quick`) or in the paper's setting on a GPU (``--profile paper``, :mod:`alfia.bench.paper`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from alfia.cli.options import add_backbone, add_batch_size, add_device, add_profile, positive_int
from alfia.errors import AlfiaError, UsageError

BENCHES = ("quick", "paper")  # the profiles alfia bench measures (alfia.bench.quick, alfia.bench.paper)


def _sizes(value: str) -> list[int]:
    try:
        sizes = [int(x) for x in value.split(",") if x.strip()]
    except ValueError:
        raise AlfiaError(f"--sizes must be comma-separated numbers of stays, got {value!r}") from None
    if not sizes or min(sizes) < 1:
        raise AlfiaError(f"--sizes must be positive numbers of stays, got {value!r}")
    return sizes


def cmd_bench(args: argparse.Namespace) -> None:
    if not str(args.out).endswith(".json"):
        raise UsageError(f"--out must name a .json file, got {args.out!r}")
    if args.profile not in BENCHES:
        raise UsageError(f"alfia bench measures the {' or '.join(BENCHES)} profile; --profile {args.profile} is "
                         "not one")
    if args.profile == "paper":
        return cmd_paper_bench(args)
    from alfia.bench.quick import run_bench
    from alfia.bench.report import quick_markdown

    if args.tiny or args.steps:
        raise UsageError("--tiny and --steps are options of --profile paper; add --profile paper")
    r = run_bench(args.out, stays=args.stays, sizes=_sizes(args.sizes) if args.sizes else None,
                  backbone=args.backbone, epochs=args.epochs, batch_size=args.batch_size,
                  reference_stays=args.reference_stays, reference_steps=args.reference_steps,
                  int8=not args.no_int8, exact_check=not args.no_exact, threads=args.threads,
                  device=args.device, precision=args.precision or "auto")   # the bench trains: auto
    print(quick_markdown(r))
    print(f"wrote {args.out} and {Path(args.out).with_suffix('.md')}")


def cmd_paper_bench(args: argparse.Namespace) -> None:
    from alfia.bench.paper import run_paper_bench
    from alfia.bench.report import paper_markdown

    r = run_paper_bench(args.out, device=args.device, precision=args.precision or "auto", tiny=args.tiny,
                        backbone=args.backbone, steps=args.steps, threads=args.threads)
    print(paper_markdown(r))
    print(f"wrote {args.out} and {Path(args.out).with_suffix('.md')}")


def add_paper_options(p: argparse.ArgumentParser) -> None:
    from alfia.bench.paper import FULL, TINY

    p.add_argument("--tiny", action="store_true", help="--profile paper: a tiny BERT shape instead of BERT-large, "
                   f"batch {TINY.batch_size} x {TINY.tokens} tokens, {TINY.steps} step(s): a smoke run, not a "
                   "measurement")
    p.add_argument("--steps", type=positive_int, help="--profile paper: timed training steps and inference batches "
                   f"(default {FULL.steps}; {TINY.steps} with --tiny)")


def add_commands(sub) -> None:
    p = sub.add_parser("bench", help="inference and training speed against the reference HF setup (--profile "
                       "quick) or in the paper's setting on a GPU (--profile paper, docs/speed.md)")
    p.add_argument("--out", required=True, help="results .json (a .md table is written beside it)")
    add_profile(p)
    add_device(p)
    p.add_argument("--stays", type=positive_int, default=1000,
                   help="stays for alfia inference and training (default 1000)")
    p.add_argument("--sizes", help="inference sweep, e.g. 1000,2000,4000,8000 (texts repeated; default --stays)")
    add_backbone(p)
    p.add_argument("--epochs", type=positive_int, default=1, help="quick-profile epochs timed (default 1)")
    add_batch_size(p)
    p.add_argument("--reference-stays", type=positive_int, default=256,
                   help="reference inference sample (default 256)")
    p.add_argument("--reference-steps", type=positive_int, default=64, help="reference training steps (default 64)")
    p.add_argument("--threads", type=positive_int, help="torch threads (default: torch's choice)")
    p.add_argument("--no-int8", action="store_true", help="skip the int8 inference path")
    p.add_argument("--no-exact", action="store_true",
                   help="skip the quality check (the same training without the frozen-layer cache)")
    add_paper_options(p)
    p.set_defaults(func=cmd_bench)
