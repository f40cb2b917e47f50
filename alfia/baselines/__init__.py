"""Baselines of the study: the tabular zoo of Table 3 through AutoGluon, clinical severity scores, the
ALFIA-derived models (ALF embeddings + tabular features: ALFIA-boost, ALFIA-nn) and the leaderboard that
puts them beside ALFIA. See docs/baselines.md."""

from alfia.baselines.boost import run_boost
from alfia.baselines.leaderboard import leaderboard
from alfia.baselines.scores import score_severity
from alfia.baselines.tabular import MODEL_NAMES, PRESETS, run_baselines

__all__ = ["run_baselines", "run_boost", "leaderboard", "score_severity", "MODEL_NAMES", "PRESETS"]
