"""One way to load an input: every command and the Python facade read their cohorts through :func:`load_input`, so
each accepts the same things (a cohort file, a bundled name such as ``p12-a``, a ``DataFrame`` with its schema, a
:class:`Cohort`) and refuses with the same words."""

from __future__ import annotations

import logging
import os

from alfia.cohorts import TEXT, Cohort, load_cohort
from alfia.cohorts.mapping import map_cohort
from alfia.cohorts.schema import Schema
from alfia.errors import AlfiaError
from alfia.run_folder import RunFolder
from alfia.text.encoder import DEFAULT_STYLE, TextEncoder, saved_encoder

logger = logging.getLogger(__name__)


def load_input(spec, schema: str | Schema | None = None, *, encoded: bool = False, training=None,
               run: str | os.PathLike | None = None, require_outcome: bool = True,
               style: str = DEFAULT_STYLE) -> Cohort | None:
    """The cohort ``spec`` names (None: None), read as ``schema`` (a registered name or a :class:`Schema`) when the
    table does not name its own; the name of the run's or the training cohort's schema stands for that schema (one
    derived from the data, which no registry knows by name).

    ``run``: as that run reads it, unchanged in the run's schema, else mapped onto it, which needs ``training``
    (the run's training cohort) for the modes; a run trained on given texts takes them as they are.
    ``training`` alone: mapped onto the training cohort's schema when it has another (external validation).
    ``encoded``: with its texts, as encoded, or encoded now in ``style`` with cut points from its own train split.
    """
    if spec is None:
        return None
    training = load_input(training)
    if run is not None:   # the schema of the run's text encoder; none for a run trained on given texts
        encoder = saved_encoder(RunFolder(run))
        target = None if encoder is None else encoder.schema
    else:
        target = None if training is None else training.schema
    if target is not None and schema == target.name:   # its name stands for it: no registry knows a derived one
        schema = target
    cohort = load_cohort(spec, schema=schema, require_outcome=require_outcome)
    if target is not None and cohort.schema.name != target.name:
        if training is None:
            raise AlfiaError(f"the cohort is schema {cohort.schema.name!r}, the run {target.name!r}: pass the run's "
                             "training cohort with --training-cohort to map it (docs/serving.md, external validation)")
        if training.schema.name != target.name:
            raise AlfiaError(f"the training cohort is schema {training.schema.name!r}, the run {target.name!r}")
        cohort = map_cohort(cohort, training)
    if encoded and TEXT not in cohort.df.columns:
        logger.info(f"writing the texts of {len(cohort.df):,} stays ({style} style, cut points from the cohort's "
                    "train split); `alfia encode` does it once")
        cohort = TextEncoder(cohort.schema, style=style).fit(cohort.df).encode(cohort)
    return cohort

