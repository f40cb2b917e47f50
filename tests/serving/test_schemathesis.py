"""Property-based requests generated from the service's own OpenAPI schema (schemathesis, through ASGI): bodies
that fit the schema and bodies that break it, for every operation; no answer may be a server error (5xx).
Bounded: a fixed number of examples per operation and mode, derandomised so that a run is reproducible.

(Driven with hypothesis directly: schemathesis' pytest loader does not run under this pytest version.)
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is a dev dependency")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.generation import GenerationMode  # noqa: E402

from alfia.serving.app import create_app  # noqa: E402
from alfia.serving.service import Limits, RiskService  # noqa: E402

EXAMPLES = 40


@pytest.fixture(scope="module")
def api_schema(tiny_run):
    service = RiskService.load(tiny_run["run"], limits=Limits(max_stays=4, max_text_chars=400),
                               training_cohort=tiny_run["cohort"])
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(service))


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_error(api_schema, mode):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/predict", "/v1/model", "/v1/metrics", "/healthz"}
    statuses = []
    for op in operations:
        if mode == GenerationMode.NEGATIVE and op.method.upper() == "GET":
            continue  # nothing to break: the GET operations take no parameters
        @given(case=op.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case):
            statuses.append(case.call_and_validate(checks=[not_a_server_error]).status_code)

        check()
    assert statuses and max(statuses) < 500
    if mode == GenerationMode.NEGATIVE:
        assert 422 in statuses  # the broken bodies did reach the validation
    else:
        assert 200 in statuses
