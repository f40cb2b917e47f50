"""The ``baselines``, ``boost`` and ``leaderboard`` commands: the tabular baselines, ALFIA-boost, Table 3."""

from __future__ import annotations

import argparse
from pathlib import Path

from alfia.cli.options import (
    add_device,
    add_external,
    add_external_predictions,
    add_input,
    add_n_boot,
    add_profile,
    add_schema,
    get_input,
)
from alfia.text.inputs import load_input


def _external(cohort, spec: str | None, schema: str | None, out: str):
    """The external cohort, mapped onto the development cohort's schema when it has another one (the mapping is
    printed and written to OUT/external-mapping.json)."""
    external = load_input(spec, schema, training=cohort)
    if external is None or "mapping" not in external.info:
        return external
    import json

    from alfia.cohorts.mapping import describe
    from alfia.io import write_text_atomic

    print(describe(external.info["mapping"]))
    Path(out).mkdir(parents=True, exist_ok=True)
    write_text_atomic(Path(out) / "external-mapping.json", json.dumps(external.info["mapping"], indent=2))
    return external


def cmd_baselines(args: argparse.Namespace) -> dict:
    from alfia.baselines.tabular import run_baselines

    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    dev = load_input(get_input(args, "cohort"), args.schema)
    results = run_baselines(dev, args.out, _external(dev, args.external, args.schema, args.out),
                            profile=args.profile, models=models, scores=not args.no_scores,
                            tabpfn_weights=args.tabpfn_weights, seed=args.seed, n_boot=args.n_boot,
                            time_limit=args.time_limit)
    _print_results(results)
    return results


def cmd_boost(args: argparse.Namespace) -> dict:
    from alfia.baselines.boost import run_boost

    dev = load_input(get_input(args, "cohort"), args.schema)
    results = run_boost(get_input(args, "run"), dev, args.out, _external(dev, args.external, args.schema, args.out),
                        profile=args.profile, seed=args.seed, n_boot=args.n_boot, time_limit=args.time_limit,
                        with_embeddings=args.with_embeddings, device=args.device, precision=args.precision)
    _print_results(results)
    return results


def cmd_leaderboard(args: argparse.Namespace) -> dict:
    from alfia.baselines.leaderboard import leaderboard

    board = leaderboard(args.dirs, load_input(args.test_cohort, args.schema), load_input(args.external, args.schema),
                        alfia_external=args.external_predictions, out_dir=args.out, n_boot=args.n_boot)
    print(board.markdown)
    return board.to_dict()


def _print_results(results: dict) -> None:
    for name, m in sorted(results["models"].items(), key=lambda kv: -kv[1]["test"]["auprc"]["value"]):
        ext = m.get("external")
        print(f"{name}: test AUPRC {m['test']['auprc']['value']:.3f} AUROC {m['test']['auroc']['value']:.3f}"
              + (f"; external AUPRC {ext['auprc']['value']:.3f} AUROC {ext['auroc']['value']:.3f}" if ext else ""))
    for name, reason in results["skipped"].items():
        print(f"skipped {name}: {reason}")


def add_commands(sub) -> None:
    """Add ``baselines``, ``boost`` and ``leaderboard`` to the ``alfia`` sub-command parser."""
    from alfia.baselines.tabular import MODEL_NAMES

    def common(p: argparse.ArgumentParser) -> None:
        add_input(p, "cohort", "development cohort with train/val/test splits (a parquet file, or p12-a)",
                  "--cohort")
        add_external(p)
        p.add_argument("--out", required=True, help="output folder (results.json, predictions.parquet)")
        add_profile(p, "--preset")  # the baselines' budget is the profile's: quick and ablation fixed iteration
        # budgets (~5 min on 2 CPU cores for 3,000 training rows), paper the full zoo with AutoGluon's defaults
        p.add_argument("--time-limit", type=float, help="seconds for the whole AutoGluon fit (default: none; a "
                       "limit makes the results depend on the machine's speed)")
        p.add_argument("--seed", type=int, default=0, help="every model's random seed (default 0, AutoGluon's; the "
                       "bootstrap's stays 42, so another seed is scored on the same resamples)")
        add_n_boot(p)
        add_schema(p)
        p.add_argument("--json", action="store_true", help="print results.json's content (progress on stderr)")

    p = sub.add_parser("baselines", help="tabular baselines (AutoGluon zoo of Table 3) and severity scores")
    common(p)
    p.add_argument("--models", help=f"comma-separated subset of: {', '.join(MODEL_NAMES)}")
    p.add_argument("--no-scores", action="store_true", help="leave out the clinical severity scores")
    p.add_argument("--tabpfn-weights", help="local TabPFN checkpoint (without it TabPFN is skipped)")
    p.set_defaults(func=cmd_baselines)

    p = sub.add_parser("boost", help="ALFIA-boost / ALFIA-nn: ALFIA's outputs + tabular features through AutoGluon")
    p.add_argument("--with-embeddings", action="store_true", help="also give the 384 ALF embedding dimensions (the "
                   "paper's variant; default for runs without a readout, whose logit is the default feature)")
    add_input(p, "run", "trained ALFIA run folder (alfia train)", "--run")
    common(p)
    add_device(p)
    p.set_defaults(func=cmd_boost)

    p = sub.add_parser("leaderboard", help="Table 3: every model by AUPRC, with ALFIA vs the best baseline")
    p.add_argument("dirs", nargs="+", help="baselines/boost result folders and an ALFIA run folder")
    add_external_predictions(p, "--alfia-external")
    p.add_argument("--test-cohort", help="development cohort, for test labels (default: the ALFIA run's own)")
    add_external(p, "--external-cohort")
    p.add_argument("--out", help="folder for leaderboard.md, leaderboard-test.csv, leaderboard-external.csv")
    add_n_boot(p)
    add_schema(p)
    p.add_argument("--json", action="store_true", help="print the tables as numbers (estimate, ci_low, "
                   "ci_high) in JSON instead of markdown")
    p.set_defaults(func=cmd_leaderboard)
