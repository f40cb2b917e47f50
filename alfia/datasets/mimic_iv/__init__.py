"""MIMIC-IV (``mimic-iv``): built from a MIMIC-IV database with mimic-code's derived concepts (docs/databases.md),
and its synthetic twin ``synth-mimic-iv`` calibrated to the paper's Table 1 (docs/synthetic.md).

schema.py (columns), template.py (clinical text), builder.py (database -> cohort), synthetic.py (the twin's
targets), mapping.py (an eICU cohort read as MIMIC-IV).
"""

from alfia.cohorts.registry import register_dataset
from alfia.cohorts.sqldb import SOURCE_HELP

register_dataset("mimic-iv", package=__name__, source_help=SOURCE_HELP, synthetic=f"{__name__}.synthetic:TARGETS",
                 mappings={"eicu": f"{__name__}.mapping:FROM_EICU"})
