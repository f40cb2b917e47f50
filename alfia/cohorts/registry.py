"""The data-set registry: every command finds a data set's schema, text template, builder and tables here.

Each data set is one package under ``alfia/datasets/`` whose ``__init__.py`` registers it::

    register_dataset("physionet2012", package=__name__,     # schema.py: SCHEMA, template.py: describe,
                                                             # builder.py: build (BuildOptions -> Cohort)
                     bundled={"p12-a": f"{__name__}.data:p12_a.parquet"},  # tables shipped with it
                     source_help="a set-X directory or set-X.tar.gz",      # what --source is
                     study={"development": "p12-a", "external": "p12-b",  # what `alfia study` runs by default
                            "shown": {"p12-a": "set A", "p12-b": "set B"}})  # how its text names them
    register_dataset("yaib", package=__name__,
                     bundled={"yaib-eicu-demo": f"{__name__}.builder:load_eicu_demo"})  # built from shipped files
    register_dataset("meds", package=__name__, writer=f"{__name__}.builder:write")  # writes shard by shard

Schema, template, builder, synthetic targets and mappings are objects or ``"module:attribute"`` strings imported on
first use (so that ``alfia --help`` stays fast). A builder is called as ``builder(options)`` with
:class:`BuildOptions` (the ``alfia cohort`` flags). A bundled cohort is a table (a ``"package:file"`` resource, the
file name with its extension, or a file path) or a ``"module:function"`` (the function's name an identifier) that
returns the :class:`~alfia.cohorts.Cohort` when called without arguments: a cohort built on load from raw files
shipped with its package.
:func:`load_cohort` is how every command and the Python API turn what a user names (a file, a bundled name, a
table) into a cohort. Users may also call :func:`register_dataset` from their own code.

Plugin discovery, the one step that reaches up a layer: on the first lookup the registry imports the package
``alfia.datasets`` by name (:func:`importlib.import_module`, as entry points would), which imports every data-set
package it finds beside it. Nothing in this layer imports a data set's module statically.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alfia.errors import AlfiaError, SettingError, UsageError

if TYPE_CHECKING:
    import pandas as pd

    from alfia.cohorts.io import Cohort
    from alfia.cohorts.mapping import FeatureMapping
    from alfia.cohorts.schema import Schema

DATASETS_PACKAGE = "alfia.datasets"  # imported on first lookup: it registers the data sets that ship with ALFIA


@dataclass(frozen=True)
class BuildOptions:
    """What ``alfia cohort NAME`` passes to a builder; each builder reads the options it needs."""

    source: str | None = None  # a raw-data folder or archive, a .duckdb file or a postgresql:// URL
    outcomes: str | None = None  # physionet2012: the Outcomes-X.txt file
    patients: str | None = None  # a CSV/parquet file of stay ids and patient ids, for splits by patient (yaib)
    n: int = 20000  # synthetic cohorts: number of stays
    seed: int = 42  # synthetic cohorts: random seed
    labels: str | None = None  # meds: a label file or folder (ACES / MEDS-DEV: subject_id, prediction_time, ...)
    task: str | None = None  # meds: a built-in task instead of labels (cw24-in-hospital, meds-dev-in-icu-first-24h)
    concepts: str | None = None  # meds: a concept map (CSV: code pattern -> concept, unit, aggregate)
    features_of: str | None = None  # meds: an earlier MEDS cohort file whose features (and schema) to reuse
    max_codes: int = 24  # meds without a concept map: the most numeric codes that become features
    min_share: float = 0.05  # meds without a concept map: the least share of training windows a code is in
    codes: tuple[str, ...] = ()  # meds: code patterns of the built-in tasks, "ROLE=REGEX"
    text_values: bool = False  # meds: read text_value (it may hold clinical notes) for category concepts

    def require_source(self, name: str, what: str) -> str:
        if not self.source:
            raise UsageError(f"`alfia cohort {name}` needs --source ({what})")
        return self.source


@dataclass(frozen=True)
class StudyPair:
    """A study a data set declares over its bundled cohorts (``register_dataset(..., study={...})``): the
    development cohort (with its train/val/test split), the external one scored on all rows, and how the study's
    text shows each cohort (``shown``: e.g. ``{"p12-a": "set A"}``; a cohort not in it is shown by its name)."""

    development: str
    external: str
    shown: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DataSet:
    name: str  # also the schema's name
    schema: Any  # Schema or "module:attribute"
    template: Any  # describe(writer) -> str, or "module:attribute"
    builder: Any = None  # builder(BuildOptions) -> Cohort, or "module:attribute"; None: bundled tables only
    bundled: Mapping[str, str | os.PathLike] = field(default_factory=dict)  # table, resource or "module:function"
    synthetic: Any = None  # the targets of the "synth-<name>" cohorts (alfia.cohorts.synthetic), or None
    source_help: str = "the raw data"  # what --source is for this data set (shown by `alfia cohort --help`)
    mappings: Mapping[str, Any] = field(default_factory=dict)  # source schema -> FeatureMapping onto this one
    study: StudyPair | None = None  # the bundled development / external pair `alfia study` runs by default
    writer: Any = None  # writer(BuildOptions, out) -> Cohort: builds and writes in bounded memory; None: build, write

    def load_schema(self) -> Schema:
        return _resolve(self.schema)

    def load_template(self) -> Callable:
        return _resolve(self.template)

    def load_synthetic(self) -> dict:
        if self.synthetic is None:
            raise AlfiaError(f"no synthetic generator for schema {self.name!r}; synthetic cohorts exist for "
                             f"{', '.join(d.name for d in _datasets().values() if d.synthetic is not None)}")
        return _resolve(self.synthetic)

    def load_mapping(self, source: str) -> FeatureMapping | None:
        """The declared mapping of schema ``source`` onto this data set's schema, or None."""
        return _resolve(self.mappings[source]) if source in self.mappings else None


_REGISTRY: dict[str, DataSet] = {}
_discovered = False


def _datasets() -> dict[str, DataSet]:
    """The registry, after the data sets of ``alfia.datasets`` have registered themselves (once)."""
    global _discovered
    if not _discovered:
        _discovered = True  # first: their register_dataset calls look the registry up too
        importlib.import_module(DATASETS_PACKAGE)
    return _REGISTRY


def register_dataset(name: str, *, package: str | None = None, schema: Any = None, template: Any = None,
                     builder: Any = None, bundled: Mapping[str, str | os.PathLike] | None = None,
                     synthetic: Any = None, source_help: str = "the raw data",
                     mappings: Mapping[str, Any] | None = None,
                     study: Mapping[str, Any] | None = None, writer: Any = None) -> DataSet:
    """Register a data set under ``name`` (its schema's name); bundled names must be new.

    ``package``: a data-set package (``__name__`` in its ``__init__.py``) whose ``schema.py`` (``SCHEMA``),
    ``template.py`` (``describe``) and ``builder.py`` (``build``), where it has one, stand in for the schema, template
    and builder not given. ``study``: ``{"development": NAME, "external": NAME, "shown": {NAME: words}}``, a pair of
    its bundled cohorts that ``alfia study`` runs (the first data set registered with one is the default study:
    :func:`default_study`).
    """
    if package is not None:
        schema = schema or f"{package}.schema:SCHEMA"
        template = template or f"{package}.template:describe"
        if builder is None and importlib.util.find_spec(f"{package}.builder") is not None:
            builder = f"{package}.builder:build"
    if schema is None or template is None:
        raise AlfiaError(f"data set {name!r} needs its schema and its text template (or its package)")
    taken = cohort_names()
    clashes = [n for n in [name, *(bundled or {})] if n in taken]
    if clashes:
        raise AlfiaError(f"data set names already registered: {', '.join(clashes)}; choose other names")
    dataset = DataSet(name, schema, template, builder, dict(bundled or {}), synthetic, source_help,
                      dict(mappings or {}), _study_pair(name, study, bundled or {}), writer)
    _REGISTRY[name] = dataset
    return dataset


def _study_pair(name: str, study: Mapping[str, Any] | None, bundled: Mapping[str, Any]) -> StudyPair | None:
    """A data set's declared study, checked: two of its own bundled cohorts."""
    if study is None:
        return None
    unknown = set(study) - {"development", "external", "shown"}
    if unknown or not {"development", "external"} <= set(study):
        raise AlfiaError(f"data set {name!r}: study= takes development, external and optionally shown, not "
                         f"{sorted(study)}")
    pair = StudyPair(str(study["development"]), str(study["external"]), dict(study.get("shown") or {}))
    outside = [n for n in (pair.development, pair.external) if n not in bundled]
    if outside or pair.development == pair.external:
        raise AlfiaError(f"data set {name!r}: a study pairs two of its own bundled cohorts ({', '.join(bundled)}), "
                         f"not {pair.development!r} and {pair.external!r}")
    return pair


def default_study() -> StudyPair:
    """The study ``alfia study`` runs without a cohort: the one declared by the first data set registered with one
    (the bundled PhysioNet 2012 sets A and B)."""
    for dataset in _datasets().values():
        if dataset.study is not None:
            return dataset.study
    raise AlfiaError("no data set declares a default study; pass a development cohort and --external")


def declared_study(development: str) -> StudyPair | None:
    """The study declared with ``development`` as its development cohort, or None."""
    return next((d.study for d in _datasets().values() if d.study and d.study.development == str(development)), None)


def shown_name(cohort: str) -> str:
    """How a study's text shows a cohort: the words its data set declared (``p12-b``: set B), else its name."""
    return next((d.study.shown[cohort] for d in _datasets().values() if d.study and cohort in d.study.shown),
                str(cohort))


def unregister_dataset(name: str) -> None:
    _REGISTRY.pop(name, None)


def dataset_names() -> list[str]:
    return list(_datasets())


def get_dataset(name: str) -> DataSet:
    datasets = _datasets()
    if name not in datasets:
        raise AlfiaError(f"unknown schema {name!r}; known schemas are {', '.join(datasets)}")
    return datasets[name]


def get_schema(name: str) -> Schema:
    return get_dataset(name).load_schema()


def bundled_tables() -> dict[str, str | os.PathLike]:
    """Every bundled cohort name -> its table (a ``package:file`` resource or a path) or its ``module:function``."""
    return {cohort: table for d in _datasets().values() for cohort, table in d.bundled.items()}


def cohort_names() -> list[str]:
    """Every name ``alfia cohort`` accepts: built data sets, their synthetic twins, bundled tables."""
    names = []
    for d in _datasets().values():
        names += [d.name] if d.builder else []
        names += [f"synth-{d.name}"] if d.synthetic is not None else []
        names += list(d.bundled)
    return names


def source_help() -> str:
    """What ``--source`` is for each data set built from a source, for ``alfia cohort --help`` (data sets that take
    the same kind of source share one entry)."""
    names: dict[str, list[str]] = {}
    for d in _datasets().values():
        if d.builder:
            names.setdefault(d.source_help, []).append(d.name)
    return "; ".join(f"{' / '.join(n)}: {what}" for what, n in names.items())


def build_cohort(name: str, options: BuildOptions = BuildOptions()) -> Cohort:
    """The cohort that ``alfia cohort NAME`` writes: built from a source, generated, or a bundled table."""
    datasets = _datasets()
    twin = name.removeprefix("synth-")
    if name in bundled_tables():
        return load_bundled(name)
    if name.startswith("synth-") and twin in datasets and datasets[twin].synthetic is not None:
        from alfia.cohorts.synthetic import generate_synthetic

        if options.n < 1:
            raise SettingError("n", "must be a positive number of stays")
        return generate_synthetic(twin, n=options.n, seed=options.seed)
    if name in datasets and datasets[name].builder:
        return _resolve(datasets[name].builder)(options)
    raise UsageError(f"unknown cohort {name!r}; choose one of {', '.join(cohort_names())}")


def write_built_cohort(name: str, options: BuildOptions, out: str | os.PathLike) -> Cohort:
    """What ``alfia cohort NAME --out FILE`` does: build the cohort and write it atomically. A data set that
    declares a ``writer`` (e.g. ``meds``: shard by shard) writes it itself in bounded memory and returns the cohort's
    stays (ids, labels, splits) with its info; the others return the cohort written."""
    from alfia.cohorts.io import write_cohort

    dataset = _datasets().get(name)
    if dataset is not None and dataset.writer is not None:
        return _resolve(dataset.writer)(options, out)
    cohort = build_cohort(name, options)
    write_cohort(cohort, out)
    return cohort


def load_bundled(name: str) -> Cohort:
    """Read a bundled cohort by name (e.g. ``p12-a``)."""
    from importlib import resources

    from alfia.cohorts.io import Cohort, read_cohort

    tables = bundled_tables()
    if name not in tables:
        raise AlfiaError(f"unknown bundled cohort {name!r}; known are {', '.join(tables)}")
    table = tables[name]
    if is_bundled_function(table):
        cohort = _resolve(table)()
        if not isinstance(cohort, Cohort):
            raise AlfiaError(f"bundled cohort {name!r} ({table}) returned a {type(cohort).__name__}, not a Cohort; "
                             "fix the data set's package")
        return cohort
    if isinstance(table, str) and ":" in table and not Path(table).exists():
        package, file = table.split(":", 1)
        resource = resources.files(package).joinpath(file)
        if not resource.is_file():
            raise AlfiaError(f"bundled cohort {name!r} is missing from the installation; reinstall alfia")
        with resources.as_file(resource) as path:
            return read_cohort(path)
    return read_cohort(table)


def is_bundled_function(table: str | os.PathLike) -> bool:
    """Whether a bundled entry is a ``"module:function"`` building the cohort (not a table): a string whose part
    after the colon is an identifier, as a file name with its extension never is."""
    if not isinstance(table, str) or ":" not in table or Path(table).exists():
        return False
    module, _, attribute = table.partition(":")
    return attribute.isidentifier() and all(part.isidentifier() for part in module.split("."))


def load_cohort(spec: Cohort | pd.DataFrame | str | os.PathLike, schema: str | Schema | None = None,
                require_outcome: bool = True) -> Cohort:
    """A cohort from what a user names: a :class:`Cohort`, a ``DataFrame`` (with ``schema``: a registered name or a
    :class:`~alfia.cohorts.schema.Schema`, e.g. one derived from the data), a parquet file, a bundled name such
    as ``p12-a``, or a source that builds its cohort (an object with a ``cohort()`` method, e.g.
    ``alfia.datasets.meds.MedsSource``). ``require_outcome=False``: stays to score, without outcome or split."""
    import pandas as pd

    from alfia.cohorts.io import Cohort, read_cohort, schema_info

    if isinstance(spec, Cohort):
        return spec
    if callable(getattr(spec, "cohort", None)):  # a data source read on demand (MEDS)
        return spec.cohort()
    if isinstance(spec, pd.DataFrame):
        if not schema:
            raise AlfiaError(f"a DataFrame needs its schema; pass schema= (one of {', '.join(dataset_names())})")
        resolved = schema if not isinstance(schema, str) else get_schema(schema)
        df = resolved.validate(spec, where="the table", require_outcome=require_outcome)
        return Cohort(df=df, schema=resolved, info=schema_info({"source": "DataFrame"}, resolved))
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
