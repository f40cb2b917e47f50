"""ALFIA: early warning of in-hospital death of ICU patients from first-24-hour data read as clinical text.

    from alfia import ALFIAPredictor, load_cohort, register_dataset
"""

__version__ = "0.1.0"

__all__ = ["ALFIAPredictor", "load_cohort", "register_dataset", "__version__"]

_LAZY = {"ALFIAPredictor": "alfia.api", "load_cohort": "alfia.datasets", "register_dataset": "alfia.datasets"}


def __getattr__(name: str):
    # imported on first use: `import alfia` and the CLI's start-up need not load torch
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'alfia' has no attribute {name!r}")
