"""The ``alfia`` command: a thin layer over the Python API.

Every command validates its inputs, writes outputs atomically, and turns an ``AlfiaError`` into one line on
stderr with exit status 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from alfia import __version__
from alfia.errors import AlfiaError

COHORT_NAMES = ("physionet2012", "p12-a", "p12-b", "synth-mimic-iv", "synth-eicu")


def _existing_file(path: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise AlfiaError(f"{p} does not exist; check the path")
    return p


# -- cohort -------------------------------------------------------------------------------------
def cmd_cohort(args: argparse.Namespace) -> None:
    from alfia.cohorts import write_cohort

    name = args.name
    if name == "physionet2012":
        if not args.source:
            raise AlfiaError("`alfia cohort physionet2012` needs --source (a set-X directory or set-X.tar.gz)")
        from alfia.cohorts.physionet2012 import build_physionet2012

        cohort = build_physionet2012(_existing_file(args.source), args.outcomes)
    elif name in ("p12-a", "p12-b"):
        from alfia.cohorts.bundled import load_bundled

        cohort = load_bundled(name)
    elif name in ("synth-mimic-iv", "synth-eicu"):
        from alfia.cohorts.synthetic import generate_synthetic

        if args.n < 1:
            raise AlfiaError("--n must be a positive number of stays")
        cohort = generate_synthetic(name.removeprefix("synth-"), n=args.n, seed=args.seed)
    else:
        raise AlfiaError(f"unknown cohort {name!r}; choose one of {', '.join(COHORT_NAMES)}")
    write_cohort(cohort, args.out)
    y = cohort.df["hospital_mortality"]
    counts = cohort.df["split"].value_counts()
    note = " [SYNTHETIC: says nothing about patients]" if cohort.synthetic else ""
    print(f"wrote {args.out}: {len(y):,} stays, {int(y.sum()):,} deaths ({y.mean():.2%}); split "
          + "/".join(f"{counts.get(s, 0):,}" for s in ("train", "val", "test")) + " train/val/test" + note)


# -- table1 -------------------------------------------------------------------------------------
def cmd_table1(args: argparse.Namespace) -> None:
    from alfia.cohorts import read_cohort
    from alfia.cohorts.table1 import table1, to_markdown
    from alfia.io import atomic_path, write_text_atomic

    cohort = read_cohort(args.cohort, schema=args.schema)
    table = table1(cohort)
    text = to_markdown(table, title=_table1_title(cohort))
    print(text)
    if args.out:
        out = Path(args.out)
        if out.suffix == ".csv":
            with atomic_path(out) as tmp:
                table.to_csv(tmp, index=False)
        else:
            write_text_atomic(out, text + "\n")


def _table1_title(cohort) -> str:
    title = f"Table 1: baseline characteristics by hospital mortality ({cohort.info.get('source', cohort.schema.name)})"
    if cohort.synthetic:
        title += " - SYNTHETIC: says nothing about patients"
    return title


# -- encode -------------------------------------------------------------------------------------
def cmd_encode(args: argparse.Namespace) -> None:
    from alfia.cohorts import Cohort, read_cohort, write_cohort
    from alfia.text.encoder import DEFAULT_STYLE, TextEncoder, load_encoder
    from alfia.text.stats import token_lengths

    cohort = read_cohort(args.cohort, schema=args.schema)
    if args.encoder:
        if args.style:
            raise AlfiaError("--style and --encoder exclude each other: a reused encoder keeps its own style")
        encoder = load_encoder(_existing_file(args.encoder))
        if encoder.schema_name != cohort.schema.name:
            raise AlfiaError(f"the encoder {args.encoder} was built for schema {encoder.schema_name!r}, "
                             f"the cohort is {cohort.schema.name!r}")
    else:
        encoder = TextEncoder(cohort.schema.name, style=args.style or DEFAULT_STYLE).fit(cohort.df)
    df = cohort.df.copy()
    df["text"] = encoder.transform(df)
    info = {**cohort.info, "text_encoder": encoder.to_dict()}
    write_cohort(Cohort(df=df, schema=cohort.schema, info=info), args.out)
    lengths = token_lengths(df["text"].tolist())
    print(f"wrote {args.out}: {len(df):,} texts, style {encoder.style}; default-backbone tokens "
          f"p50 {lengths.p50:.0f}, p95 {lengths.p95:.0f}, max {lengths.max}")


# -- study --------------------------------------------------------------------------------------
def cmd_study(args: argparse.Namespace) -> None:
    from alfia.study import run_study

    run_study(args.out, style=args.style)


# -- parser -------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alfia", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"alfia {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("cohort", help="build a cohort table (one row per ICU stay)")
    p.add_argument("name", help=f"one of {', '.join(COHORT_NAMES)}")
    p.add_argument("--out", required=True, help="output parquet file")
    p.add_argument("--source", help="physionet2012: a set-X directory or set-X.tar.gz")
    p.add_argument("--outcomes", help="physionet2012: the Outcomes-X.txt file (default: beside --source)")
    p.add_argument("--n", type=int, default=20000, help="synthetic cohorts: number of stays")
    p.add_argument("--seed", type=int, default=42, help="synthetic cohorts: random seed")
    p.set_defaults(func=cmd_cohort)

    p = sub.add_parser("table1", help="baseline characteristics stratified by outcome")
    p.add_argument("cohort")
    p.add_argument("--schema", help="schema of a plain parquet table without ALFIA metadata")
    p.add_argument("--out", help="write the table as .csv or .md")
    p.set_defaults(func=cmd_table1)

    p = sub.add_parser("encode", help="add the clinical text column")
    p.add_argument("cohort")
    p.add_argument("--out", required=True, help="output parquet file")
    p.add_argument("--style", help="numeric or banded (default: banded)")
    p.add_argument("--encoder", help="reuse a saved text encoder: an encoded cohort, a run folder or its "
                   "encoder.json (e.g. set A's for external set B)")
    p.add_argument("--schema", help="schema of a plain parquet table without ALFIA metadata")
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser("study", help="the main job on the bundled PhysioNet 2012 cohorts")
    p.add_argument("--out", default="study", help="output folder")
    p.add_argument("--style", help="text style (default: banded)")
    p.set_defaults(func=cmd_study)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    try:
        args.func(args)
    except AlfiaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    if getattr(args, "timing", False):
        print(f"{args.command} took {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
