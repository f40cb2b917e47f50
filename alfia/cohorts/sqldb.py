"""A small, read-only connection layer over DuckDB files and PostgreSQL servers for the database cohort builders.

``connect(db)`` takes a path to a ``.duckdb`` file or a ``postgresql://`` URL and returns a ``Database`` that runs
the same SQL text on both (the builders write portable SQL: ANSI joins, CTEs, window functions, ``INTERVAL``
literals, ``EXTRACT(EPOCH FROM ...)``, ``LIKE``, ``CASE``; no dialect-specific functions).

DuckDB is opened read-only with extension auto-install and auto-load switched off, so a build never downloads
anything. PostgreSQL sessions are read-only transactions. Every failure reaches the user as one ``AlfiaError``
line; a PostgreSQL URL's password is never repeated in a message.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from alfia.cohorts.io import Cohort
from alfia.cohorts.schema import ID, SPLIT
from alfia.cohorts.splits import assign_splits
from alfia.errors import AlfiaError

logger = logging.getLogger(__name__)  # under "alfia": the CLI shows it, -q hides it

SOURCE_HELP = "a .duckdb file or a postgresql:// URL; see docs/databases.md"  # --source of a database builder
DUCKDB_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


def redact(db: str) -> str:
    """``db`` as it may appear in messages and cohort metadata: a URL loses its user and password."""
    if is_postgres_url(db):
        return re.sub(r"^(postgres(?:ql)?://)[^@/]*@", r"\1", db).split("?", 1)[0]
    return str(db)


def is_postgres_url(db: str) -> bool:
    return str(db).startswith(("postgresql://", "postgres://"))


@dataclass
class Database:
    """An open, read-only database: ``query`` returns a DataFrame, ``tables`` the (schema, table) pairs present."""

    dialect: str  # "duckdb" or "postgresql"
    label: str  # redacted location, safe to show
    _conn: object = field(repr=False)

    def query(self, sql: str) -> pd.DataFrame:
        try:
            if self.dialect == "duckdb":
                cur = self._conn.execute(sql)
                rows, names = cur.fetchall(), [d[0] for d in cur.description]
            else:
                with self._conn.cursor() as cur:
                    cur.execute(sql)
                    rows, names = cur.fetchall(), [d.name for d in cur.description]
        except AlfiaError:
            raise
        except Exception as exc:  # driver errors: one line, no traceback
            if self.dialect == "postgresql":
                self._conn.rollback()
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise AlfiaError(f"query on {self.label} failed ({first}); check that the database was built with "
                             "the mimic-code/eicu-code scripts named in docs/databases.md") from None
        return pd.DataFrame.from_records(rows, columns=names)

    def scalar(self, sql: str):
        df = self.query(sql)
        return None if df.empty else df.iat[0, 0]

    def tables(self) -> set[tuple[str, str]]:
        df = self.query("SELECT table_schema, table_name FROM information_schema.tables")
        return {(str(s).lower(), str(t).lower()) for s, t in zip(df.iloc[:, 0], df.iloc[:, 1], strict=True)}

    def missing(self, required: Iterable[str]) -> list[str]:
        """The ``schema.table`` names in ``required`` that the database lacks."""
        present = self.tables()
        return [name for name in required if tuple(name.lower().split(".", 1)) not in present]

    def close(self) -> None:
        try:
            self._conn.close()
        except Exception:  # noqa: BLE001 - closing must not mask the real error
            pass

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def connect(db: str, *, what: str = "database", how: str = "") -> Database:
    """Open ``db`` (a ``.duckdb`` path or a ``postgresql://`` URL) read-only.

    ``what`` names the database in messages ("MIMIC-IV database"), ``how`` says how to build it.
    """
    db = str(db)
    hint = f"; {how}" if how else ""
    if is_postgres_url(db):
        try:
            import psycopg
        except ImportError:
            raise AlfiaError("reading a PostgreSQL database needs the psycopg package; "
                             "install it with `pip install 'psycopg[binary]'`") from None
        try:
            conn = psycopg.connect(db, connect_timeout=10)
            conn.read_only = True
        except Exception as exc:  # noqa: BLE001 - one line for the user
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise AlfiaError(f"cannot connect to the {what} at {redact(db)} ({first}){hint}") from None
        return Database("postgresql", redact(db), conn)
    path = Path(db)
    if not path.exists():
        raise AlfiaError(f"{what} {path} does not exist{hint}")
    if path.is_dir():
        raise AlfiaError(f"{what} {path} is a directory; pass the .duckdb file{hint}")
    try:
        import duckdb
    except ImportError:
        raise AlfiaError("reading a DuckDB database needs the duckdb package; install it with "
                         "`pip install duckdb`") from None
    try:
        conn = duckdb.connect(str(path), read_only=True, config=dict(DUCKDB_CONFIG))
    except Exception as exc:  # noqa: BLE001 - one line for the user
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AlfiaError(f"cannot open {what} {path} as a DuckDB file ({first}){hint}") from None
    return Database("duckdb", str(path), conn)


def sql_list(values: Iterable[str]) -> str:
    """A SQL list of string literals, for constant code lists written into the query text."""
    out = []
    for v in values:
        if not re.fullmatch(r"[A-Za-z0-9 ._/>&()+,-]*", v):
            raise ValueError(f"refusing to inline {v!r} into SQL")
        out.append("'" + v.replace("'", "''") + "'")
    return "(" + ", ".join(out) + ")"


# --- shared by the database cohort builders ---------------------------------------------------------------------

STATS = ("max", "min", "first", "last", "mean", "std")


def check_leakage(db: Database, sources: dict[str, str], violation: str, *, where: str) -> dict[str, int]:
    """The always-on leakage check: count, among the rows each feature query selects, those that break the window.

    ``sources`` maps a source name to the row-selecting SQL the features are computed from (the very same text);
    ``violation`` is a predicate over its columns (``r.t`` and, for timestamps, ``r.t0``) that is true for a row
    timed at or after ICU admission + 24 h or without a time. Any violation raises ``AlfiaError``; the result is
    the number of rows checked per source.
    """
    checked = {}
    for name, sql in sources.items():
        counts = db.query(f"SELECT COUNT(*) AS n, SUM(CASE WHEN {violation} THEN 1 ELSE 0 END) AS bad "
                          f"FROM ({sql}) r")
        n, bad = int(counts.iat[0, 0] or 0), int(counts.iat[0, 1] or 0)
        if bad:
            raise AlfiaError(f"leakage check failed for {where}: {bad} of {n} rows of {name} selected for features "
                             "are timed at or after ICU admission + 24 h or have no time; no cohort was written")
        checked[name] = n
    return checked


def dynamic_stats(rows: pd.DataFrame, prefix: str | Mapping[str, str], *, time: str = "t") -> pd.DataFrame:
    """max/min/first/last/mean/std (ddof=1, 0 for a single value) of each series per ``stay_id`` ordered by time:
    the one definition of the CW-24 aggregates, for the database builders and the YAIB reader.

    ``prefix``: the prefix of the one ``value`` column of a long table (``stay_id``, ``t``, ``value``: the SQL
    builders), or a mapping from each value column of a wide table (one column per variable, one row per stay and
    time, e.g. YAIB's ``dyn.parquet``) to its prefix. Missing values are skipped; a stay without any value of a
    series has no row for it (its aggregates are missing after a join). Rows at the same time are ordered by value,
    so the result does not depend on the source's row order. Columns ``{prefix}_{stat}`` in the order of
    :data:`STATS`, series after series.
    """
    columns = {"value": prefix} if isinstance(prefix, str) else dict(prefix)
    names = [f"{name}_{s}" for name in columns.values() for s in STATS]
    parts = []
    for column, name in columns.items():
        if rows.empty:
            break
        series = rows[["stay_id", time, column]].rename(columns={time: "t", column: "value"})
        series = series.assign(value=pd.to_numeric(series["value"], errors="coerce").astype("float64"))
        series = series.dropna(subset=["value"]).sort_values(["stay_id", "t", "value"], kind="stable")
        if series.empty:  # no stay has a value: its columns are added below, all missing
            continue
        g = series.groupby("stay_id")["value"]
        out = pd.DataFrame({"max": g.max(), "min": g.min(), "first": g.first(), "last": g.last(), "mean": g.mean(),
                            "std": g.std(ddof=1).fillna(0.0)})
        out.columns = [f"{name}_{s}" for s in STATS]
        parts.append(out)
    if not parts:
        return pd.DataFrame(columns=names, index=pd.Index([], name="stay_id"), dtype="float64")
    return (parts[0] if len(parts) == 1 else pd.concat(parts, axis=1)).reindex(columns=names)


def clean_ranges(df: pd.DataFrame, schema) -> dict[str, int]:
    """Set numeric values outside the schema's valid range to missing (data-entry errors); return counts."""
    dropped = {}
    for col in schema.columns:
        if col.kind in ("float", "int") and col.valid is not None and col.name in df:
            values = pd.to_numeric(df[col.name], errors="coerce").astype("float64")
            bad = values.notna() & ((values < col.valid[0]) | (values > col.valid[1]))
            if bad.any():
                dropped[col.name] = int(bad.sum())
            df[col.name] = values.where(~bad)
    return dropped


def finish_cohort(df: pd.DataFrame, schema, *, where: str, source: str, builder: str, checked: dict,
                  unmapped: dict, split_by: str, extra_info: dict | None = None,
                  patient_ids: pd.Series | None = None) -> Cohort:
    """What both database builders end with: out-of-range values set missing, rows ordered by stay id, the fixed
    split (by patient when ``patient_ids``, indexed by stay id, is given), schema validation, and the cohort's
    info: where it came from, the leakage check's row counts (``checked``), unmapped categories, the counts."""
    info = {"source": source, "builder": builder, "leakage_check": {"rows_checked": checked, "violations": 0},
            "unmapped_categories": unmapped, "split_by": split_by, **(extra_info or {})}
    dropped = clean_ranges(df, schema)
    label = schema.task.label
    df[label] = pd.to_numeric(df[label], errors="coerce")  # anything else than 0/1 fails validation below
    df = df.reset_index(drop=True).sort_values(ID, kind="stable").reset_index(drop=True)
    patients = None if patient_ids is None else df[ID].map(patient_ids).astype(str)
    df[SPLIT] = assign_splits(df[ID], df[label], patient_ids=patients)
    df = schema.validate(df[schema.required_columns()], where=where)
    info = {**info, "synthetic": False, "n_stays": int(len(df)), "deaths": int(df[label].sum()),
            "out_of_range_set_missing": dropped}
    return Cohort(df=df, schema=schema, info=info)


def map_category(values: pd.Series, mapping, *, unknown: str | None) -> tuple[pd.Series, int]:
    """Map raw strings with ``mapping`` (a dict or a function of the stripped upper-case string).

    Missing or empty values become ``unknown``; values the mapping does not know also become ``unknown`` and are
    counted (the count goes into the cohort's info so that a new database release shows up).
    """
    out, unmapped = [], 0
    for v in values:
        if v is None or (isinstance(v, float) and v != v) or str(v).strip() == "":
            out.append(unknown)
            continue
        key = str(v).strip().upper()
        got = mapping(key) if callable(mapping) else mapping.get(key)
        if got is None:
            unmapped += 1
            got = unknown
        out.append(got)
    return pd.Series(out, index=values.index, dtype=object), unmapped


def progress_line(enabled: bool, message: str) -> None:
    if enabled:
        logger.info(message)
