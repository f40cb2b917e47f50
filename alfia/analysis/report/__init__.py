"""``alfia report``: one self-contained HTML page about a trained run (images inlined, opens offline).

It opens on a one-screen summary (headline metrics with CIs beside the best baseline, the calibration and
decision-curve verdicts in words, the cost per stay); then 1 cohort (collapsible tables), 2 training dynamics
(Fig. 3b-e), 3 performance (Table 3, Fig. 4), 4 clinical usefulness (calibration, decision curve, subgroups,
threshold metrics), 5 example patients (cards), 6 what the model learned (Fig. 6a: layer weights lambda, token
attention beta on whole words), 7 latent space (Fig. 6b-k), 8 cost (Fig. 5c-d). One module per section computes
its numbers and figures, and one Jinja2 template (``templates/<section>.html.j2``) renders them. Every figure also
writes the numbers it plots to ``RUN/figures/<name>.json``. A section whose inputs are absent says what to pass.
"""

from alfia.analysis.report.build import SECTIONS, TITLES, build_report
from alfia.analysis.report.inputs import best_epoch, read_history

__all__ = ["SECTIONS", "TITLES", "build_report", "best_epoch", "read_history"]
