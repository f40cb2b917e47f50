"""The data-set registry: a data set is registered with one call, and every command finds it there.

    register_dataset("physionet2012",
                     schema="alfia.cohorts.schemas.physionet2012:SCHEMA",        # its columns (a Schema)
                     template="alfia.text.templates.physionet2012:describe",     # its clinical text
                     builder="alfia.datasets:_build_physionet2012",              # raw source -> Cohort
                     bundled={"p12-a": "alfia.cohorts.data:p12_a.parquet"})      # tables shipped with it

Schema, template and builder are objects or ``"module:attribute"`` strings imported on first use (so that
``alfia --help`` stays fast). A builder is called as ``builder(options)`` with :class:`BuildOptions` (the
``alfia cohort`` flags); bundled tables are ``"package:file"`` resources or file paths. :func:`load_cohort` is
how every command and the Python API turn what a user names (a file, a bundled name, a table) into a cohort.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alfia.errors import AlfiaError, SettingError, UsageError

if TYPE_CHECKING:
    import pandas as pd

    from alfia.cohorts import Cohort, Schema


@dataclass(frozen=True)
class BuildOptions:
    """What ``alfia cohort NAME`` passes to a builder; each builder reads the options it needs."""

    source: str | None = None  # a raw-data folder or archive, a .duckdb file or a postgresql:// URL
    outcomes: str | None = None  # physionet2012: the Outcomes-X.txt file
    n: int = 20000  # synthetic cohorts: number of stays
    seed: int = 42  # synthetic cohorts: random seed

    def require_source(self, name: str, what: str) -> str:
        if not self.source:
            raise UsageError(f"`alfia cohort {name}` needs --source ({what})")
        return self.source


@dataclass(frozen=True)
class DataSet:
    name: str  # also the schema's name
    schema: Any  # Schema or "module:attribute"
    template: Any  # describe(writer) -> str, or "module:attribute"
    builder: Any = None  # builder(BuildOptions) -> Cohort, or "module:attribute"; None: bundled tables only
    bundled: Mapping[str, str | os.PathLike] = field(default_factory=dict)
    synthetic: bool = False  # alfia.cohorts.synthetic generates "synth-<name>" cohorts
    source_help: str = "the raw data"

    def load_schema(self) -> Schema:
        return _resolve(self.schema)

    def load_template(self) -> Callable:
        return _resolve(self.template)


_REGISTRY: dict[str, DataSet] = {}


def register_dataset(name: str, *, schema: Any, template: Any, builder: Any = None,
                     bundled: Mapping[str, str | os.PathLike] | None = None, synthetic: bool = False,
                     source_help: str = "the raw data") -> DataSet:
    """Register a data set under ``name`` (its schema's name); bundled names must be new."""
    taken = cohort_names()
    clashes = [n for n in [name, *(bundled or {})] if n in taken]
    if clashes:
        raise AlfiaError(f"data set names already registered: {', '.join(clashes)}; choose other names")
    dataset = DataSet(name, schema, template, builder, dict(bundled or {}), synthetic, source_help)
    _REGISTRY[name] = dataset
    return dataset


def unregister_dataset(name: str) -> None:
    _REGISTRY.pop(name, None)


def dataset_names() -> list[str]:
    return list(_REGISTRY)


def get_dataset(name: str) -> DataSet:
    if name not in _REGISTRY:
        raise AlfiaError(f"unknown schema {name!r}; known schemas are {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def bundled_tables() -> dict[str, str | os.PathLike]:
    """Every bundled cohort name -> its table (a ``package:file`` resource or a path)."""
    return {cohort: table for d in _REGISTRY.values() for cohort, table in d.bundled.items()}


def cohort_names() -> list[str]:
    """Every name ``alfia cohort`` accepts: built data sets, their synthetic twins, bundled tables."""
    names = []
    for d in _REGISTRY.values():
        names += [d.name] if d.builder else []
        names += [f"synth-{d.name}"] if d.synthetic else []
        names += list(d.bundled)
    return names


def build_cohort(name: str, options: BuildOptions = BuildOptions()) -> Cohort:
    """The cohort that ``alfia cohort NAME`` writes: built from a source, generated, or a bundled table."""
    if name in bundled_tables():
        return load_bundled(name)
    if name.startswith("synth-") and name.removeprefix("synth-") in _REGISTRY \
            and _REGISTRY[name.removeprefix("synth-")].synthetic:
        from alfia.cohorts.synthetic import generate_synthetic

        if options.n < 1:
            raise SettingError("n", "must be a positive number of stays")
        return generate_synthetic(name.removeprefix("synth-"), n=options.n, seed=options.seed)
    if name in _REGISTRY and _REGISTRY[name].builder:
        return _resolve(_REGISTRY[name].builder)(options)
    raise UsageError(f"unknown cohort {name!r}; choose one of {', '.join(cohort_names())}")


def load_bundled(name: str) -> Cohort:
    """Read a bundled cohort by name (e.g. ``p12-a``)."""
    from importlib import resources

    from alfia.cohorts.io import read_cohort

    tables = bundled_tables()
    if name not in tables:
        raise AlfiaError(f"unknown bundled cohort {name!r}; known are {', '.join(tables)}")
    table = tables[name]
    if isinstance(table, str) and ":" in table and not Path(table).exists():
        package, file = table.split(":", 1)
        resource = resources.files(package).joinpath(file)
        if not resource.is_file():
            raise AlfiaError(f"bundled cohort {name!r} is missing from the installation; reinstall alfia")
        with resources.as_file(resource) as path:
            return read_cohort(path)
    return read_cohort(table)


def load_cohort(spec: Cohort | pd.DataFrame | str | os.PathLike, schema: str | None = None,
                require_outcome: bool = True) -> Cohort:
    """A cohort from what a user names: a :class:`Cohort`, a ``DataFrame`` (with ``schema``), a parquet file, or
    a bundled name such as ``p12-a``. ``require_outcome=False``: stays to score, without outcome or split."""
    import pandas as pd

    from alfia.cohorts.io import Cohort, read_cohort

    if isinstance(spec, Cohort):
        return spec
    if isinstance(spec, pd.DataFrame):
        if not schema:
            raise AlfiaError(f"a DataFrame needs its schema; pass schema= (one of {', '.join(_REGISTRY)})")
        resolved = get_dataset(schema).load_schema()
        df = resolved.validate(spec, where="the table", require_outcome=require_outcome)
        return Cohort(df=df, schema=resolved, info={"source": "DataFrame", "schema": resolved.name})
    if not Path(spec).exists() and str(spec) in bundled_tables():
        return load_bundled(str(spec))
    if not Path(spec).exists() and str(spec) in cohort_names():
        raise AlfiaError(f"cohort {spec} is built from its source: run `alfia cohort {spec} --out FILE.parquet` "
                         "and pass FILE.parquet")
    return read_cohort(spec, schema=schema, require_outcome=require_outcome)


def _resolve(obj: Any) -> Any:
    """An object, or the attribute named by a ``"module:attribute"`` string."""
    if isinstance(obj, str):
        module, _, attribute = obj.partition(":")
        return getattr(importlib.import_module(module), attribute)
    return obj


# -- builders of the data sets that ship with ALFIA ------------------------------------------------------------
def _build_physionet2012(options: BuildOptions) -> Cohort:
    from alfia.cohorts.physionet2012 import build_physionet2012

    source = Path(options.require_source("physionet2012", "a set-X directory or set-X.tar.gz"))
    if not source.exists():
        raise AlfiaError(f"{source} does not exist; check the path")
    return build_physionet2012(source, options.outcomes)


def _build_mimic_iv(options: BuildOptions) -> Cohort:
    from alfia.cohorts.mimic_iv_db import build_mimic_iv

    return build_mimic_iv(options.require_source("mimic-iv", DB_HELP))


def _build_eicu(options: BuildOptions) -> Cohort:
    from alfia.cohorts.eicu_db import build_eicu

    return build_eicu(options.require_source("eicu", DB_HELP))


DB_HELP = "a .duckdb file or a postgresql:// URL; see docs/databases.md"

register_dataset("physionet2012", schema="alfia.cohorts.schemas.physionet2012:SCHEMA",
                 template="alfia.text.templates.physionet2012:describe", builder=_build_physionet2012,
                 bundled={"p12-a": "alfia.cohorts.data:p12_a.parquet",  # set A: 4,000 stays, 554 deaths
                          "p12-b": "alfia.cohorts.data:p12_b.parquet"},  # set B: 4,000 stays, 568 deaths
                 source_help="a set-X directory or set-X.tar.gz")
register_dataset("mimic-iv", schema="alfia.cohorts.schemas.mimic_iv:SCHEMA",
                 template="alfia.text.templates.mimic_iv:describe", builder=_build_mimic_iv, synthetic=True,
                 source_help=DB_HELP)
register_dataset("eicu", schema="alfia.cohorts.schemas.eicu:SCHEMA", template="alfia.text.templates.eicu:describe",
                 builder=_build_eicu, synthetic=True, source_help=DB_HELP)
