"""Cohorts that ship with ALFIA: the PhysioNet/CinC Challenge 2012 sets A and B (ODC-By 1.0).

They are built by ``scripts/bundle_p12.py`` with ``build_physionet2012`` and stored in ``alfia/cohorts/data``
beside ``LICENSE-ODC-By.txt`` and ``CITATION.txt``; anything derived from them must carry that citation.
"""

from __future__ import annotations

from importlib import resources

from alfia.cohorts.io import Cohort, read_cohort
from alfia.errors import AlfiaError

DATA_PACKAGE = "alfia.cohorts.data"
BUNDLED: dict[str, str] = {
    "p12-a": "p12_a.parquet",  # PhysioNet/CinC Challenge 2012 set A: 4,000 stays, 554 deaths
    "p12-b": "p12_b.parquet",  # PhysioNet/CinC Challenge 2012 set B: 4,000 stays, 568 deaths
}


def load_bundled(name: str) -> Cohort:
    """Read a bundled cohort by name (``p12-a`` or ``p12-b``)."""
    if name not in BUNDLED:
        raise AlfiaError(f"unknown bundled cohort {name!r}; known are {', '.join(BUNDLED)}")
    resource = resources.files(DATA_PACKAGE).joinpath(BUNDLED[name])
    if not resource.is_file():
        raise AlfiaError(f"bundled cohort {name!r} is missing from the installation; reinstall alfia or "
                         "rebuild it with scripts/bundle_p12.py")
    with resources.as_file(resource) as path:
        return read_cohort(path)
