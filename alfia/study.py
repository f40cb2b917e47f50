"""The main job (`make study`): the whole study on the bundled real cohort, stage by stage, each timed.

Set A (PhysioNet 2012) is the development cohort with its train/val/test split; set B is the external
validation cohort, encoded with set A's text encoder and scored on all rows.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from alfia.cohorts import Cohort, write_cohort
from alfia.cohorts.bundled import load_bundled
from alfia.cohorts.table1 import table1, to_markdown
from alfia.evaluation.metrics import evaluate, format_metrics
from alfia.inference import finish_run, predict_cohort
from alfia.io import atomic_path, write_text_atomic
from alfia.text.encoder import DEFAULT_STYLE, TextEncoder
from alfia.training.config import make_config
from alfia.training.trainer import train


class StageClock:
    """Prints and records the wall time of each stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        print(f"== {name}", flush=True)
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 1)
        print(f"== {name}: {self.seconds[name]:.1f} s", flush=True)

    def markdown(self) -> str:
        rows = [f"| {name} | {sec:.1f} |" for name, sec in self.seconds.items()]
        total = sum(self.seconds.values())
        return "\n".join(["| stage | seconds |", "| --- | ---: |", *rows, f"| **total** | **{total:.1f}** |"])


def encode_cohort(cohort: Cohort, encoder: TextEncoder) -> Cohort:
    df = cohort.df.copy()
    df["text"] = encoder.transform(df)
    return Cohort(df=df, schema=cohort.schema, info={**cohort.info, "text_encoder": encoder.to_dict()})


SCORES = {"ref_saps1": "SAPS-I (challenge)", "ref_sofa": "SOFA (challenge)", "sapsii_approx": "SAPS II (approx.)",
          "oasis_approx": "OASIS (approx.)", "sirs": "SIRS"}


def evaluate_score(y: np.ndarray, score: np.ndarray) -> dict:
    """Ranking metrics of a clinical score (not a probability): the score is mapped monotonically onto
    [0, 1], which leaves AUPRC, AUROC and best F1/F2 unchanged; calibration metrics do not apply."""
    span = score.max() - score.min()
    scaled = (score - score.min()) / span if span > 0 else np.zeros_like(score)
    result = evaluate(y, scaled)
    for key in ("brier", "ece"):
        result.pop(key, None)
    return result


def severity_scores(dev: Cohort, ext: Cohort) -> dict:
    """Each severity score used directly as a risk score on set A's test split and on set B (rows with the
    score; a higher score means higher risk)."""
    out = {}
    test = dev.split("test")
    for column, name in SCORES.items():
        out[name] = {}
        for where, df in (("test", test), ("external", ext.df)):
            known = df[column].notna()
            out[name][where] = evaluate_score(df.loc[known, "hospital_mortality"].to_numpy(),
                                              df.loc[known, column].to_numpy(dtype=float))
    return out


def _cell(m: dict) -> str:
    return f"{m['value']:.3f} ({m['ci_low']:.3f}–{m['ci_high']:.3f})"


def results_markdown(metrics: dict, external: dict, scores: dict, run: Path) -> list[str]:
    lines = ["## Results (95% bootstrap CIs, 1,000 stratified resamples)", "",
             "| model | data | n | AUPRC | AUROC |", "| --- | --- | ---: | --- | --- |"]
    rows = [("ALFIA", "set A test split", metrics["test"]), ("ALFIA", "set B (external, all rows)",
                                                                 external["metrics"])]
    for name, by in scores.items():
        rows += [(name, "set A test split", by["test"]), (name, "set B (external, all rows)", by["external"])]
    for model, data, m in rows:
        lines.append(f"| {model} | {data} | {m['n']:,} | {_cell(m['auprc'])} | {_cell(m['auroc'])} |")
    history = [json.loads(x) for x in (run / "history.jsonl").read_text().splitlines()]
    lines += ["", "Validation per epoch: " + "; ".join(
        f"epoch {h['epoch']}: AUPRC {h['val_auprc']:.3f}, AUROC {h['val_auroc']:.3f}" for h in history), "",
        f"Threshold (best F1 on validation, applied unchanged): {external['threshold']:.3f}. "
        f"Set B inference: {external['ms_per_sample']:.1f} ms per stay, peak memory {external['peak_rss_mb']:.0f} MB.",
        ""]
    return lines


def run_study(out: str | Path, style: str | None = None, profile: str = "quick") -> Path:
    style = style or DEFAULT_STYLE
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    clock = StageClock()
    summary: list[str] = ["# ALFIA study on PhysioNet/CinC 2012 (development: set A; external: set B)", ""]

    with clock.stage("cohorts"):
        dev, ext = load_bundled("p12-a"), load_bundled("p12-b")
        write_cohort(dev, out / "p12-a.parquet")
        write_cohort(ext, out / "p12-b.parquet")

    with clock.stage("encode"):
        encoder = TextEncoder(dev.schema.name, style=style).fit(dev.df)
        dev_text, ext_text = encode_cohort(dev, encoder), encode_cohort(ext, encoder)
        encoder.save(out / "encoder.json")
        write_cohort(dev_text, out / "p12-a.encoded.parquet")
        write_cohort(ext_text, out / "p12-b.encoded.parquet")

    with clock.stage("table1"):
        table = to_markdown(table1(dev), title="Table 1: set A, baseline characteristics by hospital mortality")
        print(table)
        write_text_atomic(out / "table1.md", table + "\n")
        summary += [table, ""]

    run = out / "alfia-run"
    with clock.stage("train ALFIA (quick profile)"):
        config = make_config(profile)
        print("settings: " + ", ".join(f"{k}={v}" for k, v in config.to_dict().items()), flush=True)
        train(dev_text, run, config, resume=(run / "checkpoint").exists())

    with clock.stage("evaluate on set A (validation threshold, test split once)"):
        metrics = finish_run(run, dev_text)
        print(format_metrics(metrics["test"]))

    with clock.stage("external validation on set B (all rows)"):
        table, info = predict_cohort(run, ext)
        with atomic_path(out / "p12-b.predictions.parquet") as tmp:
            table.to_parquet(tmp, index=False)
        write_text_atomic(out / "p12-b.metrics.json", json.dumps(info, indent=2))
        print(format_metrics(info["metrics"]))

    with clock.stage("severity scores on the same rows"):
        scores = severity_scores(dev, ext)

    summary += results_markdown(metrics, info, scores, run)
    summary += ["## Stage times", "", clock.markdown(), ""]
    write_text_atomic(out / "summary.md", "\n".join(summary))
    write_text_atomic(out / "timings.json", json.dumps(clock.seconds, indent=2))
    print(clock.markdown())
    print(f"study summary: {out / 'summary.md'}")
    return out / "summary.md"
