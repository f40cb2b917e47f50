"""Fixture databases of the database cohort builders (MIMIC-IV, eICU): DuckDB files, and PostgreSQL databases on a
throw-away server started once per session (skipped with a message when the server binaries are absent)."""

import pytest

from tests.datasets import db_fixtures as fx


@pytest.fixture(scope="session")
def pg_server():
    pytest.importorskip("psycopg")
    server = fx.PostgresServer()
    try:
        server.__enter__()
    except RuntimeError as exc:
        pytest.skip(f"PostgreSQL tests skipped: {exc}")
    yield server
    server.__exit__(None, None, None)


@pytest.fixture(params=fx.BACKENDS)
def mimic_db(request, tmp_path):
    return fx.make_db(request.param, request, tmp_path, fx.MIMIC_TABLES, fx.mimic_rows())


@pytest.fixture(params=fx.BACKENDS)
def eicu_db_url(request, tmp_path):
    return fx.make_db(request.param, request, tmp_path, fx.EICU_TABLES, fx.eicu_rows())
