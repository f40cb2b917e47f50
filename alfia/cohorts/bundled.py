"""Cohorts that ship with ALFIA: the PhysioNet/CinC Challenge 2012 sets A and B (ODC-By 1.0).

They are built by ``scripts/bundle_p12.py`` with ``build_physionet2012`` and stored in ``alfia/cohorts/data``
beside ``LICENSE-ODC-By.txt`` and ``CITATION.txt``; anything derived from them must carry that citation.
Which tables are bundled is declared with their data set in ``alfia.datasets``.
"""

from alfia.datasets import bundled_tables, load_bundled

__all__ = ["bundled_tables", "load_bundled"]
