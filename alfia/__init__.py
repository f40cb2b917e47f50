"""ALFIA: early warning of in-hospital death of ICU patients from first-24-hour data read as clinical text.

    from alfia import ALFIAPredictor, load_cohort, register_dataset
"""

import pkgutil

# a pkgutil-style namespace: an alfia/ folder elsewhere on sys.path (without __init__.py) adds to this package; that
# is how a data-set package outside the source tree, DIR/alfia/datasets/NAME/, is found (alfia/datasets/__init__.py)
__path__ = pkgutil.extend_path(__path__, __name__)

__version__ = "0.1.0"

__all__ = ["ALFIAPredictor", "load_cohort", "register_dataset", "__version__"]

_LAZY = {"ALFIAPredictor": "alfia.api", "load_cohort": "alfia.cohorts.registry",
         "register_dataset": "alfia.cohorts.registry"}


def __getattr__(name: str):
    # imported on first use: `import alfia` and the CLI's start-up need not load torch
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'alfia' has no attribute {name!r}")
