"""Importing AutoGluon-Tabular, with the one shim it needs beside pandas 3.

AutoGluon 1.6.3 declares ``pandas<2.4``; the project pins pandas 3.1.1, so AutoGluon is installed without its
dependency bounds (see docs/baselines.md). The only incompatibility met on the models used here is
``DataFrame.fillna(..., downcast=False)`` in AutoGluon's ``FillNaFeatureGenerator``: pandas 3 removed the
argument, and pandas 3 never downcasts silently, which is what ``downcast=False`` asked for. The shim replaces
that one method, and nothing else in pandas or AutoGluon.
"""

from __future__ import annotations

import importlib.util
from functools import cache

import pandas as pd

from alfia.errors import AlfiaError

INSTALL_HINT = "install the baselines extra: `make baselines-setup` (see docs/baselines.md)"


def available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


@cache
def tabular_predictor():
    """Return ``autogluon.tabular.TabularPredictor`` (shimmed for pandas 3) or raise ``AlfiaError``."""
    if not available("autogluon.tabular"):
        raise AlfiaError(f"AutoGluon is not installed; {INSTALL_HINT}")
    from autogluon.tabular import TabularPredictor

    if int(pd.__version__.split(".")[0]) >= 3:
        _patch_fillna()
    return TabularPredictor


def version() -> str | None:
    if not available("autogluon.tabular"):
        return None
    from importlib.metadata import version as _version

    return _version("autogluon.tabular")


def _patch_fillna() -> None:
    from autogluon.features.generators import fillna

    cls = fillna.FillNaFeatureGenerator
    if getattr(cls, "_alfia_pandas3", False):
        return

    def _transform(self, X: pd.DataFrame) -> pd.DataFrame:
        if self._fillna_feature_map:
            if self.inplace:
                X.fillna(self._fillna_feature_map, inplace=True)
            else:
                X = X.fillna(self._fillna_feature_map, inplace=False)
        return X

    cls._transform = _transform
    cls._alfia_pandas3 = True
