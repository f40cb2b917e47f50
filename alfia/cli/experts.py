"""The ``experts sample`` and ``experts compare`` commands: a blinded booklet, then the experts' ratings scored."""

from __future__ import annotations

import argparse
from pathlib import Path

from alfia.cli.options import add_device, add_n_boot, add_schema
from alfia.errors import AlfiaError
from alfia.text.inputs import load_input


def cmd_sample(args: argparse.Namespace) -> None:
    from alfia.experts.booklet import write_booklet

    # recorded for `compare`: a file by its absolute path, a bundled cohort by its name
    spec = str(Path(args.cohort).resolve()) if Path(args.cohort).exists() else args.cohort
    cases = write_booklet(load_input(args.cohort, args.schema), args.run, args.out, n=args.n, seed=args.seed,
                          cohort_spec=spec)
    print(f"wrote {args.out}: booklet.html, cases.csv and ratings-template.csv for {len(cases)} cases; "
          f"keep {args.out}/sealed/ away from the raters")


def cmd_compare(args: argparse.Namespace) -> None:
    from alfia.experts.compare import compare, load_key, write_report

    spec = args.cohort or load_key(args.booklet).get("cohort")
    if not spec:
        raise AlfiaError("the booklet does not name its cohort; pass --cohort")
    result = compare(args.booklet, args.ratings, args.run, load_input(spec, args.schema), n_boot=args.n_boot,
                     device=args.device, precision=args.precision)
    write_report(result, args.out)
    for name, entry in result["raters"].items():
        print(f"{name}: AUPRC {entry['auprc']['value']:.3f}, AUROC {entry['auroc']['value']:.3f}")
    print(f"wrote {args.out}")


def add_commands(sub) -> None:
    p = sub.add_parser("experts", help="expert comparison: blinded booklet, then scoring of the ratings")
    commands = p.add_subparsers(dest="step", required=True, metavar="step",
                                help="sample: write the blinded booklet; compare: score the returned ratings")
    s = commands.add_parser("sample", help="a blinded booklet of stays the run never trained or tuned on")
    s.add_argument("cohort", help="cohort to draw from (a parquet file, or p12-a / p12-b)")
    s.add_argument("--run", required=True, help="the ALFIA run to compare (alfia train)")
    s.add_argument("--n", type=int, default=100, help="number of cases (default 100)")
    s.add_argument("--seed", type=int, default=42, help="random seed of the case draw (default 42)")
    s.add_argument("--out", required=True, help="a new folder for the booklet")
    add_schema(s)
    s.set_defaults(func=cmd_sample)
    c = commands.add_parser("compare", help="score each expert and ALFIA on the booklet's cases")
    c.add_argument("booklet", help="the folder `alfia experts sample` wrote")
    c.add_argument("--ratings", nargs="+", required=True, help="one filled-in ratings CSV per expert")
    c.add_argument("--run", required=True, help="the ALFIA run")
    c.add_argument("--out", required=True, help="report .html (report .json beside it)")
    c.add_argument("--cohort", help="the cohort the booklet was drawn from (default: as recorded in the booklet)")
    add_n_boot(c)
    add_schema(c)
    add_device(c)
    c.set_defaults(func=cmd_compare)
