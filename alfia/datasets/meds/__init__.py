"""MEDS datasets (``meds``): any dataset in the Medical Event Data Standard 0.4 (MIMIC-IV-MEDS, eICU-MEDS,
AUMCdb-MEDS ...), with ACES / MEDS-DEV label files or a built-in task, read shard by shard with DuckDB
(``alfia cohort meds --source ROOT (--labels DIR | --task NAME) [--concepts FILE]``). The features, and so the
schema, come from the data: the schema is saved in the cohort file and the run folder. See docs/cohorts.md
"From MEDS".

standard.py (the MEDS checks), tasks.py (prediction times and labels), concepts.py (codes -> features),
builder.py (the scan and the aggregates), template.py (the text), synthetic.py (synthetic MEDS datasets),
data/ (the concept map of MIMIC-IV-MEDS onto YAIB's ricu concepts).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

from alfia.cohorts.registry import BuildOptions, register_dataset
from alfia.cohorts.task import register_task
from alfia.datasets.meds.tasks import BUILT_IN

SOURCE_HELP = "a MEDS 0.4 dataset folder (data/*.parquet, metadata/codes.parquet)"

for _task in BUILT_IN.values():
    register_task(_task)
register_dataset("meds", package=__name__, source_help=SOURCE_HELP,
                 writer=f"{__name__}.builder:write")  # `alfia cohort meds --out FILE`: shard by shard


@dataclass(frozen=True)
class MedsSource:
    """A MEDS dataset where the Python API takes a cohort: ``ALFIAPredictor().fit(MedsSource(root,
    task="cw24-in-hospital"))``, ``predictor.evaluate(MedsSource(other, labels=..., features_of="cohort.parquet"))``,
    ``load_cohort(MedsSource(...))``; the fields are ``alfia cohort meds``'s options."""

    root: str | os.PathLike
    labels: str | os.PathLike | None = None
    task: str | None = None
    concepts: str | os.PathLike | None = None
    features_of: str | os.PathLike | None = None
    max_codes: int = BuildOptions.max_codes
    min_share: float = BuildOptions.min_share
    codes: tuple[str, ...] = ()
    text_values: bool = False

    def cohort(self):
        from alfia.datasets.meds.builder import build_meds

        options = asdict(self)
        return build_meds(options.pop("root"), **options)
