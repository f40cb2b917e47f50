"""Memory at scale (issue 20): peak RSS and stays/s of `alfia train` (quick profile) and `alfia predict` on synthetic
MIMIC-IV cohorts of growing size, each command in its own process under GNU time.

    .venv/bin/python benchmarks/memory.py                       # 5,000, 10,000 and 25,000 stays (~1.5 h, 2 cores)
    .venv/bin/python benchmarks/memory.py --sizes 500,1000 --epochs 1 --out /tmp/mem
    .venv/bin/python benchmarks/memory.py --commands predict --out DIR   # predict again with DIR's runs

Writes memory.json and memory.md into --out (default benchmarks/results/memory-<host>-<date>/) and prints the
table. The synthetic cohorts say nothing about patients; they only have the real cohorts' shape (docs/synthetic.md).
Not a test: a benchmark that prints figures (docs/speed.md, "Memory at scale").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(command: list[str], log: Path) -> dict:
    """Run ``command`` under ``/usr/bin/time -v``: its wall seconds and peak RSS (MiB); its output goes to ``log``."""
    with open(log, "w") as out:
        done = subprocess.run(["/usr/bin/time", "-v", *command], stdout=out, stderr=subprocess.STDOUT)
    text = log.read_text()
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed (exit {done.returncode}); see {log}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    clock = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text).group(1)
    seconds = sum(float(part) * 60 ** i for i, part in enumerate(reversed(clock.split(":"))))
    return {"seconds": round(seconds, 1), "peak_rss_mib": round(rss_kb / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5000,10000,25000", help="cohort sizes (default 5000,10000,25000)")
    parser.add_argument("--epochs", type=int, default=1, help="quick-profile epochs (default 1)")
    parser.add_argument("--out", help="output folder (default benchmarks/results/memory-<host>-<date>)")
    parser.add_argument("--commands", default="train,predict",
                        help="what to measure (default train,predict; predict alone reuses --out's run folders)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    out = Path(args.out or ROOT / "benchmarks" / "results" /
               f"memory-{socket.gethostname().split('.')[0]}-{time.strftime('%Y%m%d-%H%M')}")
    out.mkdir(parents=True, exist_ok=True)
    alfia = [sys.executable, "-m", "alfia.cli"]
    commands = [c.strip() for c in args.commands.split(",")]
    if not set(commands) <= {"train", "predict"} or not commands:
        raise SystemExit(f"--commands {args.commands}: choose train, predict or train,predict")
    rows = []
    for n in sizes:
        cohort, encoded, run = out / f"mimic-{n}.parquet", out / f"mimic-{n}.encoded.parquet", out / f"run-{n}"
        if "train" in commands:
            subprocess.run([*alfia, "-q", "cohort", "synth-mimic-iv", "--n", str(n), "--out", str(cohort)],
                           check=True)
            subprocess.run([*alfia, "-q", "encode", str(cohort), "--out", str(encoded)], check=True)
        elif not (run / "threshold.json").is_file():
            raise SystemExit(f"{run} holds no finished run: measure train first (--commands train,predict)")
        arguments = {"train": [str(encoded), "--out", str(run), "--epochs", str(args.epochs), "--n-boot", "100"],
                     "predict": [str(run), str(cohort), "--out", str(out / f"pred-{n}.parquet")]}
        row = {"stays": n}
        for command in commands:
            figures = timed([*alfia, "-q", command, *arguments[command]], out / f"{command}-{n}.log")
            row[command] = {**figures, "stays_per_s": round(n / figures["seconds"], 2)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    first, last = rows[0], rows[-1]
    growth = {cmd: round(100 * (last[cmd]["peak_rss_mib"] / first[cmd]["peak_rss_mib"] - 1), 1)
              for cmd in commands}
    result = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                          "host": socket.gethostname()},
              "epochs": args.epochs, "commands": commands, "rows": rows, "rss_growth_percent": growth}
    lines = ["| stays | " + " | ".join(f"{c} peak RSS (MiB) | {c} s | {c} stays/s" for c in commands) + " |",
             "| ---: |" + " ---: | ---: | ---: |" * len(commands)]
    for r in rows:
        cells = [f"{r[c]['peak_rss_mib']:,.0f} | {r[c]['seconds']:.0f} | {r[c]['stays_per_s']:.1f}" for c in commands]
        lines.append(f"| {r['stays']:,} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Peak RSS growth from {first['stays']:,} to {last['stays']:,} stays: "
                 + ", ".join(f"{c} {growth[c]:+.1f}%" for c in commands) + ".")
    (out / "memory.json").write_text(json.dumps(result, indent=2))
    (out / "memory.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
