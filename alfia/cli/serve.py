"""The ``serve`` command: the risk service and web page of a trained run."""

from __future__ import annotations

import argparse

from alfia.cli.options import add_device
from alfia.errors import AlfiaError
from alfia.text.inputs import load_input


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    from alfia.serving.app import create_app
    from alfia.serving.service import Limits, RiskService

    training = load_input(args.training_cohort)
    if args.max_stays < 1 or args.max_text_chars < 1 or args.max_body_bytes < 1:
        raise AlfiaError("--max-stays, --max-text-chars and --max-body-bytes must be positive")
    limits = Limits(max_body_bytes=args.max_body_bytes, max_stays=args.max_stays, max_text_chars=args.max_text_chars)
    service = RiskService.load(args.run, bands=args.bands, limits=limits, training_cohort=training,
                               device=args.device, precision=args.precision)
    app = create_app(service)
    print(f"serving run {args.run} on http://{args.host}:{args.port}/ (API docs at /docs)", flush=True)
    # access_log off: uvicorn's line carries the query string; our own line names only path, status and time
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="info")


def add_commands(sub) -> None:
    p = sub.add_parser("serve", help="risk service and web page for a trained run (FastAPI)")
    p.add_argument("run", help="run folder (alfia train)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    p.add_argument("--bands", help="risk bands by lower bound, e.g. 'low=0,elevated=0.1,high=0.3' (default: "
                   "low, elevated from half the threshold, high from the run's threshold)")
    p.add_argument("--training-cohort", help="only for a run trained before it kept reference.json: its training "
                   "cohort (a parquet file or p12-a), to build the reference of the warnings and drift metrics from")
    p.add_argument("--max-stays", type=int, default=64, help="stays per request (default 64)")
    p.add_argument("--max-text-chars", type=int, default=8000, help="characters per text (default 8000)")
    p.add_argument("--max-body-bytes", type=int, default=1_000_000, help="request body size (default 1 MB)")
    add_device(p)
    p.set_defaults(func=cmd_serve)
