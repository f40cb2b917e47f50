"""ALFIA: early warning of in-hospital death of ICU patients from first-24-hour data read as clinical text.

    from alfia import ALFIAPredictor          # the Python facade (alfia.api)
"""

__version__ = "0.1.0"

__all__ = ["ALFIAPredictor", "__version__"]


def __getattr__(name: str):
    # imported on first use: `alfia --help` and `import alfia.cli` need not load torch
    if name == "ALFIAPredictor":
        from alfia.api import ALFIAPredictor

        return ALFIAPredictor
    raise AttributeError(f"module 'alfia' has no attribute {name!r}")
