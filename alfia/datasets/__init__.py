"""The data sets: one package per data set (schema, text template, builder, synthetic targets, severity-score
labels, cross-schema mappings), whose ``__init__.py`` registers it with :mod:`alfia.cohorts.registry`.

This package imports every package it finds beside it, so adding a data set is one new package and nothing else
(docs/DEVELOPING.md, "Adding a data set"). Its path is extended (:func:`pkgutil.extend_path`) to every
``alfia/datasets/`` folder on ``sys.path``, so a data set can also live outside ALFIA's source tree, e.g. in
``~/my-data/alfia/datasets/my_icu/`` with ``~/my-data`` on ``PYTHONPATH``. The registry imports this package on its
first lookup.
"""

import importlib
import pkgutil

__path__ = pkgutil.extend_path(__path__, __name__)

for _module in pkgutil.iter_modules(__path__, prefix=f"{__name__}."):
    if _module.ispkg:
        importlib.import_module(_module.name)
