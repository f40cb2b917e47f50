"""Load test of the risk service on loopback: ``alfia serve`` in a subprocess, ``--requests`` POST /v1/predict
(one structured record each, from the bundled set B) from ``--concurrency`` client threads; then ``alfia
predict``'s batch throughput on the same stays, for comparison.

    .venv/bin/python benchmarks/serving_load.py [--run RUN] [--requests 600] [--concurrency 8]

Prints p50/p95 latency, stays/s, lost requests (any answer but 200, or no answer) and the machine. Without
``--run`` it builds a demo run: the packaged all-MiniLM-L6-v2 backbone with untrained fusion and head (the cost of
an answer does not depend on training; its probabilities mean nothing), set A's banded text encoder and the
training reference built from set A's train split (the warnings do not depend on training either).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def demo_run(folder: Path) -> Path:
    from alfia.cohorts.bundled import load_bundled
    from alfia.evaluation.drift import REFERENCE_FILE, build_reference
    from alfia.model.alfia import ALFIA, ALFIAConfig
    from alfia.text.encoder import TextEncoder

    model = ALFIA(ALFIAConfig())
    model.save(folder / "model")
    dev = load_bundled("p12-a")
    encoder = TextEncoder("physionet2012", "banded").fit(dev.df)
    encoder.save(folder / "encoder.json")
    (folder / "threshold.json").write_text(json.dumps({"threshold": 0.5, "chosen_on": "demo run (untrained)"}))
    # the training reference a trained run keeps, so that answers carry their warnings as they would
    reference = build_reference(dev, encoder.transform(dev.df).tolist(), model.tokenizer)
    (folder / REFERENCE_FILE).write_text(json.dumps(reference))
    return folder


def records(n: int) -> list[dict]:
    from alfia.cohorts.bundled import load_bundled

    cohort = load_bundled("p12-b")
    out = []
    for row in cohort.df.head(n).to_dict("records"):
        rec = {}
        for col in cohort.schema.columns:
            v = row[col.name]
            if col.role == "feature" and v is not None and not (isinstance(v, float) and math.isnan(v)):
                rec[col.name] = v if col.kind == "category" else (int(v) if col.kind in ("int", "binary") else v)
        out.append(rec)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_test(url: str, bodies: list[dict], concurrency: int) -> dict:
    import httpx

    latencies, lost = [], []
    lock = threading.Lock()
    todo = iter(range(len(bodies)))

    def worker():
        with httpx.Client(timeout=120) as client:
            while True:
                with lock:
                    i = next(todo, None)
                if i is None:
                    return
                start = time.perf_counter()
                try:
                    r = client.post(url + "/v1/predict", json=bodies[i])
                    ok = r.status_code == 200 and len(r.json()["results"]) == len(bodies[i]["stays"])
                except httpx.HTTPError:
                    ok = False
                seconds = time.perf_counter() - start
                with lock:
                    (latencies if ok else lost).append(seconds)

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    stays = sum(len(b["stays"]) for b in bodies) - len(lost)
    ms = 1000 * np.array(latencies)
    return {"requests": len(bodies), "concurrency": concurrency, "lost": len(lost), "wall_s": round(wall, 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 1), "p95_ms": round(float(np.percentile(ms, 95)), 1),
            "stays_per_s": round(stays / wall, 1)}


def screenshot(url: str, record: dict, path: Path) -> None:
    """The page with one stay filled in and scored (playwright driving the system Chromium)."""
    import shutil

    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(url + "/")
        page.wait_for_selector("body[data-ready='1']")
        for name, value in record.items():
            if page.locator(f"select#f-{name}").count():
                page.select_option(f"#f-{name}", str(value))
            else:
                page.fill(f"#f-{name}", str(value))
        page.click("#submit")
        page.wait_for_selector("#answer:not([hidden])")
        page.screenshot(path=str(path))
        browser.close()


def predict_throughput(run: Path, n: int) -> dict:
    from alfia.cohorts import Cohort
    from alfia.cohorts.bundled import load_bundled
    from alfia.inference import predict_cohort

    cohort = load_bundled("p12-b")
    part = Cohort(df=cohort.df.head(n).reset_index(drop=True), schema=cohort.schema, info=cohort.info)
    _, info = predict_cohort(run, part)
    return {"stays": n, "ms_per_stay": round(info["ms_per_sample"], 1),
            "stays_per_s": round(1000 / info["ms_per_sample"], 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a trained run folder (default: a demo run, see above)")
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--out", help="also write the figures as JSON here")
    parser.add_argument("--screenshot", help="also save a screenshot of the page (PNG) with one scored stay")
    parser.add_argument("--screenshot-only", action="store_true", help="skip the load test")
    args = parser.parse_args()
    from alfia.bench.measure import machine_info

    with tempfile.TemporaryDirectory() as tmp:
        run = Path(args.run) if args.run else demo_run(Path(tmp) / "run")
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        server = subprocess.Popen([sys.executable, "-m", "alfia.cli", "serve", str(run), "--port", str(port)],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            url = f"http://127.0.0.1:{port}"
            import httpx

            for _ in range(600):
                try:
                    if httpx.get(url + "/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            else:
                raise SystemExit("error: the service did not start; " + server.stderr.read()[-500:])
            recs = records(max(args.requests, 20))
            if args.screenshot:
                # a stay with a full record: the page shows every part of an answer
                screenshot(url, max(recs, key=len), Path(args.screenshot))
            if args.screenshot_only:
                return 0
            bodies = [{"stays": [{"stay_id": i, "record": recs[i % len(recs)]}]} for i in range(args.requests)]
            load_test(url, bodies[:16], args.concurrency)  # warm-up
            served = load_test(url, bodies, args.concurrency)
        finally:
            server.terminate()
            server.wait(timeout=30)
        batch = predict_throughput(run, min(args.requests, 500))
    result = {"service": served, "alfia_predict": batch, "machine": machine_info(),
              "run": args.run or "demo (packaged all-MiniLM-L6-v2, untrained fusion and head)"}
    print(f"service: {served['requests']} requests at concurrency {served['concurrency']}, lost {served['lost']}; "
          f"p50 {served['p50_ms']} ms, p95 {served['p95_ms']} ms; {served['stays_per_s']} stays/s")
    print(f"alfia predict (batch, same stays): {batch['ms_per_stay']} ms per stay, {batch['stays_per_s']} stays/s")
    m = result["machine"]
    print(f"machine: {m['cpu']}, {m['cpu_count']} cores, {m['torch_cpu_capability']}, torch {m['torch']}, "
          f"load average at start {m['load_average_start']}")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    return 1 if served["lost"] else 0


if __name__ == "__main__":
    sys.exit(main())
