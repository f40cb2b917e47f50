"""Evaluation shared by every model: point metrics, bootstrap CIs, thresholds, calibration, decision curves."""

from alfia.evaluation.calibration import (
    calibration_summary,
    decision_curve,
    net_benefit,
    reliability_curve,
    treat_all_net_benefit,
)
from alfia.evaluation.metrics import (
    TEST_OPTIMAL_LABEL,
    average_precision,
    best_fbeta,
    bootstrap_indices,
    brier_score,
    choose_threshold,
    evaluate,
    expected_calibration_error,
    format_metrics,
    paired_difference,
    roc_auc,
    threshold_metrics,
)

__all__ = [
    "TEST_OPTIMAL_LABEL",
    "average_precision",
    "best_fbeta",
    "bootstrap_indices",
    "brier_score",
    "calibration_summary",
    "choose_threshold",
    "decision_curve",
    "evaluate",
    "expected_calibration_error",
    "format_metrics",
    "net_benefit",
    "paired_difference",
    "reliability_curve",
    "roc_auc",
    "threshold_metrics",
    "treat_all_net_benefit",
]
