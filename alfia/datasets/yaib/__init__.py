"""YAIB cohorts (``yaib``): YAIB's "mortality24" task (death in the ICU, predicted at 24 h from the first 24 h) read
from any YAIB cohort folder made with ricu (``alfia cohort yaib --source DIR [--patients FILE]``), and the cohorts of
the open MIMIC-III and eICU demo databases bundled as ``yaib-mimic-demo`` and ``yaib-eicu-demo`` (``data/``: YAIB's
files byte for byte, ODbL 1.0, with the licence, citations and the eICU demo's patient ids). See docs/yaib.md.

schema.py (columns: ricu's concepts and their CW-24 aggregates), template.py (clinical text), builder.py (YAIB
folder -> cohort; the bundled cohorts are built from the shipped files when loaded).
"""

from alfia.cohorts.registry import register_dataset

SOURCE_HELP = "a YAIB cohort folder (sta.parquet, dyn.parquet, outc.parquet)"

register_dataset("yaib", package=__name__, source_help=SOURCE_HELP,
                 bundled={"yaib-eicu-demo": f"{__name__}.builder:load_eicu_demo",  # 1,367 stays, 70 ICU deaths
                          "yaib-mimic-demo": f"{__name__}.builder:load_mimic_demo"},  # 99 stays, 21 ICU deaths
                 # `alfia study yaib-eicu-demo`: develop on the eICU demo, validate on the MIMIC-III demo (another
                 # database: Figure 5a-b's external validation across databases)
                 study={"development": "yaib-eicu-demo", "external": "yaib-mimic-demo",
                        "shown": {"yaib-eicu-demo": "eICU demo", "yaib-mimic-demo": "MIMIC-III demo"}})
