"""Build a cohort from a MEDS dataset: ``alfia cohort meds --source ROOT (--labels DIR | --task NAME)``.

1. The dataset is checked against the ``meds`` package's schemas (:mod:`alfia.datasets.meds.standard`).
2. The prediction rows come from the label files or a built-in task (:mod:`alfia.datasets.meds.tasks`); each gets
   a unique integer ``stay_id`` and keeps ``subject_id`` and ``prediction_time`` (reference columns: never a
   model input). Splits: ``subject_splits.parquet`` (``train``/``tuning``/``held_out`` -> train/val/test), else
   ALFIA's 75/12.5/12.5 split by subject.
3. The features: a concept map (``--concepts``), the features of an earlier MEDS cohort (``--features-of``), or
   the codes found in at least ``--min-share`` of the training split's windows (at most ``--max-codes`` numeric
   ones) (:mod:`alfia.datasets.meds.concepts`), aggregated over each row's input window.

Bounded memory: DuckDB reads the parquet shards one at a time, with the window and the codes pushed into the scan;
only one shard's windowed events are ever in memory, never the dataset. Codes that say how a stay ended (death,
ICU and hospital discharge) are never features; ``text_value`` (it may hold clinical notes) is read only with
``--text-values``, and then only for category concepts without a capture group.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from alfia.cohorts.io import Cohort, CohortWriter, read_cohort_info
from alfia.cohorts.registry import BuildOptions
from alfia.cohorts.schema import ID, SPLIT, Column, Schema
from alfia.cohorts.splits import assign_splits
from alfia.cohorts.sqldb import dynamic_stats
from alfia.datasets.meds import SOURCE_HELP, MedsSource
from alfia.datasets.meds.concepts import STAT_WORDS, Concept, ConceptMap, derived_concepts, read_concept_map
from alfia.datasets.meds.schema import SCHEMA as BASE
from alfia.datasets.meds.standard import MedsDataset, open_dataset, read_labels, read_splits
from alfia.datasets.meds.tasks import (
    BUILT_IN,
    DAY,
    TaskCodes,
    assign_stay_ids,
    birth_times,
    check_unique,
    label_stays,
    labels_task,
    task_stays,
)
from alfia.errors import AlfiaError, UsageError

logger = logging.getLogger(__name__)

DATASET = "meds"
MIN_SHARE = BuildOptions.min_share  # a code is a feature when in at least this share of the training windows
MAX_CODES = BuildOptions.max_codes  # numeric codes at most (about 15 tokens each: the text stays within 512 tokens)
MAX_CATEGORIES = 20  # a categorical prefix with more values than this is not a feature (diagnoses, drugs)
NUMERIC_SHARE = 0.5  # a code is numeric when at least half of its events have a value
DUCKDB_MEMORY = "1GB"  # DuckDB spills to disk beyond this
STATIC_T = -1e12  # hours: static rows come before every timed row


def build(options: BuildOptions) -> Cohort:
    """``alfia cohort meds`` from Python: the cohort in memory."""
    return build_meds(options.require_source(DATASET, SOURCE_HELP), **_keywords(options))


def write(options: BuildOptions, out: str | os.PathLike) -> Cohort:
    """``alfia cohort meds --out FILE``: the cohort written shard by shard, never whole in memory; returns the
    cohort of its stays without their features (``info`` and counts as written)."""
    return write_meds(options.require_source(DATASET, SOURCE_HELP), out, **_keywords(options))


def _keywords(options: BuildOptions) -> dict:
    """The MEDS options of ``alfia cohort`` (a MedsSource's fields besides its root)."""
    return {f.name: getattr(options, f.name) for f in dataclasses.fields(MedsSource) if f.name != "root"}


def build_meds(root: str | os.PathLike, **options) -> Cohort:
    """The cohort of the MEDS dataset at ``root`` in memory (see the module docstring for ``options``: labels, task,
    concepts, features_of, max_codes, min_share, codes, text_values, progress)."""
    plan = _Plan.make(root, **options)
    chunks = list(plan.chunks())
    schema = plan.finish_schema()
    columns = schema.required_columns(plan.task)  # a category never seen is no column
    df = pd.concat([chunk[columns] for chunk in chunks], ignore_index=True)
    del chunks
    cohort = Cohort(df=schema.validate(df, task=plan.task, where=f"MEDS cohort from {root}"), schema=schema,
                    info=plan.info(), task=plan.task)
    plan.log(schema)
    return cohort


def write_meds(root: str | os.PathLike, out: str | os.PathLike, **options) -> Cohort:
    """The cohort of the MEDS dataset at ``root`` written to ``out`` shard by shard (bounded memory): the rows go to
    a temporary file beside ``out`` first, because the schema (the categories seen, the rounding of each feature)
    is known only after the last shard; then each row group is validated and written to ``out`` atomically."""
    out = Path(out)
    plan = _Plan.make(root, **options)
    scratch = out.parent / f".{out.name}.rows.tmp"
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with pq.ParquetWriter(scratch, plan.scratch_schema()) as writer:
            for chunk in plan.chunks():
                writer.write_table(pa.Table.from_pandas(chunk, schema=writer.schema, preserve_index=False))
        schema = plan.finish_schema()
        columns = schema.required_columns(plan.task)
        with CohortWriter(out, schema, plan.task, plan.info()) as cohort_writer:
            rows = pq.ParquetFile(scratch)
            for group in range(rows.num_row_groups):
                cohort_writer.write(rows.read_row_group(group, columns=columns).to_pandas())
    finally:
        scratch.unlink(missing_ok=True)
    plan.log(schema)
    stays = plan.stays
    return Cohort(df=stays[[ID, "label", SPLIT]].rename(columns={"label": plan.task.label}), schema=schema,
                  info=plan.info(), task=plan.task)


class _Plan:
    """Everything decided before the features are read: the dataset, the prediction rows and their splits, the
    concepts; then the features shard by shard (:meth:`chunks`) and the schema they give (:meth:`finish_schema`)."""

    @classmethod
    def make(cls, root, *, labels=None, task=None, concepts=None, features_of=None, max_codes: int = MAX_CODES,
             min_share: float = MIN_SHARE, codes: tuple[str, ...] = (), text_values: bool = False,
             progress: bool = True) -> _Plan:
        if (labels is None) == (task is None):
            raise UsageError(f"`alfia cohort meds` needs --labels DIR or --task NAME (one of them; tasks: "
                             f"{', '.join(BUILT_IN)})")
        if task is not None and task not in BUILT_IN:
            raise UsageError(f"unknown MEDS task {task!r}; choose one of {', '.join(BUILT_IN)} or pass --labels")
        if concepts is not None and features_of is not None:
            raise UsageError("--concepts and --features-of exclude each other: the features come from one of them")
        if max_codes < 1 or not 0 < min_share <= 1:
            raise UsageError("--max-codes must be a positive number and --min-share in (0, 1]")
        plan = cls()
        plan.root, plan.text_values = root, text_values
        plan.dataset = dataset = open_dataset(root)
        if "eicu" in dataset.name.lower():
            logger.warning("MEDS: %s's subject is a hospital stay (eICU-MEDS): splits by subject are not by patient, "
                           "so a patient's two hospital stays may fall in two splits", dataset.name)
        plan.codes = task_codes = TaskCodes.parse(codes)
        plan.scan = scan = _Scan(dataset, progress)
        all_codes = scan.distinct_codes()
        if labels is not None:
            plan.task = labels_task(str(labels))
            stays = label_stays(read_labels(labels))
            scan.check_subjects(stays)
            plan.attrition = {"label_rows": int(len(stays))}
        else:
            plan.task = BUILT_IN[task]
            stays, plan.attrition = task_stays(task, scan.role_events(all_codes, task_codes), task_codes)
        if stays.empty:
            raise AlfiaError(f"the MEDS dataset {root} gives no prediction rows for {plan.task.name} (attrition: "
                             f"{plan.attrition}); check --task, --labels or the --code patterns")
        if (stays["subject_id"].abs() >= 2**53).any():
            raise AlfiaError("MEDS subject_id values of 2^53 or more cannot be kept exactly in a cohort; renumber "
                             "the subjects")
        check_unique(stays)
        stays = assign_stay_ids(stays)
        birth = scan.births(all_codes, task_codes)
        stays["age"] = (stays["anchor"] - stays["subject_id"].map(birth)) / DAY / 365.25
        stays[SPLIT], plan.split_by = _splits(dataset, stays)
        plan.stays = stays

        outcome_codes = {c for c in all_codes if any(p.fullmatch(c) for p in task_codes.outcome_patterns())}
        birth_codes = {c for c in all_codes if task_codes.roles()["birth"].fullmatch(c)}
        candidates = all_codes - outcome_codes - birth_codes
        plan.reference = None
        if features_of is not None:
            reference, info = read_cohort_info(features_of)  # the footer only: the rows are not needed
            if reference.derived_from != DATASET or "meds" not in info:
                raise AlfiaError(f"{features_of} is not a MEDS cohort built by `alfia cohort meds`; pass one")
            plan.reference = reference
            plan.concepts = ConceptMap.from_dict(info["meds"]["features"])
        elif concepts is not None:
            plan.concepts = read_concept_map(concepts)
        else:
            plan.concepts = _choose_codes(scan, stays, candidates, dataset, max_codes, min_share)
        if plan.concepts.text_concepts() and not text_values:
            raise UsageError(f"concepts {', '.join(plan.concepts.text_concepts())} take their value from text_value, "
                             "which may hold clinical notes: pass --text-values to read it, or give their patterns a "
                             "capture group")
        plan.table = plan.concepts.code_table(sorted(candidates))
        plan.report = {"events_read": 0}
        plan.seen: dict[str, set] = {}  # category column -> values seen
        plan.medians: dict[str, list[tuple[float, int]]] = {}  # numeric column -> (median |value|, n) per chunk
        return plan

    def columns(self) -> list[tuple[str, Concept | None, str]]:
        """(column, its concept, statistic) of every feature, in cohort order (age first)."""
        return [("age", None, "age")] + [(name, c, stat) for c in self.concepts.concepts for name, stat in c.columns()]

    def chunks(self):
        """The cohort rows shard by shard (every feature column; categories as read)."""
        columns = self.columns()
        known = {} if self.reference is None else {c.name: c.categories for c in self.reference.columns
                                                   if c.kind == "category"}
        for stays, features in self.scan.features(self.stays, self.concepts, self.table, self.text_values,
                                                  self.report):
            chunk = _cohort_frame(stays, features, columns, self.task.label, self.report)
            for name, concept, _ in columns:
                values = chunk[name]
                if name in known:  # a value the earlier cohort never had: missing (the model never read it), counted
                    unknown = values.notna() & ~values.isin(known[name])
                    if unknown.any():
                        counted = self.report.setdefault("unknown_categories_set_missing", {})
                        counted[name] = counted.get(name, 0) + int(unknown.sum())
                        chunk[name] = values = values.where(~unknown, None)
                if concept is not None and concept.aggregate == "category":
                    self.seen.setdefault(name, set()).update(values.dropna().astype(str))
                elif values.notna().any():
                    self.medians.setdefault(name, []).append((float(values.abs().median()), int(values.notna().sum())))
            yield chunk

    def finish_schema(self) -> Schema:
        """The schema of the rows read: categories seen, each feature's rounding; an earlier cohort's when reused."""
        if self.reference is not None:
            return self.reference
        window = _windows(self.task)
        columns = []
        for name, concept, stat in self.columns():
            if concept is None:  # age, as every MEDS cohort has it
                columns.append(dataclasses.replace(BASE[name], window=window))
            elif concept.aggregate == "category":
                if self.seen.get(name):  # a category never seen has nothing to offer (a column needs categories)
                    columns.append(Column(name, "category", concept.words, categories=tuple(sorted(self.seen[name])),
                                          window=window))
            else:
                columns.append(_column(concept, name, stat, window, _decimals(self.medians.get(name, []))))
        columns += [BASE[name] for name in BASE.reference_columns]
        return Schema(name=f"{DATASET}-{self.concepts.digest()}", derived_from=DATASET,
                      description=f"prediction rows of the MEDS dataset {self.dataset.name}: features from "
                                  f"{self.concepts.source}", columns=tuple(columns), task=self.task,
                      notes=(f"inputs: {window}; static rows are inputs of every window",))

    def scratch_schema(self) -> pa.Schema:
        """The arrow types of the rows between the two passes of :func:`write_meds`."""
        fields = [(ID, pa.int64()), (self.task.label, pa.int64())]
        for name, concept, _ in self.columns():
            category = concept is not None and concept.aggregate == "category"
            fields.append((name, pa.string() if category else pa.float64()))
        fields += [("subject_id", pa.float64()), ("prediction_time", pa.timestamp("us")), (SPLIT, pa.string())]
        return pa.schema(fields)

    def info(self) -> dict:
        label = self.stays["label"]
        return {"source": f"MEDS dataset {self.dataset.root} ({self.dataset.name})",
                "builder": f"{__name__}.build_meds", "synthetic": False, "n_stays": int(len(label)),
                "deaths": int(label.sum()), "split_by": self.split_by, "attrition": self.attrition,
                "meds": {"dataset": self.dataset.metadata, "shards": len(self.dataset.shards),
                         "events": self.dataset.rows, "features": self.concepts.to_dict(), "codes": vars(self.codes),
                         "windows": _windows(self.task), "feature_report": self.report,
                         "text_values_read": self.text_values}}

    def log(self, schema: Schema) -> None:
        y = self.stays["label"]
        logger.info("MEDS: %d prediction rows, %d with label 1 (%.2f%%), %d features, split by %s", len(y),
                    int(y.sum()), 100 * y.mean(), len(schema.feature_columns), self.split_by)


def _windows(task) -> str:
    return task.inputs or f"[ICU admission, ICU admission + {task.window[1]:g} h)"


def _splits(dataset: MedsDataset, stays: pd.DataFrame) -> tuple[pd.Series, str]:
    given = read_splits(dataset)
    if given is not None and stays["subject_id"].isin(given.index).all():
        return stays["subject_id"].map(given).to_numpy(), "subject (metadata/subject_splits.parquet)"
    why = ("has no metadata/subject_splits.parquet" if dataset.splits_file is None else
           "splits other than train/tuning/held_out or lacks some subjects" if given is None else
           "lacks some subjects in metadata/subject_splits.parquet")
    logger.warning("MEDS: the dataset %s: using ALFIA's 75/12.5/12.5 split by subject instead", why)
    split = assign_splits(stays[ID], stays["label"], patient_ids=stays["subject_id"].astype(str))
    return split.to_numpy(), "subject (ALFIA's 75/12.5/12.5 split, seed 42)"


def _choose_codes(scan: _Scan, stays: pd.DataFrame, candidates: set[str], dataset: MedsDataset, max_codes: int,
                  min_share: float) -> ConceptMap:
    """The numeric codes (and categorical prefixes) present in at least ``min_share`` of the training windows."""
    train = stays[stays[SPLIT] == "train"]
    if train.empty:
        raise AlfiaError("the MEDS cohort has no training rows to choose its features on; check the splits")
    counts, prefixes = scan.code_counts(train, candidates)
    share = counts["stays"] / len(train)
    numeric = counts[(counts["numeric"] >= NUMERIC_SHARE * counts["events"]) & (share >= min_share)]
    numeric = numeric.assign(share=share).sort_values(["share", "code"], ascending=[False, True]).head(max_codes)
    categorical = {}
    for prefix, stays_with in sorted(prefixes.items()):  # DuckDB returns groups in no fixed order
        family = counts[counts["code"].str.startswith(prefix + "//")]
        # a prefix whose codes carry no value at all (GENDER//F, GENDER//M), with few values, is one category
        if (family["numeric"] == 0).all() and stays_with / len(train) >= min_share \
                and 1 <= len(family) <= MAX_CATEGORIES:
            categorical[prefix] = sorted(family["code"])
    if numeric.empty and not categorical:
        raise AlfiaError(f"no code is present in {min_share:.0%} of the training windows; lower --min-share or "
                         "pass --concepts FILE")
    return derived_concepts(list(numeric["code"]), categorical, dataset.descriptions,
                            source=f"codes in >= {min_share:.0%} of the training windows (at most {max_codes} "
                                   "numeric codes)")


def _column(concept: Concept, name: str, stat: str, window: str, decimals: int) -> Column:
    if stat == "count":
        return Column(name, "int", f"{concept.words} ({STAT_WORDS['count']})", valid=(0, float("inf")),
                      window=window)
    words = concept.words if stat in (concept.aggregate, "total") else f"{concept.words} ({STAT_WORDS[stat]})"
    # values (not a spread or a total) keep the concept's range: their events were checked against it
    valid = concept.valid if stat in ("max", "min", "first", "last", "mean") else None
    return Column(name, "float", words, unit=concept.unit, valid=valid, window=window, decimals=decimals)


def _decimals(medians: list[tuple[float, int]]) -> int:
    """Rounding in the text from the values' size (the median |value|, over the shards' medians weighted by their
    counts): 0 for heart rates, 1 for creatinine, 2 below 1."""
    if not medians:
        return 1
    values = sorted(medians)
    half, seen = sum(n for _, n in values) / 2, 0
    typical = values[-1][0]
    for value, n in values:
        seen += n
        if seen >= half:
            typical = value
            break
    return 0 if typical >= 20 else 1 if typical >= 1 else 2


def _cohort_frame(stays: pd.DataFrame, features: pd.DataFrame, columns: list, label: str,
                  report: dict) -> pd.DataFrame:
    """The cohort rows of ``stays``: their columns and features in cohort order (missing where a stay has none)."""
    features = features.reindex(stays[ID].to_numpy())  # in the stays' order
    out = {ID: stays[ID].to_numpy(), label: stays["label"].to_numpy()}  # one frame built at the end
    for name, concept, stat in columns:
        if name in stays:
            values = stays[name].to_numpy()
        elif name in features:
            values = features[name].to_numpy()
        elif concept is not None and concept.aggregate == "category":
            values = np.full(len(stays), None, dtype=object)
        else:
            values = np.full(len(stays), np.nan)
        if stat == "count":
            values = np.nan_to_num(values.astype("float64"), nan=0.0)
        out[name] = values
    for name in ("subject_id", "prediction_time", SPLIT):
        out[name] = stays[name].to_numpy()
    return pd.DataFrame(out, copy=False)


class _Scan:
    """DuckDB over the shards, one shard at a time."""

    def __init__(self, dataset: MedsDataset, progress: bool):
        self.dataset = dataset
        self.progress = progress
        self.con = duckdb.connect()
        self.con.execute(f"SET memory_limit = '{DUCKDB_MEMORY}'")
        self.con.execute("SET preserve_insertion_order = false")

    def _shards(self, desc: str):
        return tqdm(self.dataset.shard_list(), desc=desc, unit="shard", leave=False,
                    disable=None if self.progress else True)  # None: shown on a terminal only

    def distinct_codes(self) -> set[str]:
        codes: set[str] = set()
        for shard in self._shards("MEDS codes"):
            codes.update(self.con.execute("SELECT DISTINCT code FROM read_parquet(?)", [shard]).fetchnumpy()["code"]
                         .tolist())
        return codes

    def role_events(self, all_codes: set[str], codes: TaskCodes) -> pd.DataFrame:
        """subject_id, time, role of the codes the built-in tasks read (few per subject)."""
        roles = [(code, role) for code in sorted(all_codes) for role, pattern in codes.roles().items()
                 if pattern.fullmatch(code)]
        self.con.register("role_codes", pd.DataFrame(roles, columns=["code", "role"]).astype(str))
        parts = [self.con.execute("SELECT e.subject_id, e.time, r.role FROM read_parquet(?) e JOIN role_codes r "
                                  "USING (code)", [shard]).df() for shard in self._shards("MEDS task events")]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["subject_id", "time", "role"])

    def births(self, all_codes: set[str], codes: TaskCodes) -> pd.Series:
        pattern = codes.roles()["birth"]
        self.con.register("birth_codes", pd.DataFrame({"code": [c for c in sorted(all_codes) if pattern.fullmatch(c)]},
                                                     dtype=str))
        parts = [self.con.execute("SELECT e.subject_id, e.time, 'birth' AS role FROM read_parquet(?) e "
                                  "JOIN birth_codes USING (code)", [shard]).df()
                 for shard in self._shards("MEDS births")]
        return birth_times(pd.concat(parts, ignore_index=True))

    def check_subjects(self, stays: pd.DataFrame) -> None:
        """Every subject of the labels must be in the data."""
        wanted = pd.DataFrame({"subject_id": stays["subject_id"].unique()})
        self.con.register("wanted", wanted)
        found: set[int] = set()
        for shard in self._shards("MEDS subjects"):
            found.update(self.con.execute("SELECT DISTINCT subject_id FROM read_parquet(?) JOIN wanted USING "
                                          "(subject_id)", [shard]).fetchnumpy()["subject_id"].tolist())
        missing = sorted(set(wanted["subject_id"].tolist()) - found)
        if missing:
            raise AlfiaError(f"the labels name {len(missing)} subject{'s' if len(missing) > 1 else ''} that the MEDS "
                             f"data does not hold (e.g. subject_id {missing[0]}); pass the labels of this dataset")

    def _windowed(self, select: str, shard: str, tail: str = "") -> pd.DataFrame:
        """``select`` over the events of ``shard`` in each row's window (static rows always), joined with the
        registered ``stays`` and ``code_map`` tables."""
        return self.con.execute(
            f"SELECT {select} FROM read_parquet(?) e JOIN stays s USING (subject_id) JOIN code_map m USING (code) "
            "WHERE (e.time IS NULL OR ((s.start IS NULL OR e.time >= s.start) AND "
            "(e.time < s.stop OR (s.stop_inclusive AND e.time = s.stop)))) " + tail, [shard]).df()

    def _register_stays(self, stays: pd.DataFrame) -> None:
        self.con.register("stays", stays[["subject_id", ID, "start", "end", "end_inclusive", "anchor"]].rename(
            columns={"end": "stop", "end_inclusive": "stop_inclusive"}))

    def code_counts(self, train: pd.DataFrame, candidates: set[str]) -> tuple[pd.DataFrame, dict[str, int]]:
        """Per code: training windows with it, events, events with a value; per categorical prefix: windows."""
        self._register_stays(train)
        self.con.register("code_map", pd.DataFrame({"code": sorted(candidates)}, dtype=str))
        counts, prefixes = [], {}
        for shard in self._shards("MEDS code counts"):
            counts.append(self._windowed("e.code, count(DISTINCT s.stay_id) AS stays, count(*) AS events, "
                                         "count(e.numeric_value) AS numeric", shard, "GROUP BY e.code"))
            by_prefix = self._windowed("split_part(e.code, '//', 1) AS prefix, count(DISTINCT s.stay_id) AS stays",
                                       shard, "AND e.numeric_value IS NULL AND contains(e.code, '//') GROUP BY prefix")
            for prefix, n in zip(by_prefix["prefix"], by_prefix["stays"], strict=True):
                prefixes[prefix] = prefixes.get(prefix, 0) + int(n)
        table = pd.concat(counts).groupby("code", as_index=False)[["stays", "events", "numeric"]].sum()
        return table, prefixes

    def features(self, stays: pd.DataFrame, concept_map: ConceptMap, table: list, text_values: bool, report: dict):
        """Per shard: its stays and their features (one row per stay_id with events; the columns of every
        concept); ``report`` counts what was read and dropped."""
        self._register_stays(stays)
        concepts = concept_map.concepts
        index = {c.name: i for i, c in enumerate(concepts)}
        codes = pd.DataFrame(table, columns=["code", "concept", "scale", "shift", "category"])
        codes["concept_id"] = codes["concept"].map(index).astype("int32")
        codes["is_category"] = codes["concept"].map({c.name: c.aggregate == "category" for c in concepts})
        self.con.register("code_map", codes.drop(columns=["concept"]))
        text = "e.text_value" if text_values else "NULL::VARCHAR"
        # hours from the anchor, computed in the scan: numbers only reach pandas (no per-event strings)
        t = f"coalesce(date_diff('microsecond', s.anchor, e.time) / 3.6e9, {STATIC_T})"
        done = np.zeros(len(stays), dtype=bool)
        by_subject = pd.Series(np.arange(len(stays)), index=stays["subject_id"].to_numpy())
        for shard in self._shards("MEDS features"):
            subjects = self.con.execute("SELECT DISTINCT subject_id FROM read_parquet(?) JOIN stays USING "
                                        "(subject_id)", [shard]).fetchnumpy()["subject_id"]
            rows = by_subject.loc[by_subject.index.isin(subjects)].to_numpy()
            numeric = self._windowed(f"s.stay_id, m.concept_id, {t} AS t, e.numeric_value * m.scale + m.shift AS "
                                     "value", shard, "AND NOT m.is_category AND e.numeric_value IS NOT NULL")
            category = self._windowed(f"s.stay_id, m.concept_id, {t} AS t, coalesce(m.category, {text}) AS "
                                      "category", shard, "AND m.is_category")
            report["events_read"] += int(len(numeric) + len(category))
            features = _aggregate(numeric, category, concepts, report)
            del numeric, category
            done[rows] = True
            yield stays.iloc[np.sort(rows)], features
        if not done.all():  # not in any shard: cannot happen for checked labels or a task, kept for safety
            yield stays[~done], pd.DataFrame(index=pd.Index([], name=ID))


def _aggregate(numeric: pd.DataFrame, category: pd.DataFrame, concepts: list[Concept], report: dict) -> pd.DataFrame:
    """One shard's windowed events (numeric values; category values) as one row per stay: each concept's
    aggregates."""
    out = []
    for concept_id, values in category.dropna(subset=["category"]).groupby("concept_id", sort=True):
        ordered = values.sort_values([ID, "t"], kind="stable")
        out.append(ordered.groupby(ID)["category"].last().rename(concepts[concept_id].name))
    for concept_id, values in numeric.groupby("concept_id", sort=True):
        concept = concepts[concept_id]
        name = concept.name
        if concept.valid is not None:
            bad = (values["value"] < concept.valid[0]) | (values["value"] > concept.valid[1])
            if bad.any():
                counted = report.setdefault("event_values_out_of_range_dropped", {})
                counted[name] = counted.get(name, 0) + int(bad.sum())
            values = values[~bad]
        if concept.aggregate == "stats":
            out.append(dynamic_stats(values, name))
            out.append(values.groupby(ID)["value"].count().rename(f"{name}_count"))
        elif concept.aggregate == "sum":
            out.append(values.groupby(ID)["value"].sum(min_count=1).rename(f"{name}_total"))
        else:  # first / last, static rows first
            ordered = values.sort_values([ID, "t", "value"], kind="stable").groupby(ID)["value"]
            out.append((ordered.first() if concept.aggregate == "first" else ordered.last()).rename(name))
    return pd.concat(out, axis=1) if out else pd.DataFrame(index=pd.Index([], name=ID))
