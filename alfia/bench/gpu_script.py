"""The steps of ``benchmarks/gpu.sh`` that are Python: the tiny inputs of its CPU smoke run, and the summary of one
GPU session (issue 30, items 3-4).

``python -m alfia.bench.gpu_script tiny-inputs FOLDER``
    a tiny random BERT (:data:`alfia.bench.paper.TINY_BERT`, the packaged MiniLM's tokenizer) in FOLDER/backbone, a
    stratified sample of set A (:data:`TINY_SPLITS` stays per split, a quarter of them deaths) in
    FOLDER/p12-a-tiny.parquet and a random sample of set B (:data:`TINY_SET_B` stays) in FOLDER/p12-b-tiny.parquet:
    the smoke run trains and scores in seconds, never the real MiniLM on all of set A.
``python -m alfia.bench.gpu_script summary FOLDER --bench JSON --run RUN --external METRICS --tests XML --step ...``
    FOLDER/summary.md: the steps with their seconds and exit statuses, the bench's tables (the fixed-shape kernel
    figures, the trainer-loop rows, the measured backward/forward ratio and the paper's setting's cost), the model
    question (ALFIA with the paper's mechanics trained on set A, set B scored, next to the quick profile's set-B
    AUPRC and the best tabular model's, from results/study) and the GPU tests' counts.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

from alfia.cohorts.registry import default_study
from alfia.io import metrics_path, write_text_atomic
from alfia.run_folder import RunFolder

ROOT = Path(__file__).resolve().parents[2]
STUDY = ROOT / "results" / "study"   # the committed quick-profile study (docs/results.md)
TINY_SPLITS = {"train": 64, "val": 32, "test": 32}
TINY_SET_B = 400
# docs/results.md, in case results/study is not beside the package (an installed wheel): set B, all 4,000 stays
QUICK_SET_B = {"auprc": {"value": 0.409, "ci_low": 0.377, "ci_high": 0.450},
               "auroc": {"value": 0.816, "ci_low": 0.799, "ci_high": 0.834}, "n": 4000, "n_pos": 568}
TREES_SET_B = {"model": "WeightedEnsemble", "auprc": {"estimate": 0.449, "ci_low": 0.416, "ci_high": 0.489},
               "auroc": {"estimate": 0.839, "ci_low": 0.823, "ci_high": 0.856}, "n": 4000}


def tiny_inputs(folder: str | Path, seed: int = 0) -> tuple[Path, Path, Path]:
    """(a tiny random BERT's folder, a stratified set-A sample, a set-B sample: parquet files) in ``folder``."""
    import numpy as np

    from alfia.bench.paper import TINY_BERT, random_backbone
    from alfia.cohorts import Cohort
    from alfia.cohorts.bundled import load_bundled
    from alfia.cohorts.io import write_cohort
    from alfia.cohorts.schema import SPLIT

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    backbone = random_backbone(folder / "backbone", TINY_BERT, seed=seed)
    pair = default_study()  # the bundled development and external sets (PhysioNet 2012 A and B)
    cohort = load_bundled(pair.development)
    df, rng, picked = cohort.df, np.random.default_rng(seed), []
    for split, rows in TINY_SPLITS.items():
        here = df[df[SPLIT] == split]
        y = here[cohort.label].to_numpy()
        deaths = rows // 4
        picked += [*rng.choice(here.index[y == 1], deaths, replace=False),
                   *rng.choice(here.index[y == 0], rows - deaths, replace=False)]
    sample = df.loc[picked].reset_index(drop=True)
    set_a = write_cohort(Cohort(df=sample, schema=cohort.schema, info={**cohort.info, "sample_of": pair.development},
                                task=cohort.task), folder / f"{pair.development}-tiny.parquet")
    external = load_bundled(pair.external)
    sample = external.df.sample(n=TINY_SET_B, random_state=seed).reset_index(drop=True)
    set_b = write_cohort(Cohort(df=sample, schema=external.schema, info={**external.info, "sample_of": pair.external},
                                task=external.task), folder / f"{pair.external}-tiny.parquet")
    return backbone, set_a, set_b


def _ci(m: dict | None, key: str = "value") -> str:
    if not m:
        return "–"
    value = m.get(key, m.get("estimate"))
    if m.get("ci_low") is None:
        return f"{value:.3f}"
    return f"{value:.3f} ({m['ci_low']:.3f}–{m['ci_high']:.3f})"


def _read_json(path: str | Path | None) -> dict | None:
    if not path or not Path(path).is_file():
        return None
    return json.loads(Path(path).read_text())


def reference_set_b() -> tuple[dict, dict]:
    """(the quick profile's set-B metrics, the best tabular model's set-B row) of the committed study, else the
    figures docs/results.md gives."""
    quick = (_read_json(metrics_path(STUDY / default_study().external)) or {}).get("metrics") or QUICK_SET_B
    board = _read_json(STUDY / "leaderboard.json") or {}
    rows = [r for r in (board.get("tables") or {}).get("external", []) if r.get("family") == "tabular"]
    best = max(rows, key=lambda r: r["auprc"]["estimate"]) if rows else TREES_SET_B
    return quick, best


def test_counts(xml: str | Path | None) -> dict | None:
    """passed / failed / errors / skipped of a pytest junit-xml file, with the skip reasons (None: no file)."""
    if not xml or not Path(xml).is_file():
        return None
    root = ET.parse(xml).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    counts["skip_reasons"] = sorted({(x.get("message") or "").strip() for x in root.iter("skipped")} - {""})
    counts["failed"] = sorted(f"{c.get('classname')}::{c.get('name')}" for c in root.iter("testcase")
                              if c.find("failure") is not None or c.find("error") is not None)
    return counts


def model_question(run: str | Path | None, external: str | Path | None) -> dict:
    """What the model question's run and its set-B scoring say: its settings, the validation per epoch, the test
    split's and set B's metrics with CIs (None where a file is missing)."""
    run = Path(run) if run else None
    folder = RunFolder(run) if run else None
    config = _read_json(run / RunFolder.CONFIG) if run else None
    history = folder.history() if folder is not None and (run / RunFolder.HISTORY).is_file() else []
    test = _read_json(run / RunFolder.METRICS) if run else None
    scored = _read_json(external)
    return {"config": config, "history": history, "test": (test or {}).get("test", test),
            "set_b": (scored or {}).get("metrics"), "set_b_info": scored}


def _settings_line(config: dict | None) -> str:
    if not config:
        return "settings: – (no config.json: the training did not finish)"
    train = config.get("train", config)
    model = train.get("model", {})
    lora = model.get("lora")
    runtime = config.get("runtime") or {}
    where = "every layer" if lora and lora.get("layers") is None else f"the top {(lora or {}).get('layers')}"
    parts = [f"backbone {model.get('backbone') or config.get('backbone') or '?'}",
             f"LoRA r {lora['r']} on {where}" if lora else "no LoRA",
             f"fusion N_f {(model.get('fusion') or {}).get('num_fusion_layers', '?')}", "head",
             f"epochs {train.get('epochs')}", f"batch {train.get('batch_size')}", f"lr {train.get('lr')}",
             f"max length {model.get('max_length')}", f"precision {runtime.get('precision', train.get('precision'))}",
             f"profile {train.get('profile')}"]
    return "settings: " + ", ".join(parts)


def _metric_row(name: str, m: dict | None) -> str:
    if not m:
        return f"| {name} | – | – | – | – |"
    n, pos = m.get("n"), m.get("n_pos")
    return (f"| {name} | {n:,} | {pos if pos is not None else '–'} | {_ci(m.get('auprc'))} | "
            f"{_ci(m.get('auroc'))} |")


def summary(*, bench: str | None, run: str | None, external: str | None, tests: str | None, steps: list[str],
            device: str, tiny: bool) -> str:
    """The markdown of :func:`write_summary`."""
    from alfia.bench.report import paper_markdown

    lines = [f"# benchmarks/gpu.sh on {platform.node()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", ""]
    if tiny:
        lines += ["**Tiny smoke run (`--tiny`): a random tiny backbone and samples of set A and set B; not a "
                  "measurement, and not an answer to the model question.**", ""]
    lines += [f"Device: {device}. Steps (seconds, exit status):", "", "| step | seconds | exit status |",
              "| --- | ---: | ---: |"]
    for step in steps:
        name, rc, seconds = step.split(":")
        lines.append(f"| {name} | {seconds} | {rc} |")

    lines += ["", "## 1. The paper's setting: `alfia bench --profile paper`", ""]
    result = _read_json(bench)
    if result is None:
        lines.append("No bench results (the step did not run or failed).")
    else:
        lines += [f"Results: `{Path(bench).name}`. The fixed-shape kernel figures, then `alfia train`'s own loop "
                  "(the trainer-loop rows, the benchmark's training figures) and the paper's setting's cost from the "
                  "measured backward/forward ratio:", "", paper_markdown(result).rstrip("\n")]

    lines += ["", "## 2. The model question: ALFIA with the paper's mechanics on set A, set B scored", ""]
    q = model_question(run, external)
    n_b = (q["set_b"] or {}).get("n")
    where_b = f"a {n_b:,}-stay sample" if tiny and n_b else "all rows"
    quick, trees = reference_set_b()
    lines += [_settings_line(q["config"]), "",
              "| | n | deaths | AUPRC (95% CI) | AUROC (95% CI) |", "| --- | ---: | ---: | --- | --- |",
              _metric_row("this run, set A test split", q["test"]),
              _metric_row(f"this run, set B ({default_study().external}, {where_b})", q["set_b"]),
              _metric_row("quick profile, set B (results/study)", quick),
              f"| best tabular model, set B ({trees['model']}, results/study) | {trees.get('n', 4000):,} | | "
              f"{_ci(trees['auprc'])} | {_ci(trees['auroc'])} |", ""]
    if q["history"]:
        lines.append("Validation per epoch: " + "; ".join(
            f"epoch {h['epoch']}: AUPRC {h['val_auprc']:.3f}, AUROC {h['val_auroc']:.3f}, {h['seconds']} s"
            for h in q["history"]) + ".")
    b = (q["set_b"] or {}).get("auprc")
    if b:
        diff = b["value"] - quick["auprc"]["value"]
        lines.append(f"Set-B AUPRC {b['value']:.3f} against the quick profile's {quick['auprc']['value']:.3f} "
                     f"({diff:+.3f}) and the best tabular model's {trees['auprc']['estimate']:.3f}: intervals side by "
                     "side, not a paired test" + (" (tiny smoke run: meaningless)." if tiny else "."))
    else:
        lines.append("Set B was not scored (the step did not run or failed).")

    lines += ["", "## 3. `pytest -m gpu`", ""]
    counts = test_counts(tests)
    if counts is None:
        lines.append("No test results (the step did not run).")
    else:
        lines.append(f"{counts['passed']} passed, {counts['failures']} failed, {counts['errors']} errors, "
                     f"{counts['skipped']} skipped of {counts['tests']}.")
        lines += [f"- failed: {name}" for name in counts["failed"]]
        lines += [f"- skipped: {reason}" for reason in counts["skip_reasons"]]
    return "\n".join(lines) + "\n"


def write_summary(folder: str | Path, **kwargs) -> Path:
    out = Path(folder) / "summary.md"
    write_text_atomic(out, summary(**kwargs))
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m alfia.bench.gpu_script", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    t = sub.add_parser("tiny-inputs", help="a tiny random backbone and a sample of set A, for --tiny")
    t.add_argument("folder")
    s = sub.add_parser("summary", help="FOLDER/summary.md")
    s.add_argument("folder")
    s.add_argument("--bench", help="the bench's results (.json)")
    s.add_argument("--run", help="the model question's run folder")
    s.add_argument("--external", help="set B's metrics (.metrics.json of alfia predict)")
    s.add_argument("--tests", help="pytest -m gpu's junit xml")
    s.add_argument("--step", action="append", default=[], help="NAME:EXIT_STATUS:SECONDS, once per step")
    s.add_argument("--device", default="cuda")
    s.add_argument("--tiny", action="store_true")
    args = p.parse_args(argv)
    if args.what == "tiny-inputs":
        sys.stdout.write("wrote " + ", ".join(map(str, tiny_inputs(args.folder))) + "\n")
        return
    out = write_summary(args.folder, bench=args.bench, run=args.run, external=args.external, tests=args.tests,
                        steps=args.step, device=args.device, tiny=args.tiny)
    sys.stdout.write(out.read_text() + f"\nwrote {out}\n")


if __name__ == "__main__":
    main()
