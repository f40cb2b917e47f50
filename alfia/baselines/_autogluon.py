"""Importing AutoGluon-Tabular, an optional extra (``pip install -e '.[baselines]'``, which `make setup` does).

AutoGluon 1.6.3 supports pandas < 2.4 and pyarrow < 25; the lock (constraints.txt) holds versions inside those
bounds, so AutoGluon runs unmodified.
"""

from __future__ import annotations

import importlib.util
from functools import cache

from alfia.errors import AlfiaError

INSTALL_HINT = ("install the baselines extra: `pip install -c constraints.txt -e '.[baselines]'` "
                "(`make setup` does it; see docs/baselines.md)")


def available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


@cache
def tabular_predictor():
    """Return ``autogluon.tabular.TabularPredictor`` or raise ``AlfiaError``."""
    if not available("autogluon.tabular"):
        raise AlfiaError(f"AutoGluon is not installed; {INSTALL_HINT}")
    from autogluon.tabular import TabularPredictor

    return TabularPredictor


def version() -> str | None:
    if not available("autogluon.tabular"):
        return None
    from importlib.metadata import version as _version

    return _version("autogluon.tabular")


def seed_key(model) -> str | None:
    """The hyper-parameter that seeds an AutoGluon model (``model``: its key, e.g. ``"GBM"``, or its class), or None
    for a model without one (k-nearest neighbours: nothing random to seed). AutoGluon seeds every model with 0 by
    default; this name is how another seed reaches it."""
    if isinstance(model, str):
        from autogluon.tabular.registry import ag_model_registry

        model = ag_model_registry.key_to_cls(model)
    return getattr(model, "seed_name", None)
