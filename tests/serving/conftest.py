"""A tiny trained run (tiny random BERT, a small sample of the bundled set A) shared by the serving tests, and a
server on loopback for the tests that speak HTTP."""

from __future__ import annotations

import socket
import threading
import time

import pytest

# the report test's tiny training settings and its stratified, encoded sample of set A
from tests.analysis.test_report import TINY, small_cohort


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_bert_dir):
    import torch

    from alfia.inference import finish_run
    from alfia.training.config import make_config
    from alfia.training.trainer import train

    torch.set_num_threads(1)
    cohort = small_cohort()
    run = tmp_path_factory.mktemp("serving") / "run"
    train(cohort, run, make_config("quick", **{**TINY, "epochs": 1}), backbone=str(tiny_bert_dir), progress=False)
    finish_run(run, cohort, n_boot=20)
    return {"run": run, "cohort": cohort}


def serve_in_thread(app):
    """uvicorn on a free loopback port in a daemon thread; returns (base url, server)."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    threading.Thread(target=server.run, daemon=True).start()
    for _ in range(200):
        if server.started:
            return f"http://127.0.0.1:{port}", server
        time.sleep(0.05)
    raise RuntimeError("uvicorn did not start")
