"""PhysioNet/CinC Challenge 2012 (``physionet2012``): built from a set's raw files, and its sets A and B bundled as
``p12-a`` and ``p12-b`` (``data/``, ODC-By 1.0, with their license and citation; rebuilt by
``scripts/bundle_p12.py``). See docs/physionet2012.md.

schema.py (columns, cleaning ranges), template.py (clinical text), builder.py (raw files -> cohort), scores.py
(SOFA, SAPS II, OASIS, SIRS).
"""

from alfia.cohorts.registry import register_dataset

SOURCE_HELP = "a set-X directory or set-X.tar.gz"

register_dataset("physionet2012", package=__name__, source_help=SOURCE_HELP,
                 bundled={"p12-a": f"{__name__}.data:p12_a.parquet",  # set A: 4,000 stays, 554 deaths
                          "p12-b": f"{__name__}.data:p12_b.parquet"},  # set B: 4,000 stays, 568 deaths
                 # `alfia study` without a cohort: develop on set A, validate on set B (held out: a second
                 # partition of the same challenge pool, not another hospital)
                 study={"development": "p12-a", "external": "p12-b", "shown": {"p12-a": "set A", "p12-b": "set B"}})
