"""The service's contract, checked as a client would: schemathesis generates requests from the live server's own
/openapi.json (bodies that fit the schema and bodies that break it) and sends them over HTTP to ``alfia serve``'s
app on loopback, with every check it has: no server error, status codes, content types and response bodies as
documented, schema-valid requests accepted and schema-invalid ones refused.

Bounded: 30 examples per operation and mode, deterministic generation, one worker (about 600 requests, 15 s
on 2 cores). On the schema before issue 23 it fails: a schema-valid ``{"stays": [{}]}`` refused (ST202), a
boolean stay id accepted (ST201).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest

pytest.importorskip("schemathesis", reason="schemathesis is a dev dependency")

from alfia.serving.app import create_app  # noqa: E402
from alfia.serving.service import Limits, RiskService  # noqa: E402
from tests.serving.conftest import serve_in_thread  # noqa: E402

EXAMPLES = 30


@pytest.fixture(scope="module")
def live_url(tiny_run):
    service = RiskService.load(tiny_run["run"], limits=Limits(max_stays=2, max_text_chars=4000))
    url, server = serve_in_thread(create_app(service))
    yield url
    server.should_exit = True


def test_every_schemathesis_check_passes_over_http(live_url, tmp_path):
    har = tmp_path / "requests.har"
    command = [sys.executable, "-m", "schemathesis.cli", "run", f"{live_url}/openapi.json", "--checks", "all",
               "--max-examples", str(EXAMPLES), "--generation-deterministic", "--workers", "1",
               "--phases", "examples,coverage,fuzzing", "--no-color", "--request-timeout", "20",
               "--report", "har", "--report-har-path", str(har)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    output = run.stdout + run.stderr
    assert run.returncode == 0 and "No issues found" in output, output[-8000:]
    entries = json.loads(har.read_text())["log"]["entries"]
    predict = Counter(e["response"]["status"] for e in entries
                      if e["request"]["method"] == "POST" and e["request"]["url"].endswith("/v1/predict"))
    # valid bodies were scored and broken ones refused, over HTTP
    assert predict[200] >= 20 and predict[422] >= 100 and sum(predict.values()) >= 300, predict
