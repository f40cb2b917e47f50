"""The main job (`make study`): the whole study on the bundled real cohort, stage by stage, each timed.

Set A (PhysioNet 2012) is the development cohort with its train/val/test split; set B is the held-out
("external") validation cohort -- a second partition of the same challenge pool, not another hospital --
encoded with set A's text encoder and scored on all rows. ``alfia study COHORT --external EXTERNAL`` runs the
same stages on a user's own cohorts (an external cohort of another schema is mapped onto the development
cohort's, with every mapped and imputed variable logged and written to ``external-mapping.json``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

from alfia import manifest
from alfia.analysis.report import build_report
from alfia.baselines.boost import run_boost
from alfia.baselines.leaderboard import leaderboard
from alfia.baselines.readout import run_frozen_readout
from alfia.baselines.tabular import run_baselines
from alfia.cohorts import write_cohort
from alfia.cohorts.table1 import table1, to_markdown
from alfia.evaluation.metrics import format_ci, format_metrics
from alfia.inference import predict_cohort, write_predictions
from alfia.io import write_text_atomic
from alfia.model.backbone import backbone_identity
from alfia.run_folder import RunFolder
from alfia.text.encoder import DEFAULT_STYLE, TextEncoder
from alfia.training.config import make_config
from alfia.training.trainer import train

logger = logging.getLogger(__name__)  # under "alfia": the CLI shows it, -q hides it


class StageClock:
    """Logs and records the wall time of each stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        logger.info(f"== {name}")
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 1)
        logger.info(f"== {name}: {self.seconds[name]:.1f} s")

    def markdown(self) -> str:
        rows = [f"| {name} | {sec:.1f} |" for name, sec in self.seconds.items()]
        total = sum(self.seconds.values())
        return "\n".join(["| stage | seconds |", "| --- | ---: |", *rows, f"| **total** | **{total:.1f}** |"])


SHOWN = {"p12-a": "set A", "p12-b": "set B"}  # how the bundled cohorts are named in the study's text


def alfia_results(metrics: dict, external: dict, history: list[dict],
                  names: tuple[str, str] = ("p12-a", "p12-b")) -> list[str]:
    """ALFIA's own lines of the summary (and of the README, through ``readme_results``); ``names``: the
    development and external cohorts' labels."""
    dev, ext = (SHOWN.get(n, n) for n in names)
    lines = ["| ALFIA (quick profile, calibrated) | n | deaths | AUPRC (95% CI) | AUROC (95% CI) | Brier | ECE |",
             "| --- | ---: | ---: | --- | --- | ---: | ---: |"]
    for data, m in ((f"{dev} test split", metrics["test"]), (f"{ext}, external (all rows)", external["metrics"])):
        lines.append(f"| {data} | {m['n']:,} | {m['n_pos']:,} | {format_ci(m['auprc'])} | {format_ci(m['auroc'])} | "
                     f"{m['brier']['value']:.3f} | {m['ece']['value']:.3f} |")
    lines += ["", "Validation per epoch: " + "; ".join(
        f"epoch {h['epoch']}: AUPRC {h['val_auprc']:.3f}, AUROC {h['val_auroc']:.3f}" for h in history) + ".",
        f"Threshold (best F1 on the validation split, applied unchanged): {external['threshold']:.3f}; "
        f"{ext} inference {external['ms_per_sample']:.1f} ms per stay, peak memory {external['peak_rss_mb']:.0f} MB."]
    return lines


def readme_results(folder: str | Path, names: tuple[str, str] = ("p12-a", "p12-b")) -> str:
    """The README's results block, from the files a study writes (copied to ``results/study``); ``names``: its
    development and external cohorts."""
    folder = Path(folder)
    metrics, history = RunFolder(folder).metrics(), RunFolder(folder).history()
    external = json.loads((folder / f"{names[1]}.metrics.json").read_text())
    timings = json.loads((folder / "timings.json").read_text())
    lines = alfia_results(metrics, external, history, names)
    board = folder / "leaderboard.md"
    if board.exists():
        lines += ["", board.read_text().strip()]
    lines += ["", "Stage times of that `make study` run (seconds): "
              + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()) + f"; total {sum(timings.values()):.0f}."]
    return "\n".join(lines)


def cohort_label(spec) -> str:
    """The name a study gives a cohort in its file names: a bundled name as it is, a file by its stem."""
    return Path(spec).stem if Path(str(spec)).suffix else str(spec)


def study_cohorts(cohort: str | Path = "p12-a", external: str | Path | None = None):
    """The development and external cohorts of a study and their labels; the bundled pair by default. An external
    cohort of another schema is mapped onto the development cohort's (``alfia.cohorts.mapping``)."""
    from alfia.cohorts import load_cohort
    from alfia.errors import AlfiaError

    if external is None:
        if str(cohort) != "p12-a":
            raise AlfiaError("a study validates on a held-out cohort: pass --external (a parquet file or bundled "
                             "name) with your own development cohort")
        external = "p12-b"
    dev, ext = load_cohort(cohort), load_cohort(external)
    if ext.schema.name != dev.schema.name:
        from alfia.cohorts.mapping import describe, map_cohort

        ext = map_cohort(ext, dev)
        logger.info(describe(ext.info["mapping"]))
    names = cohort_label(cohort), cohort_label(external)
    if names[0] == names[1]:
        raise AlfiaError(f"the development and external cohorts are both named {names[0]!r}; pass two cohorts")
    return dev, ext, names


def run_study(out: str | Path, style: str | None = None, profile: str = "quick", cohort: str | Path = "p12-a",
              external: str | Path | None = None, device: str | None = "auto", precision: str | None = "auto") -> Path:
    """The whole study into ``out``; ``cohort``/``external``: the development and external cohorts (files or
    bundled names; by default PhysioNet 2012 sets A and B); ``device`` / ``precision``: where and how every stage
    that runs the model computes (:mod:`alfia.model.runtime`)."""
    on = {"device": device, "precision": precision}
    style = style or DEFAULT_STYLE
    started = manifest.now()
    dev, ext, (dev_name, ext_name) = study_cohorts(cohort, external)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    clock = StageClock()
    summary: list[str] = [f"# ALFIA study (development: {dev_name}; external: {ext_name})", "",
                          f"Task: {dev.task.name}: {dev.task.title}.", ""]

    with clock.stage("cohorts"):
        write_cohort(dev, out / f"{dev_name}.parquet")
        write_cohort(ext, out / f"{ext_name}.parquet")
        if "mapping" in ext.info:
            write_text_atomic(out / "external-mapping.json", json.dumps(ext.info["mapping"], indent=2))

    with clock.stage("encode"):
        encoder = TextEncoder(dev.schema.name, style=style).fit(dev.df)
        dev_text, ext_text = encoder.encode(dev), encoder.encode(ext)
        encoder.save(out / RunFolder.ENCODER)
        write_cohort(dev_text, out / f"{dev_name}.encoded.parquet")
        write_cohort(ext_text, out / f"{ext_name}.encoded.parquet")

    with clock.stage("table1"):
        shown = SHOWN.get(dev_name, dev_name)
        table = to_markdown(table1(dev), title=f"Table 1: {shown}, baseline characteristics by {dev.task.outcome}")
        logger.info(table)
        write_text_atomic(out / "table1.md", table + "\n")
        summary += [table, ""]

    run = out / "alfia-run"
    with clock.stage("train ALFIA (quick profile)"):
        config = make_config(profile, precision=precision or "auto")
        logger.info(f"settings: {config.describe()}")
        metrics = train(dev_text, run, config, resume=RunFolder(run).checkpoint.exists(), finish=True, device=device)
        logger.info(f"{dev_name} test split (scored once, after training):")
        logger.info(format_metrics(metrics["test"]))

    with clock.stage(f"external validation on {SHOWN.get(ext_name, ext_name)} (all rows)"):
        table, info = predict_cohort(run, ext, progress=True, **on)
        write_predictions(table, info, out / f"{ext_name}.predictions.parquet")
        logger.info(format_metrics(info["metrics"]))

    with clock.stage("baselines: AutoGluon zoo and severity scores"):
        run_baselines(dev, out / "baselines", external=ext, preset=profile)

    with clock.stage("frozen encoder + logistic regression"):
        run_frozen_readout(run, dev, out / "frozen-readout", external=ext, **on)

    with clock.stage("ALFIA-boost / ALFIA-nn"):
        run_boost(run, dev, out / "boost", external=ext, preset=profile, **on)

    with clock.stage("leaderboard"):
        board = leaderboard([out / "baselines", out / "frozen-readout", out / "boost", run], external_labels=ext,
                            alfia_external=out / f"{ext_name}.predictions.parquet", out_dir=out)
        logger.info(board.markdown)

    with clock.stage("report"):
        report = build_report(run, out / "report.html", cohort=dev_text, baselines=out / "baselines",
                              external_predictions=out / f"{ext_name}.predictions.parquet", classifier="mlp", **on)

    history = RunFolder(run).history()
    summary += ["## Results (95% bootstrap CIs, 1,000 stratified resamples)", "",
                *alfia_results(metrics, info, history, (dev_name, ext_name)), "", board.markdown, "",
                f"Report: {report}", ""]
    summary += ["## Stage times", "", clock.markdown(), ""]
    write_text_atomic(out / "summary.md", "\n".join(summary))
    write_text_atomic(out / "timings.json", json.dumps(clock.seconds, indent=2))
    manifest.write_manifest(out, started, backbone=backbone_identity(None), cohort={dev_name: dev_text.checksum(),
                                                                  ext_name: ext_text.checksum()},
                            extra={"task": dev.task.to_dict()})
    logger.info(clock.markdown())
    logger.info(f"study summary: {out / 'summary.md'}")
    logger.info(f"study report: {report}")
    return out / "summary.md"
