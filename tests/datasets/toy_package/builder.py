"""The toy builder: ``options.n`` invented stays from ``options.seed`` (no source needed)."""

import numpy as np
import pandas as pd
from alfia.datasets.toy.schema import SCHEMA

from alfia.cohorts.io import Cohort
from alfia.cohorts.registry import BuildOptions
from alfia.cohorts.schema import ID, SPLIT
from alfia.cohorts.splits import assign_splits


def build(options: BuildOptions) -> Cohort:
    rng = np.random.default_rng(options.seed)
    y = (rng.random(options.n) < 0.3).astype(int)
    df = pd.DataFrame({ID: np.arange(1, options.n + 1), SCHEMA.task.label: y,
                       "age": rng.uniform(20, 90, options.n).round(),
                       "lactate": np.where(y == 1, rng.uniform(3, 10, options.n), rng.uniform(0.5, 3, options.n)),
                       "sepsis": (rng.random(options.n) < 0.2 + 0.5 * y).astype(float),
                       "toy_score": rng.integers(0, 6, options.n) + 4 * y})
    df[SPLIT] = assign_splits(df[ID], y)
    return Cohort(df=SCHEMA.validate(df, where="toy cohort"), schema=SCHEMA, info={"source": "toy generator",
                                                                                  "synthetic": True})
