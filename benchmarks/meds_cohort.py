"""MEDS at scale: wall seconds and peak RSS of `alfia cohort meds` on synthetic MIMIC-IV-MEDS datasets of growing size.

    .venv/bin/python benchmarks/meds_cohort.py                          # 10,000 and 100,000 subjects
    .venv/bin/python benchmarks/meds_cohort.py --sizes 2000,20000 --work /big/disk --out /tmp/meds
    .venv/bin/python benchmarks/meds_cohort.py --generate-only          # time the data generation alone

For each size, writes a synthetic MEDS dataset (alfia.datasets.meds.synthetic: a week of events a subject, about 7
an hour: ~11.7 M events and ~46 MiB a 10,000 subjects) into a temporary folder under --work, then runs
``alfia cohort meds --source ROOT --task cw24-in-hospital --out FILE`` in its own process and measures its wall
seconds and peak RSS (``os.wait4``'s ``ru_maxrss``, KiB on Linux: the process and the children it waited for).
The generation also runs in its own process and is measured the same way. The temporary folder is deleted after
each size (--keep keeps it). Prints a markdown table and writes it as OUT.md and OUT.json (--out OUT; a .md or
.json suffix is dropped). Not a test: a benchmark that prints figures. The data say nothing about patients.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GIB = 1024 ** 3
BYTES_PER_EVENT = 5  # zstd parquet of the synthetic data, for the disk check (measured: ~4.1)


def measured(command: list[str], log: Path, timeout: float | None = None) -> dict:
    """Run ``command`` (output to ``log``): its exit status, wall seconds and peak RSS in GiB."""
    with open(log, "w") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = None if timeout is None else started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if deadline is not None and time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait again
    return {"rc": proc.returncode, "seconds": round(seconds, 1), "peak_rss_gib": round(usage.ru_maxrss * 1024 / GIB, 3)}


def alfia_command() -> list[str]:
    exe = ROOT / ".venv" / "bin" / "alfia"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "alfia.cli"]


def tail(path: Path, lines: int = 8) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def generate(n: int, folder: Path, args) -> tuple[dict, dict]:
    """Write the dataset in a child process: (its counts, its measurement)."""
    info_file = folder / "generated.json"
    code = ("import json, sys; from alfia.datasets.meds.synthetic import write_synthetic_meds; "
            f"info = write_synthetic_meds({str(folder / 'meds')!r}, {n}, seed={args.seed}, days={args.days}, "
            f"events_per_hour={args.events_per_hour}, shard_size={args.shard_size}); "
            f"open({str(info_file)!r}, 'w').write(json.dumps(info))")
    run = measured([sys.executable, "-c", code], folder / "generate.log")
    if run["rc"] != 0:
        raise SystemExit(f"generating {n} subjects failed (exit {run['rc']}):\n{tail(folder / 'generate.log')}")
    return json.loads(info_file.read_text()), run


def table(rows: list[dict]) -> str:
    head = ("| subjects | events | shards | dataset MiB | generate s | generate peak RSS GiB | cohort s | "
            "cohort peak RSS GiB | RSS growth vs first size |")
    lines = [head, "|" + "---|" * 9]
    base = next((r["cohort"]["peak_rss_gib"] for r in rows if r.get("cohort", {}).get("rc") == 0), None)
    for r in rows:
        c = r.get("cohort")
        if c is None:
            seconds = rss = growth = "not run"
        elif c["rc"] != 0:
            seconds, rss, growth = f"failed (exit {c['rc']})", "", ""
        else:
            seconds, rss = f"{c['seconds']:.1f}", f"{c['peak_rss_gib']:.2f}"
            growth = "" if base is None or r is rows[0] else f"{100 * (c['peak_rss_gib'] / base - 1):+.0f} %"
        lines.append(f"| {r['subjects']:,} | {r['events']:,} | {r['shards']} | {r['bytes'] / 2 ** 20:.1f} | "
                     f"{r['generate']['seconds']:.1f} | {r['generate']['peak_rss_gib']:.2f} | {seconds} | {rss} | "
                     f"{growth} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="subjects per dataset (default 10000,100000)")
    parser.add_argument("--work", default=tempfile.gettempdir(),
                        help="folder for the temporary datasets (default the system temp folder)")
    parser.add_argument("--out", help="results file stem: OUT.md and OUT.json (default "
                                      "benchmarks/results/meds-cohort-<host>-<date>)")
    parser.add_argument("--generate-only", action="store_true", help="write and time the datasets only")
    parser.add_argument("--keep", action="store_true", help="keep the datasets (and cohorts) under --work")
    parser.add_argument("--days", type=float, default=7.0, help="days of events a subject (default 7)")
    parser.add_argument("--events-per-hour", type=float, default=6.0, help="events an hour at least (default 6)")
    parser.add_argument("--shard-size", type=int, default=5_000,
                        help="subjects a shard (default 5000: the same largest shard at every size, so that the "
                             "figures show how memory grows with the subjects alone)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--timeout", type=float, default=None, help="seconds before a cohort run is killed")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / (
        f"meds-cohort-{socket.gethostname().split('.')[0]}-{time.strftime('%Y%m%d-%H%M')}")
    if out.suffix in (".md", ".json"):
        out = out.with_suffix("")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)

    rows = []
    for n in sizes:
        need = n * args.days * 24 * args.events_per_hour * 1.3 * BYTES_PER_EVENT
        free = shutil.disk_usage(work).free
        if need > free:
            raise SystemExit(f"{work} has {free / GIB:.1f} GiB free; {n:,} subjects need about {need / GIB:.1f} GiB")
        folder = Path(tempfile.mkdtemp(prefix=f"meds-{n}-", dir=work))
        try:
            info, gen = generate(n, folder, args)
            row = {k: info[k] for k in ("subjects", "events", "shards", "bytes", "deaths")} | {"generate": gen}
            print(f"{n:,} subjects: {info['events']:,} events in {info['shards']} shards, "
                  f"{info['bytes'] / 2 ** 20:.1f} MiB, generated in {gen['seconds']:.1f} s "
                  f"(peak RSS {gen['peak_rss_gib']:.2f} GiB)", flush=True)
            if not args.generate_only:
                cohort = folder / "cohort.parquet"
                command = [*alfia_command(), "cohort", "meds", "--source", str(folder / "meds"),
                           "--task", "cw24-in-hospital", "--out", str(cohort)]
                run = measured(command, folder / "cohort.log", args.timeout)
                run["command"] = " ".join(command)
                if run["rc"] != 0:
                    run["error"] = tail(folder / "cohort.log")
                    print(f"  alfia cohort meds failed (exit {run['rc']}):\n{run['error']}", flush=True)
                else:
                    if cohort.exists():
                        import pyarrow.parquet as pq

                        run["cohort_rows"] = pq.ParquetFile(cohort).metadata.num_rows
                    print(f"  alfia cohort meds: {run['seconds']:.1f} s, peak RSS {run['peak_rss_gib']:.2f} GiB",
                          flush=True)
                row["cohort"] = run
            rows.append(row)
        finally:
            if args.keep:
                print(f"  kept {folder}")
            else:
                shutil.rmtree(folder, ignore_errors=True)

    text = table(rows)
    print(text)
    meta = {"host": socket.gethostname(), "platform": platform.platform(), "python": platform.python_version(),
            "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M"), "days": args.days,
            "events_per_hour": args.events_per_hour, "shard_size": args.shard_size, "seed": args.seed,
            "task": "cw24-in-hospital", "generate_only": args.generate_only}
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    out.with_suffix(".md").write_text(
        f"# alfia cohort meds at scale ({meta['date']}, {meta['host']}, {meta['cpus']} CPUs)\n\n{text}\n\n"
        "Peak RSS: ru_maxrss of the command's process (os.wait4); RSS growth: against the first size's cohort run.\n")
    print(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.json')}")
    if any(r.get("cohort", {}).get("rc", 0) != 0 for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
