"""The ``cohort``, ``table1`` and ``encode`` commands: a cohort table, its baseline characteristics, its texts."""

from __future__ import annotations

import argparse
from pathlib import Path

from alfia.cli.options import add_schema, add_style, positive_int
from alfia.errors import AlfiaError, UsageError
from alfia.text.inputs import load_input


def _existing_file(path: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise AlfiaError(f"{p} does not exist; check the path")
    return p


def cmd_cohort(args: argparse.Namespace) -> None:
    from alfia.cohorts.registry import BuildOptions, write_built_cohort

    options = BuildOptions(source=args.source, outcomes=args.outcomes, patients=args.patients, n=args.n,
                           seed=args.seed, labels=args.labels, task=args.task, concepts=args.concepts,
                           features_of=args.features_of, max_codes=args.max_codes, min_share=args.min_share,
                           codes=tuple(args.code or ()), text_values=args.text_values)
    cohort = write_built_cohort(args.name, options, args.out)
    y = cohort.df[cohort.label]
    counts = cohort.df["split"].value_counts()
    note = " [SYNTHETIC: says nothing about patients]" if cohort.synthetic else ""
    print(f"wrote {args.out}: {len(y):,} stays, {int(y.sum()):,} deaths ({cohort.task.outcome}, {y.mean():.2%}); "
          "split "
          + "/".join(f"{counts.get(s, 0):,}" for s in ("train", "val", "test")) + " train/val/test" + note)


def cmd_table1(args: argparse.Namespace) -> None:
    from alfia.cohorts.table1 import table1, to_markdown, write_table1

    cohort = load_input(args.cohort, args.schema)
    table = table1(cohort)
    print(to_markdown(table))
    if args.out:
        write_table1(table, args.out)


def cmd_encode(args: argparse.Namespace) -> None:
    from alfia.cohorts import write_cohort
    from alfia.model.backbone import load_tokenizer
    from alfia.text.encoder import DEFAULT_STYLE, TextEncoder, load_encoder
    from alfia.text.stats import token_lengths

    # a reused encoder writes texts for stays to score, which need no outcome or split
    require_outcome = not args.encoder
    if args.encoder:
        if args.style:
            raise UsageError("--style and --encoder exclude each other: a reused encoder keeps its own style")
        encoder = load_encoder(_existing_file(args.encoder))
        # --schema naming the encoder's schema means that schema (one derived from the data has no registered name)
        schema = encoder.schema if args.schema == encoder.schema_name else args.schema
        cohort = load_input(args.cohort, schema, require_outcome=require_outcome)
    else:
        cohort = load_input(args.cohort, args.schema, require_outcome=require_outcome)
        encoder = TextEncoder(cohort.schema, style=args.style or DEFAULT_STYLE).fit(cohort.df)
    encoded = encoder.encode(cohort)
    write_cohort(encoded, args.out, require_outcome=require_outcome)
    lengths = token_lengths(encoded.df["text"].tolist(), load_tokenizer())
    print(f"wrote {args.out}: {len(encoded.df):,} texts, style {encoder.style}; default-backbone tokens "
          f"p50 {lengths.p50:.0f}, p95 {lengths.p95:.0f}, max {lengths.max}")


def add_commands(sub) -> None:
    from alfia.cohorts.registry import BuildOptions, cohort_names, source_help

    p = sub.add_parser("cohort", help="build a cohort table (one row per ICU stay)")
    p.add_argument("name", help=f"one of {', '.join(cohort_names())}")
    p.add_argument("--out", required=True, help="output parquet file")
    p.add_argument("--source", help=f"the raw data: {source_help()}")
    p.add_argument("--db", dest="source", help=argparse.SUPPRESS)  # the old name of --source for databases
    p.add_argument("--outcomes", help="physionet2012: the Outcomes-X.txt file (default: beside --source)")
    p.add_argument("--patients", help="yaib: a CSV or parquet file of stay_id and a patient id (patient_id, "
                   "uniquepid or subject_id), to split by patient (default: by stay, with a warning)")
    meds = p.add_argument_group("meds (docs/cohorts.md, From MEDS)")
    meds.add_argument("--labels", help="a MEDS label file or folder (subject_id, prediction_time, boolean_value; ACES "
                      "/ MEDS-DEV): inputs are the 24 h before each prediction time")
    meds.add_argument("--task", help="a built-in task instead of --labels: cw24-in-hospital or "
                      "meds-dev-in-icu-first-24h")
    meds.add_argument("--concepts", help="a concept map CSV (code pattern -> concept, unit, aggregate), e.g. the "
                      "shipped MIMIC-IV-MEDS -> YAIB map (default: the codes found in the data)")
    meds.add_argument("--features-of", help="an earlier MEDS cohort file whose features to reuse (new patients "
                      "for a trained run)")
    meds.add_argument("--max-codes", type=positive_int, default=BuildOptions.max_codes,
                      help="without --concepts: the most numeric codes that become features (default 24)")
    meds.add_argument("--min-share", type=float, default=BuildOptions.min_share,
                      help="without --concepts: the least share of training windows a code must be in (default 0.05)")
    meds.add_argument("--code", action="append", metavar="ROLE=REGEX", help="a code pattern of the built-in tasks "
                      "(icu_admission, icu_discharge, hospital_admission, hospital_discharge, death, birth)")
    meds.add_argument("--text-values", action="store_true", help="read text_value for category concepts (off: it "
                      "may hold clinical notes)")
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
