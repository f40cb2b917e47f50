"""eICU Collaborative Research Database v2.0 (``eicu``): built from an eICU database (docs/databases.md), and its
synthetic twin ``synth-eicu`` calibrated to the paper's Table 2 (docs/synthetic.md).

schema.py (columns), template.py (clinical text), builder.py (database -> cohort, with SAPS II and OASIS computed
from the first 24 hours), synthetic.py (the twin's targets), mapping.py (a MIMIC-IV cohort read as eICU).
"""

from alfia.cohorts.registry import register_dataset
from alfia.cohorts.sqldb import SOURCE_HELP

register_dataset("eicu", package=__name__, source_help=SOURCE_HELP, synthetic=f"{__name__}.synthetic:TARGETS",
                 mappings={"mimic-iv": f"{__name__}.mapping:FROM_MIMIC_IV"})
