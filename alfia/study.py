"""The main job (`make study`): the whole study on the bundled real cohort, stage by stage, each timed.

By default the study is the pair a data set declares at its registration (``alfia.cohorts.registry.default_study``):
PhysioNet 2012's set A is the development cohort with its train/val/test split; set B is the held-out ("external")
validation cohort -- a second partition of the same challenge pool, not another hospital -- encoded with set A's
text encoder and scored on all rows. ``alfia study COHORT --external EXTERNAL`` runs the same stages on a user's
own cohorts (an external cohort of another schema is mapped onto the development cohort's, with every mapped and
imputed variable logged and written to ``external-mapping.json``). Every file is named by
:class:`alfia.run_folder.StudyFolder`, each cohort's by the cohort's own name.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path

from alfia import manifest
from alfia.analysis.report import build_report
from alfia.analysis.seeds import write_seed_spread
from alfia.analysis.tripod import write_tripod
from alfia.baselines.boost import run_boost
from alfia.baselines.leaderboard import leaderboard
from alfia.baselines.readout import run_frozen_readout
from alfia.baselines.tabular import run_baselines
from alfia.cohorts import Cohort, write_cohort
from alfia.cohorts.registry import declared_study, default_study, shown_name
from alfia.cohorts.table1 import table1, to_markdown
from alfia.errors import AlfiaError
from alfia.evaluation.metrics import CALIBRATION_FIT_METRICS, format_ci, format_metrics
from alfia.inference import predict_cohort, write_predictions
from alfia.model.backbone import backbone_identity
from alfia.run_folder import RunFolder, StudyFolder, cohort_name
from alfia.text.encoder import DEFAULT_STYLE, TextEncoder
from alfia.text.inputs import load_input
from alfia.training.config import TrainConfig, make_config
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


def default_names() -> tuple[str, str]:
    """The development and external cohorts of the default study (declared by their data set)."""
    pair = default_study()
    return pair.development, pair.external


def alfia_results(metrics: dict, external: dict, history: list[dict], names: tuple[str, str] | None = None,
                  profile: str = "quick") -> list[str]:
    """ALFIA's own lines of the summary (and of the README, through ``readme_results``); ``names``: the
    development and external cohorts' names (default: the default study's); ``profile``: the training profile."""
    dev, ext = (shown_name(n) for n in (names or default_names()))
    rows = ((f"{dev} test split", metrics["test"]), (f"{ext}, external (all rows)", external["metrics"]))
    fits = all(k in m for _, m in rows for k in CALIBRATION_FIT_METRICS)   # results written before them lack them
    lines = [f"| ALFIA ({profile} profile, calibrated) | n | deaths | AUPRC (95% CI) | AUROC (95% CI) | Brier | ECE |"
             + (" O:E (95% CI) | calibration intercept (95% CI) | calibration slope (95% CI) |" if fits else ""),
             "| --- | ---: | ---: | --- | --- | ---: | ---: |" + (" --- | --- | --- |" if fits else "")]
    for data, m in rows:
        lines.append(f"| {data} | {m['n']:,} | {m['n_pos']:,} | {format_ci(m['auprc'])} | {format_ci(m['auroc'])} | "
                     f"{m['brier']['value']:.3f} | {m['ece']['value']:.3f} |"
                     + "".join(f" {format_ci(m[k])} |" for k in CALIBRATION_FIT_METRICS if fits))
    lines += ["", "Validation per epoch: " + "; ".join(
        f"epoch {h['epoch']}: AUPRC {h['val_auprc']:.3f}, AUROC {h['val_auroc']:.3f}" for h in history) + ".",
        f"Threshold (best F1 on the validation split, applied unchanged): {external['threshold']:.3f}; "
        f"{ext} inference {external['ms_per_sample']:.1f} ms per stay, peak memory {external['peak_rss_mb']:.0f} MB."]
    return lines


def readme_results(folder: str | Path, names: tuple[str, str] | None = None) -> str:
    """The README's results block, from the files a study writes (copied to ``results/study``: the run's files
    beside the study's); ``names``: its development and external cohorts (default: the default study's)."""
    names = names or default_names()
    run, study = RunFolder(folder), StudyFolder(folder)
    metrics, history = run.metrics(), run.history()
    external = study.external_metrics(names[1])
    if external is None:
        raise AlfiaError(f"{study.metrics_path(names[1])} is missing; pass the folder the study's files were copied to")
    timings = study.timings()
    lines = alfia_results(metrics, external, history, names, profile=run.setting("profile", "quick"))
    board = study / StudyFolder.LEADERBOARD
    if board.exists():
        lines += ["", board.read_text().strip()]
    spread = study / StudyFolder.SEED_SPREAD
    if spread.exists():   # seeds.md without its title: this block sits under a page's own headings
        title, _, body = spread.read_text().partition("\n")
        lines += ["", f"**{title.lstrip('# ')}** (`alfia study --seeds`, the same run):", "", body.strip()]
    lines += ["", "Stage times of that study run (seconds): "
              + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()) + f"; total {sum(timings.values()):.0f}."]
    return "\n".join(lines)


def study_cohorts(cohort: str | Path | None = None, external: str | Path | None = None):
    """The development and external cohorts of a study and their names; by default the pair a data set declares
    (:func:`alfia.cohorts.registry.default_study`), and for a bundled development cohort its declared external
    one. An external cohort of another schema is mapped onto the development cohort's (``alfia.cohorts.mapping``).
    Both are read by :func:`alfia.text.inputs.load_input`, as every command reads its cohorts."""
    if cohort is None:
        cohort = default_study().development
    if external is None:
        declared = declared_study(str(cohort))
        if declared is None:
            raise AlfiaError("a study validates on a held-out cohort: pass --external (a parquet file or bundled "
                             "name) with your own development cohort")
        external = declared.external
    dev = load_input(cohort)
    ext = load_input(external, training=dev)   # mapped onto the development cohort's schema when it has another
    if "mapping" in ext.info:
        from alfia.cohorts.mapping import describe

        logger.info(describe(ext.info["mapping"]))
    names = cohort_name(cohort), cohort_name(external)
    if names[0] == names[1]:
        raise AlfiaError(f"the development and external cohorts are both named {names[0]!r}; pass two cohorts")
    return dev, ext, names


def train_and_compare(folder: StudyFolder, dev: Cohort, dev_text: Cohort, ext: Cohort, ext_name: str,
                      config: TrainConfig, clock: StageClock, *, repeat: int = 0, mlflow: str | None = None,
                      device: str | None = "auto", precision: str | None = None):
    """Every model the study trains, into ``folder`` (the study's, or a seed repeat's): ALFIA (``config``, whose
    seed is the repeat's), its scoring on the external cohort, the tabular zoo and severity scores, the frozen
    encoder's readout, ALFIA-boost/nn (AutoGluon's models seeded with ``repeat``: 0 is AutoGluon's default) and the
    leaderboard. The bootstrap's seed stays 42, so every repeat is scored on the same resamples. Returns ALFIA's
    metrics, its external scoring's info, the leaderboard and the path of ALFIA's external predictions."""
    on = {"device": device, "precision": precision}
    run = folder.run.path
    with clock.stage(f"train ALFIA ({config.profile} profile)"):
        logger.info(f"settings: {config.describe()}")
        metrics = train(dev_text, run, config, resume=RunFolder(run).checkpoint.exists(), finish=True, device=device,
                        mlflow=mlflow)
        logger.info("test split (scored once, after training):")
        logger.info(format_metrics(metrics["test"]))

    external_predictions = folder.predictions(ext_name)
    with clock.stage(f"external validation on {shown_name(ext_name)} (all rows)"):
        table, info = predict_cohort(run, ext, progress=True, **on)
        write_predictions(table, info, external_predictions)   # and its metrics beside: folder.metrics_path
        logger.info(format_metrics(info["metrics"]))

    with clock.stage("baselines: AutoGluon zoo and severity scores"):
        run_baselines(dev, folder.baselines, external=ext, profile=config.profile, seed=repeat)

    with clock.stage("frozen encoder + logistic regression"):
        run_frozen_readout(run, dev, folder.frozen_readout, external=ext, **on)

    with clock.stage("ALFIA-boost / ALFIA-nn"):
        run_boost(run, dev, folder.boost, external=ext, profile=config.profile, seed=repeat, **on)

    with clock.stage("leaderboard"):
        board = leaderboard([folder.baselines, folder.frozen_readout, folder.boost, run], external_labels=ext,
                            alfia_external=external_predictions, out_dir=folder.path)
        logger.info(board.markdown)
    return metrics, info, board, external_predictions


def run_study(out: str | Path, style: str | None = None, profile: str = "quick", cohort: str | Path | None = None,
              external: str | Path | None = None, device: str | None = "auto", precision: str | None = None,
              mlflow: str | None = None, seeds: int = 1) -> Path:
    """The whole study into ``out``; ``cohort``/``external``: the development and external cohorts (files or
    bundled names; by default the declared study, PhysioNet 2012 sets A and B); ``seeds``: with N > 1, every
    trained model is trained N - 1 more times (:func:`train_and_compare` with repeat r = 1..N-1) and the spread
    over the N seeds is written (:mod:`alfia.analysis.seeds`); ``device`` / ``precision``: where
    and how every stage that runs the model computes (:mod:`alfia.model.runtime`; precision None: training in auto,
    every later stage in the run's own); ``mlflow``: a tracking URI that
    the study folder and its run are logged to (else ``ALFIA_MLFLOW_URI``, when set: :mod:`alfia.tracking`)."""
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise AlfiaError(f"seeds must be a whole number >= 1 (1: the single-seed study), got {seeds!r}")
    on = {"device": device, "precision": precision}
    style = style or DEFAULT_STYLE
    started = manifest.now()
    dev, ext, (dev_name, ext_name) = study_cohorts(cohort, external)
    folder = StudyFolder(out)
    out = folder.path
    out.mkdir(parents=True, exist_ok=True)
    clock = StageClock()
    summary: list[str] = [f"# ALFIA study (development: {dev_name}; external: {ext_name})", "",
                          f"Task: {dev.task.name}: {dev.task.title}.", ""]

    with clock.stage("cohorts"):
        write_cohort(dev, folder.cohort(dev_name))
        write_cohort(ext, folder.cohort(ext_name))
        if "mapping" in ext.info:
            folder.write_json(StudyFolder.MAPPING, ext.info["mapping"])

    with clock.stage("encode"):
        encoder = TextEncoder(dev.schema, style=style).fit(dev.df)
        dev_text, ext_text = encoder.encode(dev), encoder.encode(ext)
        encoder.save(folder / StudyFolder.ENCODER)
        write_cohort(dev_text, folder.encoded(dev_name))
        write_cohort(ext_text, folder.encoded(ext_name))

    with clock.stage("table1"):
        table = to_markdown(table1(dev), title=f"Table 1: {shown_name(dev_name)}, baseline characteristics by "
                                               f"{dev.task.outcome}")
        logger.info(table)
        folder.save_text(StudyFolder.TABLE1, table + "\n")
        summary += [table, ""]

    config = make_config(profile, precision=precision or "auto")
    metrics, info, board, external_predictions = train_and_compare(
        folder, dev, dev_text, ext, ext_name, config, clock, mlflow=mlflow, **on)
    run = folder.run.path

    with clock.stage("report"):
        report = build_report(run, folder / StudyFolder.REPORT, cohort=dev_text, baselines=folder.baselines,
                              external_predictions=external_predictions, classifier="mlp", **on)

    for r in range(1, seeds):   # the single-seed study above is complete before the first repeat starts
        with clock.stage(f"seed repeat {r} of {seeds - 1} (ALFIA seed {config.seed + r}, every other trained "
                         f"model's {r})"):
            train_and_compare(folder.repeat(r), dev, dev_text, ext, ext_name,
                              make_config(profile, precision=precision or "auto", seed=config.seed + r),
                              StageClock(), repeat=r, **on)
    spread = write_seed_spread(out, ext, ext_name) if seeds > 1 else None
    tripod = write_tripod(folder, (dev_name, ext_name))   # TRIPOD+AI, each item from the files above
    history = RunFolder(run).history()
    summary += ["## Results (95% bootstrap CIs, 1,000 stratified resamples)", "",
                *alfia_results(metrics, info, history, (dev_name, ext_name), profile=profile), "", board.markdown,
                "", f"Report: {report}", "", f"TRIPOD+AI checklist: {tripod}", ""]
    if spread is not None:
        summary += [f"## Spread over {seeds} seeds", "", spread.markdown, ""]
    else:
        summary += ["One training seed: ALFIA, ALFIA-boost/nn and the tabular zoo's stochastic members move with it, "
                    "within their CIs but enough to swap close ranks; `alfia study --seeds 5` measures by how much "
                    "(the bundled study's spread: docs/results.md).", ""]
    summary += ["## Stage times", "", clock.markdown(), ""]
    folder.save_text(StudyFolder.SUMMARY, "\n".join(summary))
    folder.write_json(StudyFolder.TIMINGS, clock.seconds)
    manifest.write_manifest(out, started, backbone=backbone_identity(None), cohort={dev_name: dev_text.checksum(),
                                                                  ext_name: ext_text.checksum()},
                            extra={"task": dev.task.to_dict(), "seeds": seeds}, mlflow=mlflow)
    logger.info(clock.markdown())
    logger.info(f"study summary: {folder / StudyFolder.SUMMARY}")
    logger.info(f"study report: {report}")
    return folder / StudyFolder.SUMMARY
