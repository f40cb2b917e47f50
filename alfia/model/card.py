"""The model card of a trained run: what it predicts and for whom, how well on every cohort it scored (95% CIs),
how it is calibrated, what it must not be used for, how to load it, what to cite.

One source, two forms: :func:`card_facts` builds the facts from the run folder's own files, and both the risk
service's ``GET /v1/model`` (the facts as JSON, with the service's own bands, limits and refusals added) and the
run's ``MODEL_CARD.md`` (:func:`render_card`: Hugging Face's layout, YAML front matter with ``model-index``, then
the sections) show them. ``finish_run`` writes the card at the end of every training, ``ALFIAPredictor.save``
with every saved copy, ``alfia card RUN`` again after more cohorts were scored (:func:`write_model_card`).

The cohorts it reports: the development cohort's validation and test splits (``metrics.json``), then every cohort
scored with the run whose metrics file (``NAME.metrics.json``, what ``alfia predict --out NAME.parquet`` writes
beside its predictions) lies in the run folder, in the study folder around it (``alfia study``'s external
cohorts) or is named by the caller (``alfia card RUN --scored FILE``). Subgroups come from the study report's
numbers (``RUN/figures/subgroups.json``) when it was built. The card reads summaries only -- config, metrics,
threshold, calibration, the encoder's schema -- never a cohort table or the predictions: it holds no patient
text and no stay id.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from alfia import __version__
from alfia.cohorts.task import task_of_run
from alfia.errors import AlfiaError
from alfia.io import metrics_path, write_text_atomic
from alfia.model.backbone import DEFAULT_BACKBONE
from alfia.model.catalogue import named_backbone
from alfia.model.serialization import CONFIG_NAME
from alfia.run_folder import RunFolder, StudyFolder
from alfia.text.encoder import saved_encoder

logger = logging.getLogger(__name__)

CARD = "MODEL_CARD.md"
CODE_LICENSE = "MIT"         # pyproject.toml's licence of the code (LICENSE); the data's is the cohort's own
CODE_LICENSE_ID = "mit"      # its Hugging Face licence id
DATA_LICENSE_UNKNOWN = "not recorded: see the data set's documentation"
DATA_LICENSE_SYNTHETIC = "none: a synthetic cohort made by alfia's generator (no patient data)"
SCORED_SUFFIX = StudyFolder.METRICS_SUFFIX   # NAME.metrics.json beside NAME's predictions (alfia.io.metrics_path)
# the study report's subgroup numbers (alfia.analysis.report: figures/subgroups.json in the run folder)
SUBGROUPS = Path("figures") / "subgroups.json"
# the metrics the card reports, in its order, with their names for people
RANKING = {"auprc": "AUPRC", "auroc": "AUROC"}
AT_THRESHOLD = {"sensitivity": "Sensitivity", "specificity": "Specificity", "ppv": "PPV", "npv": "NPV"}
CALIBRATION = {"brier": "Brier", "ece": "ECE", "oe_ratio": "O:E", "calibration_intercept": "Calibration intercept",
               "calibration_slope": "Calibration slope"}
METRIC_NAMES = {**RANKING, **AT_THRESHOLD, **CALIBRATION}
YAML_DIGITS = 4   # the front matter's values; the tables print 3 decimals
PAPER = ("Wang H, He R, Lao G, Liu T, et al. Predicting ICU In-Hospital Mortality Using Adaptive Transformer Layer "
         "Fusion. 2025.")
MODEL_CARDS = ("Mitchell M, Wu S, Zaldivar A, et al. Model Cards for Model Reporting. Proceedings of FAT* 2019, "
               "220-229.")
LORA = "Hu EJ, Shen Y, Wallis P, et al. LoRA: Low-Rank Adaptation of Large Language Models. ICLR 2022."
INTENDED_USE = "decision support for clinical staff; not a diagnosis; research software"


# -- the facts --------------------------------------------------------------------------------------------------
def card_facts(folder: str | os.PathLike, scored: Iterable[str | os.PathLike] = (), *,
               schema=None) -> dict[str, Any]:
    """The card of the run in ``folder`` as a JSON-safe dict (``/v1/model``'s keys, the service adding its own).
    ``scored``: metrics files of more cohorts the run scored (``NAME.metrics.json`` or the predictions beside
    it), each checked to be this run's; ``schema``: the run's schema when already loaded (else read from its
    encoder.json). One clear error for a run folder whose training did not finish (no threshold)."""
    files = _finished(folder)
    scored = _paths(scored)
    metrics = files.metrics() or {}
    threshold = files.threshold()
    config = files.config()
    task = task_of_run(files)
    cohort = config.get("cohort") or {}
    if schema is None:
        encoder = saved_encoder(files)
        schema = encoder.schema if encoder is not None else None
    model = _model_config(files)
    fusion = model.get("fusion") or {}
    depth = (model.get("backbone_info") or {}).get("num_hidden_layers")
    n_f = fusion.get("num_fusion_layers")
    backbone = config.get("backbone") or model.get("backbone") or DEFAULT_BACKBONE
    lora = _lora(model)
    scored_cohorts = evaluation(files, metrics, task, threshold, scored)
    return {
        "name": f"ALFIA: {task.outcome}, from the first {task.window[1]:g} hours of an ICU stay",
        "task": task.to_dict(),
        "task_title": task.title,
        "intended_use": INTENDED_USE,
        "out_of_scope_use": out_of_scope(task),
        "license": {"code": CODE_LICENSE, "training_data": data_license(cohort)},
        "backbone": backbone,
        "base_model": base_model(backbone),
        "fused_layers": list(range(depth - n_f + 1, depth + 1)) if depth and n_f else None,
        "fusion": fusion.get("kind", "alf") if fusion else None,
        "lora": lora,
        "readout": _readout(model),
        "max_tokens": model.get("max_length"),
        "schema": schema_facts(schema),
        "training_cohort": config.get("cohort"),
        "metrics": {split: ci_metrics(m) for split, m in metrics.items() if isinstance(m, dict)},
        "evaluation": scored_cohorts,
        "subgroups": subgroups(files, threshold),
        "calibration": _calibration(files),
        "threshold": {"value": threshold, "chosen_on": "validation split, best F1"},
        "truncation": metrics.get("truncation"),
        "limitations": limitations(config, task, metrics, scored_cohorts),
        "citations": citations(cohort, task, backbone, lora=lora is not None),
        "versions": {"alfia": __version__, **config.get("versions", {})},
    }


def ci_metrics(metrics: dict) -> dict:
    """The metrics that have a value and a confidence interval (JSON-safe: no NaN)."""
    out = {}
    for name, entry in metrics.items():
        if isinstance(entry, dict) and "value" in entry and "ci_low" in entry:
            out[name] = {k: _finite(v) for k, v in entry.items() if k in ("value", "ci_low", "ci_high")}
    return out


def data_license(cohort: dict) -> str:
    """The training data's licence as the run recorded it (the cohort's own, config.json's ``cohort``)."""
    if cohort.get("license"):
        return str(cohort["license"])
    return DATA_LICENSE_SYNTHETIC if cohort.get("synthetic") else DATA_LICENSE_UNKNOWN


def base_model(backbone: str | None) -> str | None:
    """The backbone's Hugging Face hub id where it has one (a catalogue name's, or a hub name as given); None for a
    local folder."""
    if not backbone:
        return None
    named = named_backbone(backbone)
    if named is not None:   # its hub alias's organisation, its own spelling of the name
        owner = next((a.split("/")[0] for a in named.aliases if "/" in a), None)
        return f"{owner}/{named.name}" if owner else named.name
    if Path(backbone).is_absolute() or backbone.startswith(".") or Path(backbone).exists():
        return None
    return backbone


def schema_facts(schema) -> dict | None:
    """Every input field of the run's schema (kind, unit, valid range, categories, window); None for a run trained
    on given texts."""
    if schema is None:
        return None
    fields = []
    for col in schema.columns:
        if col.role != "feature":
            continue
        fields.append({"name": col.name, "kind": col.kind, "description": col.description, "unit": col.unit,
                       "valid": list(col.valid) if col.valid else None,
                       "categories": list(col.categories) if col.categories else None, "window": col.window})
    return {"name": schema.name, "description": schema.description, "fields": fields}


def out_of_scope(task) -> list[str]:
    return [f"predicting anything but {task.outcome} ({task.label}), or predicting it at another time than "
            f"{task.prediction_time:g} h after ICU admission or from data outside the task's window",
            "stays the task excludes (its exclusions, below), children, and stays outside the ICU",
            "automated decisions on treatment, triage or withdrawal of care without a clinician",
            "a hospital, population or database it was not validated on, before its calibration and threshold "
            "have been checked there (O:E, calibration slope)",
            "a medical device: it is research software without regulatory clearance"]


def evaluation(files: RunFolder, metrics: dict, task, threshold: float,
               scored: Iterable[str | os.PathLike] = ()) -> list[dict]:
    """One entry per scored cohort: the development cohort's validation and test splits, then every other cohort
    scored with this run (:func:`scored_files`), by name."""
    cohort = files.config().get("cohort") or {}
    source, dataset = cohort.get("source") or "development cohort", cohort.get("schema") or "development"
    scored = _paths(scored)
    named = set(scored)
    out = []
    for split, role in (("val", "development, validation split (chose the epoch, threshold and recalibration)"),
                        ("test", "development, test split (scored once, after training)")):
        if isinstance(metrics.get(split), dict):
            out.append(_entry(f"{source}, {split}", role, split, metrics[split], task.name, RunFolder.METRICS,
                              dataset))
    for name, path in scored_files(files, scored).items():
        info = _scored(path, threshold, explicit=path in named)
        if info is None:
            continue
        entry = _entry(name, "scored with the run (every labelled stay)", "all", info["metrics"],
                       info.get("cohort_task") or task.name, path.name, name)
        if info.get("cohort_task") and info["cohort_task"] != task.name:
            entry["note"] = (f"labelled for another task ({info['cohort_task']}) than the run's ({task.name}): "
                             "read its numbers with that in mind")
        out.append(entry)
    return out


def scored_files(files: RunFolder, scored: Iterable[str | os.PathLike] = ()) -> dict[str, Path]:
    """``{cohort name: its metrics file}`` of the cohorts scored with the run besides its own: ``NAME.metrics.json``
    in the run folder, in the study folder around it (the run is its ``alfia-run/``), and ``scored`` (a metrics
    file or the predictions beside it), later ones replacing earlier ones of the same name."""
    found: dict[str, Path] = {}
    folders = [files.path]
    if files.path.name == StudyFolder.RUN:
        folders.insert(0, files.path.parent)
    for folder in folders:
        for path in sorted(folder.glob(f"*{SCORED_SUFFIX}")):
            if path.is_file():
                found[path.name.removesuffix(SCORED_SUFFIX)] = path
    for path in _paths(scored):
        if not path.is_file():
            raise AlfiaError(f"{path} does not exist; pass the metrics file that `alfia predict --out` wrote beside "
                             f"its predictions (NAME{SCORED_SUFFIX})")
        found[path.name.removesuffix(SCORED_SUFFIX)] = path
    return found


def scored_metrics(folder: str | os.PathLike) -> list[Path]:
    """The metrics files of the cohorts the card of the run in ``folder`` reports besides its development cohort
    (found by :func:`scored_files` and scored by this run): what a copy of the run passes on to its own card."""
    files = _finished(folder)
    threshold = files.threshold()
    return [path for path in scored_files(files).values() if _scored(path, threshold, explicit=False) is not None]


def subgroups(files: RunFolder, threshold: float) -> dict | None:
    """The study report's subgroup numbers on the test split (``{"threshold", "n_boot", "groups": {"variable=level":
    {"n", "deaths", "expected", "oe_ratio", "auroc", ...}}}``), or None when no report was built for the run as it
    is now (a report of an earlier training into the same folder had another threshold)."""
    try:
        data = files.read_json(SUBGROUPS.as_posix())
    except AlfiaError as exc:
        logger.info("the model card leaves out the subgroups: %s", exc)
        return None
    if not isinstance(data, dict) or not isinstance(data.get("groups"), dict):
        return None
    if not isinstance(data.get("threshold"), int | float) or not math.isclose(data["threshold"], threshold,
                                                                              rel_tol=0, abs_tol=1e-12):
        logger.info("the model card leaves out %s: it was written for another threshold", SUBGROUPS.as_posix())
        return None
    groups = {}
    for name, entry in data["groups"].items():
        if isinstance(entry, dict):
            groups[str(name)] = {"n": entry.get("n"), "deaths": entry.get("deaths"),
                                 "expected": _finite(entry.get("expected")),
                                 **ci_metrics({k: entry[k] for k in ("oe_ratio", "auroc", "auprc") if entry.get(k)})}
    return {"split": "test", "source": SUBGROUPS.as_posix(), "threshold": data.get("threshold"),
            "n_boot": data.get("n_boot"), "groups": groups}


def limitations(config: dict, task, metrics: dict, scored_cohorts: list[dict]) -> list[str]:
    cohort = config.get("cohort") or {}
    out = []
    rows = cohort.get("rows")
    where = cohort.get("source") or cohort.get("schema") or "one cohort"
    others = [e["cohort"] for e in scored_cohorts if e["file"] != RunFolder.METRICS]
    out.append(f"Developed on {rows if rows is not None else 'an unrecorded number of'} stays of {where}: one "
               "population, one era, one way of recording. "
               + (f"Scored beyond it on: {', '.join(others)} (Evaluation)." if others else
                  "It has been scored on no other cohort: its numbers elsewhere are unknown."))
    if cohort.get("synthetic"):
        out.append("The training cohort is synthetic: its numbers say nothing about patients.")
    if task.exclusions:
        out.append(f"Stays excluded by the task were never seen: {'; '.join(task.exclusions)}.")
    out.append("The alert threshold (best F1) and the recalibration were chosen on the validation split, which also "
               "chose the epoch: its numbers are optimistic; the test split was scored once.")
    trunc = metrics.get("truncation") or {}
    cut = sum(int(v) for v in (trunc.get("truncated_texts") or {}).values() if isinstance(v, int | float))
    if cut:
        out.append(f"{cut} texts of the development cohort were longer than the model's "
                   f"{trunc.get('limit_tokens')}-token limit and were cut: their last facts were not read.")
    out.append("A probability is a group's risk, not a patient's fate; a low one is no reason to withhold care.")
    return out


def citations(cohort: dict, task, backbone: str | None, lora: bool = True) -> list[str]:
    out = [PAPER]
    if cohort.get("citation"):
        out.append(str(cohort["citation"]))
    if task.source:
        out.append(f"The task ({task.name}): {task.source}.")
    if lora:
        out.append(LORA)
    if backbone:
        out.append(f"The backbone ({backbone}): see its own model card for its citation and licence.")
    out.append(MODEL_CARDS)
    return out


# -- the markdown ------------------------------------------------------------------------------------------------
def render_card(facts: dict) -> str:
    """``MODEL_CARD.md``: Hugging Face's model-card layout (YAML front matter: licence, tags, data set, metrics,
    ``model-index``), then intended and out-of-scope use, training data and task, evaluation on every cohort
    with 95% CIs, subgroups, calibration, limitations, how to load and score, citations."""
    parts = ["---", _yaml(front_matter(facts)), "---", "", f"# {facts['name']}", "", *_summary(facts)]
    parts += ["## Model details", "", *_details(facts)]
    parts += ["## Intended use", "", f"An estimate of the risk of {facts['task']['outcome']} of an ICU stay, "
              f"{_task_when(facts['task'])}, with an alert at the threshold, shown to the staff who care for the "
              f"patient beside their own judgement ({facts['intended_use']}).", ""]
    parts += ["## Out-of-scope use", "", *[f"- {line[:1].upper()}{line[1:]}." for line in facts["out_of_scope_use"]],
              ""]
    parts += ["## Training data and task", "", *_training(facts)]
    parts += ["## Evaluation", "", *_evaluation(facts)]
    parts += ["### Subgroups", "", *_subgroups(facts)]
    parts += ["### Calibration", "", *_calibration_section(facts)]
    parts += ["## Limitations", "", *[f"- {line}" for line in facts["limitations"]], ""]
    parts += ["## How to load and score", "", *_usage(facts)]
    parts += ["## Citations", "", *[f"- {c}" for c in facts["citations"]], ""]
    return "\n".join(parts)


def front_matter(facts: dict) -> dict:
    """The YAML metadata of the Hugging Face model card (``license`` is the code's; the training data's licence
    is its own key, ``training_data_license``)."""
    task = facts["task"]
    cohort = facts.get("training_cohort") or {}
    meta: dict[str, Any] = {"license": CODE_LICENSE_ID, "training_data_license": facts["license"]["training_data"]}
    meta["tags"] = ["alfia", "clinical", "intensive-care", "mortality-prediction", "early-warning",
                    "text-classification", "adaptive-layer-fusion", *(["lora"] if facts.get("lora") else []),
                    task["name"]]
    meta["datasets"] = [cohort.get("schema") or "unrecorded"]
    meta["metrics"] = list(METRIC_NAMES)
    if facts.get("base_model"):
        meta["base_model"] = facts["base_model"]
    meta["pipeline_tag"] = "text-classification"
    results = []
    for entry in facts["evaluation"]:
        values = [{"type": k, "value": round(m["value"], YAML_DIGITS), "name": _metric_label(k, m)}
                  for k, m in entry["metrics"].items() if m.get("value") is not None]
        if values:
            split = {"val": "validation"}.get(entry["split"], entry["split"])   # Hugging Face's split names
            results.append({"task": {"type": "text-classification", "name": facts["task_title"]},
                            "dataset": {"name": entry["cohort"], "type": entry["dataset"], "split": split},
                            "metrics": values})
    meta["model-index"] = [{"name": facts["name"], "results": results}]
    return meta


def write_model_card(folder: str | os.PathLike, out: str | os.PathLike | None = None,
                     scored: Iterable[str | os.PathLike] = ()) -> tuple[Path, dict]:
    """Write the card of the run in ``folder`` to ``out`` (default ``folder/MODEL_CARD.md``), atomically; returns
    its path and its facts (:func:`card_facts`)."""
    path = Path(out) if out is not None else Path(folder) / CARD
    if path.suffix.lower() != ".md":
        raise AlfiaError(f"the model card is a markdown file: give it a .md name, not {path.name}")
    if _finished(folder).metrics() is None:
        raise AlfiaError(f"run {folder} has no {RunFolder.METRICS}: its training did not finish, so it has no "
                         "numbers to report")
    facts = card_facts(folder, scored)
    write_text_atomic(path, render_card(facts))
    return path, facts


# -- helpers -----------------------------------------------------------------------------------------------------
def _finished(folder: str | os.PathLike) -> RunFolder:
    files = RunFolder(folder)
    if not files.path.is_dir():
        raise AlfiaError(f"run folder {folder} does not exist; train one with `alfia train`")
    if files.threshold() is None:
        raise AlfiaError(f"run {folder} has no {RunFolder.THRESHOLD}: its training did not finish (run `alfia "
                         "train ... --resume`)")
    return files


def _entry(cohort: str, role: str, split: str, metrics: dict, task: str, file: str, dataset: str) -> dict:
    kept = {k: v for k, v in ci_metrics(metrics).items() if k in METRIC_NAMES}
    for name in ("calibration_intercept", "calibration_slope"):
        failed = (metrics.get(name) or {}).get("failed_resamples")
        if name in kept and failed:
            kept[name]["failed_resamples"] = int(failed)
    return {"cohort": cohort, "role": role, "split": split, "dataset": dataset, "task": task,
            "file": file, "n": metrics.get("n"), "n_pos": metrics.get("n_pos"),
            "prevalence": _finite(metrics.get("prevalence")), "n_boot": metrics.get("n_boot"),
            "ci_level": metrics.get("ci_level"), "threshold": _finite(metrics.get("threshold")),
            "metrics": {k: kept[k] for k in METRIC_NAMES if k in kept}}


def _scored(path: Path, threshold: float, explicit: bool) -> dict | None:
    """A scored cohort's metrics file when it is this run's and has metrics; else None (an error when the caller
    named it, a log line when it was found)."""
    try:
        info = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        problem = f"{path} is unreadable ({type(exc).__name__})"
        info = None
    else:
        problem = None
        if not isinstance(info, dict) or not isinstance(info.get("metrics"), dict):
            problem = f"{path} holds no metrics (its stays had no known outcome of both kinds)"
        elif not isinstance(info.get("threshold"), int | float) or not math.isclose(info["threshold"], threshold,
                                                                                     rel_tol=0, abs_tol=1e-12):
            problem = (f"{path} was scored at threshold {info.get('threshold')!r}, this run's is {threshold!r}: "
                       "another run scored it")
    if problem is None:
        return info
    if explicit:
        raise AlfiaError(problem)
    logger.info("the model card leaves out %s", problem)
    return None


def _paths(scored: Iterable[str | os.PathLike]) -> list[Path]:
    out = []
    for item in scored:
        path = Path(item)
        out.append(path if path.name.endswith(SCORED_SUFFIX) else metrics_path(path))
    return out


def _model_config(files: RunFolder) -> dict:
    """The saved model's config (``model/config.json``'s ``config``; empty when absent or unreadable)."""
    path = files.model / CONFIG_NAME
    try:
        saved = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return saved.get("config") or {} if isinstance(saved, dict) else {}


def _lora(model: dict) -> dict | None:
    lora = model.get("lora")
    if not isinstance(lora, dict):
        return None
    return {"r": lora.get("r"), "alpha": lora.get("alpha"), "layers": lora.get("layers")}


def _readout(model: dict) -> dict | None:
    readout = model.get("readout")
    return {"C": readout.get("C"), "layers": readout.get("num_layers")} if isinstance(readout, dict) else None


def _calibration(files: RunFolder) -> dict | None:
    saved = files.calibration()
    if saved is None:
        return None
    return {k: saved.get(k) for k in ("method", "a", "b", "formula", "fitted_on")}


def _finite(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _fmt(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _ci(entry: dict | None) -> str:
    if not entry or entry.get("value") is None:
        return "n/a"
    text = _fmt(entry["value"])
    if entry.get("ci_low") is not None and entry.get("ci_high") is not None:
        text += f" ({_fmt(entry['ci_low'])}\u2013{_fmt(entry['ci_high'])})"
    if entry.get("failed_resamples"):
        text += f" [{entry['failed_resamples']} failed]"
    return text


def _metric_label(name: str, entry: dict) -> str:
    """The metric's name in the model-index, with its 95% CI (``AUPRC (95% CI 0.367-0.570)``)."""
    label = METRIC_NAMES[name]
    if entry.get("ci_low") is not None and entry.get("ci_high") is not None:
        label += f" (95% CI {_fmt(entry['ci_low'])}-{_fmt(entry['ci_high'])})"
    return label


def _task_when(task: dict) -> str:
    start, end = task["window"]
    span = f"the first {end:g} h" if start == 0 else f"hours {start:g}-{end:g}"
    return f"at {task['prediction_time']:g} h after ICU admission, from {span} of the stay"


def _summary(facts: dict) -> list[str]:
    task = facts["task"]
    layers = facts.get("fused_layers")
    top = f"its top {len(layers)} layers ({layers[0]}-{layers[-1]})" if layers else "its top layers"
    fused = f"the mean of {top}" if facts.get("fusion") == "mean" else f"Adaptive Layer Fusion over {top}"
    adapted = " adapted with LoRA," if facts.get("lora") else ","
    readout = ", plus a pooled logistic readout of the fused layers" if facts.get("readout") else ""
    resamples = {e.get("n_boot") for e in facts["evaluation"]} - {None}
    boot = f"{'/'.join(str(n) for n in sorted(resamples))} stratified bootstrap resamples" if resamples else \
        "stratified bootstrap"
    return [f"ALFIA predicts **{task['outcome']}** (`{task['label']}`) {_task_when(task)}: the stay's data, written "
            f"as a clinical text, read by a transformer ({facts['backbone']}){adapted} {fused} and an attentional "
            f"head{readout}; the probability is recalibrated on the validation split.", "",
            f"Written by alfia {__version__} from the run folder's own files; `alfia card RUN` writes it again (after "
            f"more cohorts were scored). Numbers: estimates with 95% confidence intervals ({boot}).", ""]


def _details(facts: dict) -> list[str]:
    rows = [("backbone", facts["backbone"])]
    if facts.get("fused_layers"):
        rows.append(("fused layers", ", ".join(str(n) for n in facts["fused_layers"])))
    lora = facts.get("lora")
    rows.append(("LoRA", f"r {lora['r']}, alpha {lora['alpha']}" if lora else "none (the backbone frozen)"))
    rows.append(("fusion", "mean of the fused layers (ablation)" if facts.get("fusion") == "mean"
                 else "Adaptive Layer Fusion, attentional head"))
    if facts.get("readout"):
        rows.append(("pooled readout", f"logistic, C {facts['readout']['C']}, on the fused layers' token means"))
    if facts.get("max_tokens"):
        rows.append(("tokens read per stay", f"at most {facts['max_tokens']}"))
    cal = facts.get("calibration") or {}
    rows.append(("recalibration", f"{cal.get('method', 'none')}, fitted on the validation split"))
    rows.append(("alert threshold", f"{_fmt(facts['threshold']['value'])} (calibrated probability; "
                                    f"{facts['threshold']['chosen_on']})"))
    rows.append(("licence of the code", facts["license"]["code"]))
    rows.append(("licence of the training data", facts["license"]["training_data"]))
    versions = facts.get("versions") or {}
    rows.append(("versions", ", ".join(f"{k} {v}" for k, v in versions.items())))
    return ["| | |", "| --- | --- |", *[f"| {k} | {_cell(v)} |" for k, v in rows], ""]


def _training(facts: dict) -> list[str]:
    task, cohort = facts["task"], facts.get("training_cohort") or {}
    lines = [f"- Task: `{task['name']}`, {facts['task_title']}; label column `{task['label']}` (1: "
             f"{task['outcome']}); input window [{task['window'][0]:g} h, {task['window'][1]:g} h) from ICU "
             f"admission; one prediction per stay at {task['prediction_time']:g} h."]
    if task.get("exclusions"):
        lines.append(f"- Exclusions: {'; '.join(task['exclusions'])}.")
    if task.get("source"):
        lines.append(f"- Definition: {task['source']}.")
    lines.append(f"- Training cohort: {cohort.get('source') or 'not recorded'} (schema `{cohort.get('schema')}`, "
                 f"{cohort.get('rows')} stays, split into train, validation and test; checksum "
                 f"`{cohort.get('checksum')}`{'; synthetic' if cohort.get('synthetic') else ''}).")
    lines.append(f"- Licence of the training data: {facts['license']['training_data']}. Licence of the code: "
                 f"{facts['license']['code']}.")
    schema = facts.get("schema")
    if schema is None:
        lines += ["- Inputs: clinical texts given as they are (the run has no text encoder).", ""]
        return lines
    lines += [f"- Inputs: the {len(schema['fields'])} variables of schema `{schema['name']}`, written as one text "
              "per stay by the run's own encoder:", "", "| variable | description | unit | window |",
              "| --- | --- | --- | --- |"]
    lines += [f"| `{f['name']}` | {_cell(f['description'])} | {_cell(f['unit'] or '')} | {_cell(f['window'])} |"
              for f in schema["fields"]]
    return [*lines, ""]


def _evaluation(facts: dict) -> list[str]:
    entries = facts["evaluation"]
    if not entries:
        return ["No cohort was scored.", ""]
    lines = ["Every cohort the run scored. 95% CIs in brackets; the development cohort's validation split chose the "
             "threshold and recalibration, its test split was scored once.", "",
             "| cohort | role | n | deaths (%) | " + " | ".join(RANKING.values()) + " |",
             "| --- | --- | --- | --- | " + " | ".join("---" for _ in RANKING) + " |"]
    for e in entries:
        lines.append(f"| {_cell(e['cohort'])} | {_cell(e['role'])} | {e['n']} | {_deaths(e)} | "
                     + " | ".join(_ci(e["metrics"].get(k)) for k in RANKING) + " |")
    lines += ["", f"At the alert threshold ({_fmt(facts['threshold']['value'])}):", "",
              "| cohort | " + " | ".join(AT_THRESHOLD.values()) + " |",
              "| --- | " + " | ".join("---" for _ in AT_THRESHOLD) + " |"]
    lines += [f"| {_cell(e['cohort'])} | " + " | ".join(_ci(e["metrics"].get(k)) for k in AT_THRESHOLD) + " |"
              for e in entries]
    notes = [f"- {e['cohort']}: {e['note']}" for e in entries if e.get("note")]
    return [*lines, "", *(notes + [""] if notes else [])]


def _subgroups(facts: dict) -> list[str]:
    sub = facts.get("subgroups")
    if not sub or not sub["groups"]:
        return ["Not in the run folder: the study report (`alfia report RUN --cohort COHORT`, section 4) computes "
                "O:E, AUPRC and AUROC per sex, age band and unit type on the test split; run `alfia card RUN` "
                "after it to bring them here.", ""]
    lines = [f"The study report's numbers on the development cohort's test split ({sub['source']}):", "",
             "| group | n | deaths | expected deaths | O:E | AUROC |", "| --- | --- | --- | --- | --- | --- |"]
    for name, g in sub["groups"].items():
        lines.append(f"| {_cell(name)} | {g['n']} | {g['deaths']} | {_fmt(g.get('expected'), 1)} | "
                     f"{_ci(g.get('oe_ratio'))} | {_ci(g.get('auroc'))} |")
    return [*lines, ""]


def _calibration_section(facts: dict) -> list[str]:
    cal = facts.get("calibration") or {}
    method = cal.get("method", "none")
    how = ("none: the model's own probabilities" if method == "none" else
           f"{method}, `{cal.get('formula')}` with a = {_fmt(cal.get('a'), 4)}, b = {_fmt(cal.get('b'), 4)}, fitted "
           "on the validation split")
    lines = [f"Recalibration: {how}. O:E: observed over expected deaths (ideal 1); calibration intercept (ideal 0) "
             "and slope (ideal 1): the logistic regression of the outcome on the probability's logit.", "",
             "| cohort | " + " | ".join(CALIBRATION.values()) + " |",
             "| --- | " + " | ".join("---" for _ in CALIBRATION) + " |"]
    lines += [f"| {_cell(e['cohort'])} | " + " | ".join(_ci(e["metrics"].get(k)) for k in CALIBRATION) + " |"
              for e in facts["evaluation"]]
    return [*lines, ""]


def _usage(facts: dict) -> list[str]:
    return ["RUN is this folder (the card lies in it).", "", "```bash",
            "alfia predict RUN stays.parquet --out scores.parquet   # probability, label at the threshold, warnings",
            "alfia serve RUN                                        # the risk service: /v1/predict, /v1/model",
            "alfia card RUN --scored scores.metrics.json            # this card again, with that cohort",
            "```", "", "```python", "from alfia import ALFIAPredictor", "",
            'predictor = ALFIAPredictor.load("RUN")',
            "risk = predictor.predict_proba(stays)        # a Series by stay_id",
            "alert = predictor.predict(stays)             # 1 at or above the threshold",
            "```", "",
            "`stays`: a cohort file, a DataFrame of the schema's variables or a bundled name; no outcome or split "
            "column is needed to score.", ""]


def _deaths(entry: dict) -> str:
    if entry.get("n_pos") is None:
        return "n/a"
    prevalence = entry.get("prevalence")
    return f"{entry['n_pos']} ({100 * prevalence:.1f}%)" if prevalence is not None else str(entry["n_pos"])


def _cell(value) -> str:
    """A markdown table cell: no pipe, no line break."""
    return str(value).replace("|", "/").replace("\n", " ")


def _yaml(data, indent: int = 0) -> str:
    """``data`` (dicts, lists, strings, numbers, booleans, None) as block YAML; strings double-quoted in JSON's
    escapes, which YAML reads the same."""
    pad = " " * indent
    lines = []
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, dict | list) and value:
                lines.append(f"{pad}{key}:")
                lines.append(_yaml(value, indent + (2 if isinstance(value, dict) else 0)))
            else:
                lines.append(f"{pad}{key}: {_scalar(value)}")
    else:
        for item in data:
            if isinstance(item, dict | list) and item:
                block = _yaml(item, indent + 2).splitlines()
                lines.append(f"{pad}- {block[0].lstrip()}")
                lines += block[1:]
            else:
                lines.append(f"{pad}- {_scalar(item)}")
    return "\n".join(lines)


def _scalar(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "null"
        text = repr(value)
        return text if "e" not in text else f"{value:.12f}"   # YAML 1.1 reads 1e-05 as a string
    if isinstance(value, dict | list):
        return "{}" if isinstance(value, dict) else "[]"
    return json.dumps(str(value))
