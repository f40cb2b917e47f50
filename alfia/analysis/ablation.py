"""``alfia ablate``: what each part of ALFIA contributes, and what another backbone changes, on one cohort and its
fixed split.

By default (``profile="ablation"``, a profile of :data:`alfia.training.config.PROFILES`) the variants share the
paper's mechanics at the quick profile's CPU budget (``alfia.training.config.ABLATION`` over the quick profile: LoRA
on the top layer, labels with the class-weighted loss, no pooled readout, no teacher, no recalibration): the default
quick profile's readout would carry every variant alike and hide what the parts of the paper's model contribute.
``profile="quick"`` or ``"paper"`` trains with that profile as it is (the backbone comparison of Fig. 3 asks how
each backbone does in the model users get).

Variants (first backbone; every further ``--backbone`` gets only the default variant, for Fig. 3):

==============  ==========================================================================================
default         pre-trained backbone, the profile's training (above), N_f = 4, fusion + head
random-init     the same architecture randomly initialised (written to ``OUT/_backbones``), otherwise default
no-lora         the backbone frozen: only the fusion module and the head are trained (skipped, with the reason,
                where the profile has no LoRA)
nf1 nf2 nf6     N_f = 1, 2, 6 fused layers (a value above the backbone's depth is skipped, with the reason)
mean-pool       no fusion (``model.fusion.kind="mean"``, N_f = 1): the plain attention-mask mean of the last
                layer's tokens goes straight to the head (same LoRA, head, optimiser, early stopping and
                initial weights as N_f = 1; the run keeps no model/ folder, its best
                epoch's predictions and metrics are written exactly as ``finish_run`` writes them)
==============  ==========================================================================================

Each variant is a run folder ``OUT/<name>`` (config.json, history.jsonl, predictions.parquet, metrics.json, and
``ablation-timing.json``: wall seconds and the 1-minute load average at the start and end of each timed step).
With ``external`` each run with a model also scores that cohort (``external.predictions.parquet`` and
``external.metrics.json``, as ``alfia predict`` writes them); with ``boost`` it gets its ALFIA-boost
(``OUT/<name>/boost``, as ``alfia boost`` writes it); ``baselines`` (a folder of ``alfia baselines`` on the same
cohort) adds the tabular ``REFERENCE`` model's row. ``speed_stays`` test stays are then scored by every run's model
back to back, in rounds, for a fair inference-time ratio on a shared machine.
``OUT/ablation.json`` and ``OUT/ablation.md`` hold the tables (:func:`ablation_tables`): validation, test and
external AUPRC/AUROC with 95% bootstrap CIs, ECE and Brier score; parameters, training time and inference time;
``OUT/figures/training-curves.png`` (and its numbers, ``.json``) the validation curves of every run (Fig. 3b/d).
A variant whose folder already has metrics.json is not trained again (nor a step whose output exists).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import statistics
import time
from pathlib import Path

import pandas as pd
import torch

from alfia.cohorts import ID, Cohort
from alfia.errors import AlfiaError
from alfia.evaluation.metrics import format_ci
from alfia.io import metrics_path, write_text_atomic
from alfia.model.serialization import CONFIG_NAME
from alfia.run_folder import RunFolder

logger = logging.getLogger(__name__)  # under "alfia": the CLI shows it, -q hides it

VARIANTS = ("default", "random-init", "no-lora", "nf1", "nf2", "nf6", "mean-pool")
REFERENCE = "WeightedEnsemble"   # the tabular model of a baselines folder that the runs are compared with
SPEED_ROUNDS = 3   # rounds of the back-to-back inference timing (the median is reported)
SPEED_BATCH = 16
TIMING_FILE = "ablation-timing.json"
DATA = {"val": "validation", "test": "test", "external": "external"}
SHOWN_METRICS = ("n", "n_pos", "auprc", "auroc", "ece", "brier")


def variant_settings(variant: str) -> dict:
    """The settings that make a variant (on top of the profile's): every variant is configuration."""
    if variant == "no-lora":
        return {"model.lora": None}
    if variant.startswith("nf"):
        return {"model.fusion.num_fusion_layers": int(variant[2:])}
    if variant == "mean-pool":   # no fusion module: the mean of the top layer's tokens (alfia.model.fusion)
        return {"model.fusion.num_fusion_layers": 1, "model.fusion.kind": "mean"}
    return {}   # default; random-init is the default on another backbone (random_init_copy)


def random_init_copy(backbone: str | None, folder: Path, seed: int = 0) -> Path:
    """The backbone's architecture with fresh random weights, and its tokenizer, saved to ``folder``."""
    from transformers import AutoConfig, AutoModel

    from alfia.model.backbone import load_tokenizer, resolve_backbone

    if (folder / CONFIG_NAME).exists():
        return folder
    where = resolve_backbone(backbone)
    config = AutoConfig.from_pretrained(where, local_files_only=True)
    torch.manual_seed(seed)
    model = AutoModel.from_config(config)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    load_tokenizer(backbone).save_pretrained(tmp)
    tmp.rename(folder)
    return folder


def _depth(backbone: str | None) -> int:
    from transformers import AutoConfig

    from alfia.model.backbone import resolve_backbone

    return int(AutoConfig.from_pretrained(resolve_backbone(backbone), local_files_only=True).num_hidden_layers)


def _short(backbone: str | None) -> str:
    return Path(str(backbone or "default")).name.replace("/", "_") or "backbone"


def _config(profile: str, overrides: dict, settings: dict):
    from alfia.training.config import make_config

    return make_config(profile, **{**overrides, **settings})


def describe(variant: str, config) -> str:
    """What a run is, from its variant and its training settings (``pre-trained, frozen, N_f=4, fusion, readout,
    teacher, platt``)."""
    lora = config.model.lora
    parts = ["random-init backbone" if variant == "random-init" else "pre-trained",
             "frozen (no LoRA)" if lora is None else "LoRA on every layer" if lora.layers is None
             else f"LoRA on the top {lora.layers} layer{'s' if lora.layers > 1 else ''}",
             "plain mean pooling of the last layer (no fusion)" if config.model.fusion.kind == "mean"
             else f"N_f={config.model.fusion.num_fusion_layers}, fusion"]
    parts += [name for name, on in (("readout", config.model.readout is not None), ("teacher", config.distill > 0),
                                    (config.calibration, config.calibration != "none")) if on]
    return ", ".join(parts)


@contextlib.contextmanager
def _timed(timing: dict, step: str, folder: Path):
    """Records the step's wall seconds and the 1-minute load average at its start and end (the machine may be
    shared: the load says how far to trust the seconds) in ``timing`` and the run's timing file."""
    load, start = os.getloadavg()[0], time.perf_counter()
    yield
    timing[step] = {"seconds": round(time.perf_counter() - start, 1), "load_start": round(load, 2),
                    "load_end": round(os.getloadavg()[0], 2)}
    write_text_atomic(folder / TIMING_FILE, json.dumps(timing, indent=2))


def _shown(metrics: dict) -> dict:
    return {k: metrics[k] for k in SHOWN_METRICS if k in metrics}


def model_results(folder: Path, model: str, cohort: Cohort, n_boot: int) -> dict:
    """Validation, test and external metrics of ``model`` in a baselines or boost folder (read as the leaderboard
    reads it): test and external as written there, validation computed from its predictions of this cohort's
    validation rows (refused when they are not exactly those rows)."""
    from alfia.baselines.leaderboard import read_results_dir
    from alfia.evaluation.metrics import evaluate

    folder = Path(folder)
    entries, _ = read_results_dir(folder)
    entry = next((e for e in entries if e.name == model), None)
    if entry is None:
        raise AlfiaError(f"{folder / 'results.json'} has no model {model!r}; train it there first")
    val = entry.predictions.get("val", pd.DataFrame(columns=[ID, "probability"]))
    labels = cohort.df[cohort.df["split"] == "val"].set_index(ID)[cohort.label]
    if len(val) != len(labels) or not val[ID].isin(labels.index).all():
        raise AlfiaError(f"{folder}'s validation predictions are not of this cohort's validation rows; "
                         "train the baselines on the same cohort")
    out = {"val": _shown(evaluate(labels.loc[val[ID]].to_numpy(), val["probability"].to_numpy(), n_boot=n_boot))}
    out.update({where: _shown(metrics) for where, metrics in entry.metrics.items()})
    return out


def _parameters(model) -> dict:
    """The backbone's pre-trained parameters (frozen in both profiles) and the parameters training changes
    (fusion, head, readout, and the LoRA adapters where there are any)."""
    backbone = trained = 0
    for name, p in model.named_parameters():
        if name.startswith("backbone.") and "lora_" not in name:
            backbone += p.numel()
        else:
            trained += p.numel()
    return {"backbone": backbone, "trained": trained}


def measure_inference(folders: dict[str, Path], texts: list[str], rounds: int = SPEED_ROUNDS,
                      batch_size: int = SPEED_BATCH) -> tuple[dict, dict]:
    """``(per run: parameters and ms per stay, how it was measured)``: every run's model scores the same texts,
    the runs one after the other in each of ``rounds`` rounds (after one warm-up batch each), so that a load
    that comes and goes on a shared machine falls on every run alike; the median round is reported."""
    from alfia.inference import Run

    runs = {name: Run.load(folder) for name, folder in folders.items()}
    out = {name: {"parameters": _parameters(run.model)} for name, run in runs.items()}
    if not texts or not runs:
        return out, {}
    for run in runs.values():
        run.model.predict_proba(texts[:batch_size], batch_size=batch_size)
    load = os.getloadavg()[0]
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run.model.predict_proba(texts, batch_size=batch_size)
            times[name].append(round(1000 * (time.perf_counter() - start) / len(texts), 1))
    for name in runs:
        out[name]["ms_per_stay"] = statistics.median(times[name])
        out[name]["ms_per_stay_rounds"] = times[name]
    how = {"stays": len(texts), "batch_size": batch_size, "rounds": rounds, "device": str(next(
        iter(runs.values())).model.device), "threads": torch.get_num_threads(), "load_start": round(load, 2),
        "load_end": round(os.getloadavg()[0], 2)}
    return out, how


def run_ablation(cohort: Cohort, out: str | Path, backbones: list[str | None] | None = None,
                 variants: list[str] | None = None, n_boot: int = 1000, progress: bool = True,
                 profile: str = "ablation", external: Cohort | None = None, external_name: str = "external",
                 boost: bool = False, baselines: str | Path | None = None, speed_stays: int = 0,
                 **overrides) -> Path:
    """Train every variant into ``out``; returns the path of ``ablation.json``. ``profile``: ``"ablation"``
    (the ablation's budget over the quick profile), ``"quick"``, ``"paper"`` or any registered profile
    (:data:`alfia.training.config.PROFILES`); ``overrides`` go to
    :func:`alfia.training.config.make_config` on top, e.g. ``epochs=2``. ``external`` (shown as
    ``external_name``), ``boost``, ``baselines`` and ``speed_stays``: see the module's docstring."""
    from alfia.analysis.figures import FigureWriter
    from alfia.analysis.report.training import curves
    from alfia.baselines import boost as alfia_boost
    from alfia.baselines.boost import BOOST_ENSEMBLE
    from alfia.inference import finish_run, predict_cohort, write_predictions
    from alfia.training.config import PROFILES
    from alfia.training.trainer import Trainer, check_cohort, train

    check_cohort(cohort)
    if profile not in PROFILES:
        raise AlfiaError(f"unknown ablation profile {profile!r}; choose from {', '.join(PROFILES)}")
    if external is not None and external.schema.name != cohort.schema.name:
        raise AlfiaError(f"the external cohort's schema {external.schema.name!r} is not the development cohort's "
                         f"{cohort.schema.name!r}; map it first (alfia.cohorts.mapping.map_cohort)")
    if baselines is not None and not (Path(baselines) / "results.json").is_file():
        raise AlfiaError(f"baselines folder {baselines} has no results.json; run `alfia baselines` first")
    out = Path(out)
    backbones = backbones or [None]
    variants = list(variants or VARIANTS)
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise AlfiaError(f"unknown ablation variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    out.mkdir(parents=True, exist_ok=True)
    plan: list[tuple[str, str | None, str]] = []
    for i, backbone in enumerate(backbones):
        tag = "" if len(backbones) == 1 else f"{_short(backbone)}-"
        for v in (variants if i == 0 else ["default"]):
            plan.append((f"{tag}{v}", backbone, v))
    runs, skipped = [], {}
    for name, backbone, variant in plan:
        settings = variant_settings(variant)
        used_backbone = backbone
        if variant == "random-init":
            used_backbone = str(random_init_copy(backbone, out / "_backbones" / f"random-init-{_short(backbone)}"))
        elif variant == "no-lora" and _config(profile, overrides, {}).model.lora is None:
            skipped[name] = f"the {profile} profile's backbone is frozen already (no LoRA)"
            continue
        elif variant.startswith("nf") and int(variant[2:]) > _depth(backbone):
            skipped[name] = f"the backbone has only {_depth(backbone)} layers"
            continue
        config = _config(profile, overrides, settings)
        folder = out / name
        timing = json.loads((folder / TIMING_FILE).read_text()) if (folder / TIMING_FILE).exists() else {}
        start = time.perf_counter()
        if not (folder / RunFolder.METRICS).exists():
            if progress:
                logger.info(f"== ablation {name}: {describe(variant, config)}")
            if variant == "mean-pool":   # the run keeps no model/: its best epoch scores every split from memory
                shutil.rmtree(folder, ignore_errors=True)
                trainer = Trainer(cohort, folder, config, backbone=used_backbone, progress=progress, save_model=False)
                try:
                    with _timed(timing, "train", folder):
                        trainer.fit()
                        finish_run(trainer.out, cohort, n_boot=n_boot, model=trainer.model)
                finally:
                    trainer.close()
            else:
                with _timed(timing, "train", folder):  # the best model then scores every split, from its caches
                    train(cohort, folder, config, backbone=used_backbone, resume=folder.exists(), progress=progress,
                          finish=True, n_boot=n_boot)
        has_model = RunFolder(folder).model.is_dir()
        ext_predictions = folder / "external.predictions.parquet"
        if external is not None and has_model and not metrics_path(ext_predictions).exists():
            with _timed(timing, "external", folder):
                table, info = predict_cohort(folder, external, progress=progress)
                write_predictions(table, info, ext_predictions)
        if boost and has_model and not (folder / "boost" / "results.json").exists():
            with _timed(timing, "boost", folder):
                alfia_boost.run_boost(folder, cohort, folder / "boost", external=external,
                                      profile=profile, n_boot=n_boot, verbosity=0)
        metrics, history = RunFolder(folder).metrics(), RunFolder(folder).history()
        best = [h["epoch"] for h in history if h.get("best")]
        entry = {"name": name, "folder": name, "variant": variant, "backbone": backbone or "default",
                 "description": describe(variant, config), "settings": {**settings, "profile": profile, **overrides},
                 "best_epoch": best[-1] if best else None, "epochs": len(history),
                 "last_epoch": history[-1]["epoch"] if history else None,
                 "auprc": metrics["test"]["auprc"], "auroc": metrics["test"]["auroc"],
                 "metrics": {w: _shown(metrics[w]) for w in ("val", "test") if w in metrics},
                 "truncated_texts": metrics.get("truncation", {}).get("truncated_texts"),
                 "timing": timing, "seconds": round(time.perf_counter() - start, 1)}
        if metrics_path(ext_predictions).exists():
            info = json.loads(metrics_path(ext_predictions).read_text())
            entry["metrics"]["external"] = _shown(info["metrics"])
            entry["external_ms_per_stay"] = round(info["ms_per_sample"], 1)
        if (folder / "boost" / "results.json").exists():
            entry["boost"] = model_results(folder / "boost", BOOST_ENSEMBLE, cohort, n_boot)
        runs.append(entry)
    index = {"cohort": cohort.info.get("source"), "profile": profile, "runs": runs, "skipped": skipped}
    if external is not None:
        index["external"] = {"name": external_name, "source": external.info.get("source")}
    if baselines is not None:
        index["reference"] = {"name": REFERENCE, "folder": str(baselines),
                              "metrics": model_results(Path(baselines), REFERENCE, cohort, n_boot)}
    with_model = {r["name"]: out / r["folder"] for r in runs if RunFolder(out / r["folder"]).model.is_dir()}
    texts = cohort.split("test")["text"].tolist()[:speed_stays]
    measured, index["inference"] = measure_inference(with_model, texts)
    for r in runs:
        r.update(measured.get(r["name"], {}))
    write_text_atomic(out / "ablation.json", json.dumps(index, indent=2))
    write_text_atomic(out / "ablation.md", ablation_markdown(index))
    curves(FigureWriter(out / "figures"), [(r["name"], out / r["folder"]) for r in runs])
    return out / "ablation.json"


def _count(n: int) -> str:
    return f"{n / 1e6:.1f} M" if n >= 1e6 else f"{n / 1e3:.0f} k" if n >= 1e3 else str(n)


def _step(timing: dict, step: str) -> str:
    t = timing.get(step)
    return "" if t is None else f"{t['seconds']:,.0f} (load {t['load_start']:.1f} → {t['load_end']:.1f})"


def ablation_tables(index: dict) -> list[tuple[str, list[str], list[list]]]:
    """``(title, header, rows)`` of each table of an ``ablation.json``: the runs (test AUPRC/AUROC); where the
    runs have them, the metrics of every data set (validation first: it is where choices are made) with ALFIA,
    ALFIA-boost and the tabular reference; and the cost (parameters, training, scoring and inference time)."""
    runs = index["runs"]
    tables = [("Runs", ["variant", "what", "best epoch", "test AUPRC (95% CI)", "test AUROC (95% CI)"],
               [[r["name"], r["description"], r["best_epoch"], format_ci(r["auprc"]), format_ci(r["auroc"])]
                for r in runs] + [[k, f"skipped: {v}", "", "", ""] for k, v in index.get("skipped", {}).items()])]
    if any("metrics" in r for r in runs):
        shown = {**DATA, "external": f"{index.get('external', {}).get('name', 'external')} (all rows)"}
        reference = index.get("reference")
        rows = []
        for where, label in shown.items():
            models = [(f"ALFIA ({r['name']})", r.get("metrics", {}).get(where)) for r in runs]
            models += [(f"ALFIA-boost ({r['name']})", r["boost"].get(where)) for r in runs if "boost" in r]
            if reference:
                models.append((f"{reference['name']} (tabular)", reference["metrics"].get(where)))
            rows += [[label, model, format_ci(m["auprc"]), format_ci(m["auroc"]), f"{m['ece']['value']:.3f}",
                      f"{m['brier']['value']:.3f}", f"{m['n']:,} ({m['n_pos']:,})"] for model, m in models if m]
        tables.append(("Validation, test and external metrics (95% bootstrap CIs)",
                       ["data", "model", "AUPRC (95% CI)", "AUROC (95% CI)", "ECE", "Brier", "stays (deaths)"],
                       rows))
    if any("parameters" in r for r in runs):
        speed = index.get("inference") or {}
        timed = (f"inference ms/stay ({speed['stays']} test stays, batch {speed['batch_size']}, {speed['device']},"
                 f" median of {speed['rounds']} rounds back to back)") if speed else "inference ms/stay"
        rows = [[r["name"], _short(r["backbone"]), _count(r["parameters"]["backbone"]),
                 _count(r["parameters"]["trained"]), f"{r['best_epoch']} / {r['last_epoch']}",
                 _step(r.get("timing", {}), "train"), _step(r.get("timing", {}), "external"),
                 r.get("external_ms_per_stay", ""), _step(r.get("timing", {}), "boost"), r.get("ms_per_stay", "")]
                for r in runs if "parameters" in r]
        tables.append(("Cost (wall seconds with the 1-minute load average at start and end)",
                       ["run", "backbone", "backbone parameters", "trained parameters", "best epoch / epochs",
                        "training s", "external scoring s", "external ms/stay", "ALFIA-boost s", timed], rows))
    return tables


def ablation_markdown(index: dict) -> str:
    parts = []
    for title, header, rows in ablation_tables(index):
        lines = [f"**{title}**", "", "| " + " | ".join(header) + " |",
                 "| " + " | ".join("---" for _ in header) + " |"]
        lines += ["| " + " | ".join("" if c is None else str(c) for c in row) + " |" for row in rows]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


__all__ = ["VARIANTS", "ablation_markdown", "ablation_tables", "describe",
           "measure_inference", "model_results", "random_init_copy", "run_ablation", "variant_settings"]
