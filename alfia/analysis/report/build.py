"""Assemble the page: each section's module computes its numbers and figures, its template renders them, and
``page.html.j2`` puts the sections in order (the summary first)."""

from __future__ import annotations

import time
from pathlib import Path

from alfia.analysis.figures import FigureWriter
from alfia.analysis.report import (
    clinical,
    cohort,
    cost,
    latent_space,
    learned,
    patients,
    performance,
    summary,
    training,
)
from alfia.analysis.report.inputs import Inputs, Options
from alfia.analysis.report.render import render
from alfia.cohorts import Cohort
from alfia.errors import AlfiaError
from alfia.io import write_text_atomic
from alfia.run_folder import StudyFolder

SECTIONS = ("summary", "cohort", "training", "performance", "clinical", "patients", "learned", "latent", "cost")
TITLES = {"summary": "Summary", "cohort": "1. Cohort", "training": "2. Training dynamics",
          "performance": "3. Performance", "clinical": "4. Clinical usefulness", "patients": "5. Example patients",
          "learned": "6. What the model learned", "latent": "7. Latent space", "cost": "8. Cost"}
MODULES = {"summary": summary, "cohort": cohort, "training": training, "performance": performance,
           "clinical": clinical, "patients": patients, "learned": learned, "latent": latent_space, "cost": cost}


def study_external(run: Path) -> Path | None:
    """ALFIA's predictions on the external cohort of the study folder the run sits in (``<external>.predictions
    .parquet`` beside the run, its metrics beside it), when that folder holds one external cohort's; else None."""
    study = StudyFolder(run.parent)
    found = [study.predictions(name) for name in study.externals() if study.predictions(name).is_file()]
    return found[0] if len(found) == 1 else None


def build_report(run: str | Path, out: str | Path | None = None, *, baselines: str | Path | None = None,
                 ablation: str | Path | None = None, cohort: Cohort | None = None,
                 external_predictions: str | Path | None = None, bench: str | Path | None = None,
                 max_stays: int | None = 1000, projection: str = "umap", n_boot: int = 200,
                 classifier: str = "auto", figures_dir: str | Path | None = None, include_texts: bool = True,
                 progress=print, device: str | None = "auto", precision: str | None = None) -> Path:
    """Write the study report of ``run`` to ``out`` (default ``RUN/report.html``); returns its path. ``device`` /
    ``precision``: where the run's model computes what the report needs (:mod:`alfia.model.runtime`).

    ``include_texts=False`` (``alfia report --no-texts``) leaves every patient text and stay id out of the page
    (and out of the numbers files it writes)."""
    from alfia.analysis.latent import resolve_classifier
    from alfia.inference import Run

    run = Path(run)
    out = Path(out) if out else run / "report.html"
    if out.suffix.lower() not in (".html", ".htm"):
        raise AlfiaError(f"the report is an HTML page: give --out a .html name, not {out.name}")
    resolve_classifier(classifier)
    if projection not in ("umap", "pca"):
        raise AlfiaError(f"unknown projection {projection!r}; use umap or pca")
    if external_predictions is None:
        external_predictions = study_external(run)
    started = time.perf_counter()
    data_dir = Path(figures_dir) if figures_dir else run / "figures"
    png_dirs = [] if out.parent.resolve() == run.resolve() else [out.parent / f"{out.stem}-figures"]
    options = Options(max_stays=max_stays, projection=projection, n_boot=n_boot, classifier=classifier,
                      include_texts=include_texts, progress=progress)
    inp = Inputs(run, FigureWriter(data_dir, png_dirs), options, cohort=cohort,
                 baselines_dir=Path(baselines) if baselines else None, ablation=Path(ablation) if ablation else None,
                 external_path=Path(external_predictions) if external_predictions else None,
                 bench_path=Path(bench) if bench else None)
    inp.loaded = Run.load(run, device, precision)
    inp.texts = inp.loaded.texts(cohort) if cohort is not None else None
    sections, seconds = [], {}
    for name in SECTIONS:
        t0 = time.perf_counter()
        progress(f"report: {TITLES[name]}")
        body = render(f"{name}.html.j2", **MODULES[name].build(inp))
        sections.append({"name": name, "title": TITLES[name], "body": body})
        seconds[name] = round(time.perf_counter() - t0, 1)
    source = inp.config.get("cohort", {})
    page = render("page.html.j2", sections=sections, include_texts=include_texts,
                  synthetic=bool(source.get("synthetic")) or (cohort is not None and cohort.synthetic),
                  run=run.resolve(), schema=source.get("schema", "?"), source=source.get("source", "?"),
                  rows=source.get("rows", "?"), backbone=inp.loaded.model.config.backbone, task=inp.task,
                  built=time.strftime("%Y-%m-%d %H:%M"), seconds=f"{time.perf_counter() - started:.0f}")
    inp.figs.data("report-timing", {"seconds": seconds})
    write_text_atomic(out, page)
    return out
