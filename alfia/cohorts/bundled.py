"""Cohorts that ship with ALFIA, by name (e.g. the PhysioNet/CinC Challenge 2012 sets ``p12-a`` and ``p12-b``).

A data set declares its bundled tables when it registers (``alfia/datasets/<name>/__init__.py``); the tables and
their license and citation files live in that data set's package.
"""

from alfia.cohorts.registry import bundled_tables, load_bundled

__all__ = ["bundled_tables", "load_bundled"]
