"""The ``predict`` and ``embed`` commands: a trained run applied to a cohort, encoded or not; and ``card``: the run's
model card written again, with the cohorts it has scored since."""

from __future__ import annotations

import argparse

from alfia.cli.options import add_batch_size, add_device, add_schema
from alfia.text.inputs import load_input


def cmd_predict(args: argparse.Namespace) -> dict:
    from alfia.api import check_int8
    from alfia.cohorts.mapping import describe
    from alfia.evaluation.drift import describe_warnings
    from alfia.evaluation.metrics import format_metrics
    from alfia.inference import predict_cohort, write_predictions

    check_int8(args.int8, args.device)   # before the cohort is read; a SettingError names --int8
    cohort = load_input(args.cohort, args.schema, run=args.run, training=args.training_cohort, require_outcome=False)
    if "mapping" in cohort.info:
        print(describe(cohort.info["mapping"]))
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
    from alfia.inference import write_embeddings

    cohort = load_input(args.cohort, args.schema, require_outcome=False)
    dims = write_embeddings(args.run, cohort, args.out, batch_size=args.batch_size, progress=True,
                            device=args.device, precision=args.precision)
    print(f"wrote {args.out}: {len(cohort.df):,} stays, {dims} dims")


def cmd_card(args: argparse.Namespace) -> dict:
    from alfia.model.card import write_model_card
    from alfia.run_folder import RunFolder

    path, facts = write_model_card(args.run, args.out, scored=args.scored)
    cohorts = [e["cohort"] for e in facts["evaluation"]]
    print(f"wrote {path}: {len(cohorts)} scored cohort(s): {'; '.join(cohorts) or 'none'}")
    if all(e["file"] == RunFolder.METRICS for e in facts["evaluation"]):
        print("only the development cohort: a cohort scored by `alfia predict RUN ... --out X` outside the run "
              "folder joins with --scored X")
    return {"card": str(path), "cohorts": cohorts}


def add_commands(sub) -> None:
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
    p = sub.add_parser("card", help="write the run's model card (MODEL_CARD.md) again, with every cohort it scored",
                       description="The run's model card in the Hugging Face layout: task, intended and "
                       "out-of-scope use, training data and licences, metrics with 95% CIs on every scored cohort, "
                       "subgroups, calibration, limitations, how to load it, citations. Training writes it; run "
                       "this after scoring more cohorts. No patient text and no stay id.")
    p.add_argument("run", help="run folder (alfia train)")
    p.add_argument("--out", help="the markdown file (default RUN/MODEL_CARD.md)")
    p.add_argument("--scored", nargs="+", default=[], metavar="FILE",
                   help="cohorts scored by `alfia predict RUN ... --out X` outside the run folder: their metrics "
                   "files (X's NAME.metrics.json) or X itself; those in the run folder, and a study's external "
                   "cohorts, are found without it")
    p.add_argument("--json", action="store_true", help="print the card's path and cohorts as JSON")
    p.set_defaults(func=cmd_card)
