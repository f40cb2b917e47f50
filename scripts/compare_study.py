"""Does a ``make study`` folder give the published metrics? Compares every metric of a study folder with
``results/study`` (the committed run): ALFIA's test and set B metrics, its per-epoch validation history, its
calibration and the leaderboard (every model, CIs and paired comparisons). Timings, memory and paths are not
metrics and are left out. The calibration metrics added later (O:E, calibration intercept and slope, with their CIs
and failed bootstrap fits) are compared wherever the expected results have them; where only the study has them
(results committed before they existed) they are listed as not compared, which is no difference.

Leaderboard rows and paired comparisons are matched by model name (and baseline and metric), not by position, so
two models that swap places are no difference. Deterministic models must match exactly (``--tol``); the
torch-trained ones (ALFIA and its run files, ALFIA-boost, ALFIA-nn, the frozen encoder, the tabular networks and the
ensemble that weighs them: :data:`TORCH_TRAINED`) within ``--torch-tol`` (default 0.05, absolute or relative: a
metric moves by hundredths, a count of stays by a few), because their floats depend on the CPU's kernels (README,
"Same seed, same metrics").

Usage: .venv/bin/python scripts/compare_study.py [STUDY] [--expected results/study] [--tol 0] [--torch-tol 0.05]

Exit status 0 when every metric matches (within its tolerance), 1 otherwise, with one line per difference.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

# file in the committed results -> the same file in a study folder
FILES = {"metrics.json": "alfia-run/metrics.json", "history.jsonl": "alfia-run/history.jsonl",
         "calibration.json": "alfia-run/calibration.json", "p12-b.metrics.json": "p12-b.metrics.json",
         "leaderboard.json": "leaderboard.json"}
NOT_METRICS = {"seconds", "ms_per_sample", "peak_rss_mb", "fit_seconds", "predict_seconds", "time", "device"}
# What a study names besides its numbers (the prediction task, since results record it): compared where both sides
# have it; results written before it was recorded are not wrong for lacking it.
DESCRIPTORS = {"task", "cohort_task"}
# Metrics added after results were first committed: a study has them, older expected results do not. Compared where
# the expected results have them (a study that lacks them then differs); only in the study: noted, not a difference.
ADDED_METRICS = {"oe_ratio", "calibration_intercept", "calibration_slope"}
# Models whose training runs torch (their floats move with the CPU's kernels): matched within --torch-tol.
TORCH_TRAINED = ("ALFIA", "frozen encoder", "NeuralNetTorch", "RealMLP", "FTTransformer", "TabM", "WeightedEnsemble")
# ALFIA's own run files: torch-trained throughout
TORCH_FILES = {"metrics.json", "history.jsonl", "calibration.json", "p12-b.metrics.json"}
ROW_KEYS = ("model", "baseline", "metric")  # what names a leaderboard row or a paired comparison


def torch_trained(row: dict) -> bool:
    return any(str(row.get(k, "")).startswith(TORCH_TRAINED) for k in ("model", "baseline"))


def _row_key(row: dict) -> tuple:
    return tuple(str(row.get(k)) for k in ROW_KEYS if k in row)


def _read(path: Path):
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return json.loads(path.read_text())


def differences(expected, found, where: str = "", tol: float = 0.0, not_compared: list[str] | None = None,
                torch_tol: float | None = None, rel_tol: float = 0.0) -> list[str]:
    """Every leaf where ``found`` differs from ``expected`` (numbers within ``tol``, or ``rel_tol`` of their size;
    in the rows of torch-trained models within ``torch_tol``, absolute or relative: a metric moves by hundredths, a
    count of stays by a few), timings aside; an added metric found only in the study goes to ``not_compared`` (when
    given) instead. Lists of rows naming a model are matched by name."""
    if _rows(expected) and _rows(found):
        want, got = {_row_key(r): r for r in expected}, {_row_key(r): r for r in found}
        out = [f"{where}[{' / '.join(key)}]: only in the {'study' if key in got else 'expected results'}"
               for key in sorted(set(want) ^ set(got))]
        for key in [k for k in want if k in got]:
            torch_row = torch_tol is not None and torch_trained(want[key])
            out += differences(want[key], got[key], f"{where}[{' / '.join(key)}]", torch_tol if torch_row else tol,
                               not_compared, torch_tol, torch_tol if torch_row else rel_tol)
        return out
    if isinstance(expected, dict) and isinstance(found, dict):
        out = []
        for key in sorted(set(expected) | set(found), key=str):
            if key in NOT_METRICS:
                continue
            if key in DESCRIPTORS and (key not in expected or key not in found):
                continue
            if key in ADDED_METRICS and key not in expected:
                if not_compared is not None:
                    not_compared.append(f"{where}.{key}" if where else str(key))
                continue
            if key not in expected or key not in found:
                out.append(f"{where}.{key}: only in the {'study' if key in found else 'expected results'}")
                continue
            out += differences(expected[key], found[key], f"{where}.{key}" if where else str(key), tol, not_compared,
                               torch_tol, rel_tol)
        return out
    if isinstance(expected, list) and isinstance(found, list):
        if len(expected) != len(found):
            return [f"{where}: {len(expected)} entries expected, {len(found)} found"]
        return [d for i, (a, b) in enumerate(zip(expected, found, strict=True))
                for d in differences(a, b, f"{where}[{i}]", tol, not_compared, torch_tol, rel_tol)]
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (expected, found))
    if numbers and (math.isclose(expected, found, rel_tol=rel_tol, abs_tol=tol) or
                    (math.isnan(expected) and math.isnan(found))):
        return []
    return [] if expected == found else [f"{where}: expected {expected!r}, found {found!r}"]


def _rows(value) -> bool:
    """A list of leaderboard rows or paired comparisons: dicts naming a model, each once."""
    return (isinstance(value, list) and bool(value) and all(isinstance(r, dict) and "model" in r for r in value)
            and len({_row_key(r) for r in value}) == len(value))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", nargs="?", default="study", help="the study folder (default: study)")
    parser.add_argument("--expected", default="results/study", help="the committed results (default: results/study)")
    parser.add_argument("--tol", type=float, default=0.0, help="absolute tolerance on numbers (default 0: identical)")
    parser.add_argument("--torch-tol", type=float, default=0.05, help="absolute tolerance on the numbers of "
                        "torch-trained models and ALFIA's run files (default 0.05; 0: identical)")
    args = parser.parse_args(argv)
    study, expected = Path(args.study), Path(args.expected)
    problems, not_compared = [], []
    for name, rel in FILES.items():
        if not (expected / name).is_file() or not (study / rel).is_file():
            missing = expected / name if not (expected / name).is_file() else study / rel
            problems.append(f"{missing} is missing")
            continue
        only_here: list[str] = []
        torch_file = name in TORCH_FILES  # ALFIA's own run: torch-trained throughout
        tol = max(args.tol, args.torch_tol) if torch_file else args.tol
        problems += [f"{name}: {d}" for d in differences(_read(expected / name), _read(study / rel), tol=tol,
                                                         not_compared=only_here, torch_tol=args.torch_tol,
                                                         rel_tol=args.torch_tol if torch_file else 0.0)]
        not_compared += [f"{name}: {path}" for path in only_here]
    if not_compared:
        print(f"not compared: {len(not_compared)} calibration metric(s) ({', '.join(sorted(ADDED_METRICS))}) the "
              f"study has and {expected} predates, e.g. {not_compared[0]}; commit a new study's results to compare "
              "them")
    for line in problems:
        print(line)
    print(f"{len(problems)} difference(s) between {study} and {expected}" if problems
          else f"every metric of {study} equals {expected}'s ({', '.join(FILES)})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
