"""Rebuild the bundled PhysioNet/CinC 2012 cohorts (alfia/datasets/physionet2012/data/p12_{a,b}.parquet) from ../shared.

Usage: .venv/bin/python scripts/bundle_p12.py [DATA_DIR]   (default: ../shared/data/physionet2012)
"""

from __future__ import annotations

import sys
from pathlib import Path

from alfia.cohorts.io import write_cohort
from alfia.cohorts.registry import get_dataset
from alfia.datasets.physionet2012.builder import build_physionet2012

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> None:
    data = Path(argv[0]) if argv else ROOT.parent / "shared" / "data" / "physionet2012"
    out_dir = ROOT / "alfia" / "datasets" / "physionet2012" / "data"
    for name, table in get_dataset("physionet2012").bundled.items():
        file = table.split(":", 1)[1]
        letter = name.rsplit("-", 1)[1]
        cohort = build_physionet2012(data / f"set-{letter}.tar.gz", data / f"Outcomes-{letter}.txt")
        write_cohort(cohort, out_dir / file)
        print(f"{name}: {len(cohort.df)} stays, {int(cohort.df['hospital_mortality'].sum())} deaths "
              f"-> {out_dir / file}")


if __name__ == "__main__":
    main(sys.argv[1:])
