"""Section 1, the cohort: split sizes and label rates, how many stays of each cohort lie outside the training data
(the warnings ``alfia predict`` and the service give), Table 1 (median [IQR] for skewed features, SMDs) and the
text lengths in backbone tokens (collapsible, after the summary), and one example text unless texts are left
out."""

from __future__ import annotations

import numpy as np

from alfia.analysis.figures import COLOURS, new_figure
from alfia.analysis.report.inputs import Inputs, Table
from alfia.errors import AlfiaError
from alfia.evaluation import drift
from alfia.text.stats import token_counts

WARNING_COLUMNS = (*drift.OUT_OF_DISTRIBUTION, "truncated")


def _splits(inp: Inputs) -> Table:
    p = inp.predictions
    rows = []
    for split in ("train", "val", "test"):
        s = p[p["split"] == split]
        rows.append([split, f"{len(s):,}", f"{int(s[inp.label].sum()):,}",
                     f"{s[inp.label].mean():.1%}" if len(s) else "n/a"])
    y_all = p[inp.label]
    rows.append(["all", f"{len(p):,}", f"{int(y_all.sum()):,}", f"{y_all.mean():.1%}"])
    inp.figs.data("cohort-splits", {"rows": rows})
    return Table(["split", "stays", "deaths", "label rate"], rows)


def _lengths(inp: Inputs) -> tuple[object, dict]:
    tokenizer = inp.loaded.model.tokenizer
    limit = inp.loaded.model.max_length
    ids = tokenizer(inp.texts, add_special_tokens=True, truncation=False)["input_ids"]
    lengths = np.array([len(x) for x in ids])
    fig, ax = new_figure(7, 3)
    counts, edges, _ = ax[0, 0].hist(lengths, bins=40, color=COLOURS[0], label="texts")
    if limit:
        ax[0, 0].axvline(limit, color="k", ls="--", label=f"max length {limit}")
    ax[0, 0].legend()
    ax[0, 0].set_xlabel("tokens per text (backbone tokenizer, with special tokens)")
    ax[0, 0].set_ylabel("stays")
    stats = {"p50": float(np.percentile(lengths, 50)), "p95": float(np.percentile(lengths, 95)),
             "max": int(lengths.max()), "truncated": int((lengths > limit).sum()) if limit else 0}
    figure = inp.figs.figure("cohort-token-lengths", fig, {"counts": counts, "edges": edges, **stats},
                             "Text length in tokens")
    return figure, stats


def _warning_row(name: str, kinds: list[set[str]]) -> list:
    counts = drift.count_kinds(kinds)
    unknown = counts["reference_unavailable"] > 0
    ood = sum(bool(k & set(drift.OUT_OF_DISTRIBUTION)) for k in kinds)
    return [name, f"{len(kinds):,}", "unknown (no training reference)" if unknown else f"{ood:,}",
            *(f"{counts[kind]:,}" for kind in WARNING_COLUMNS)]


def warnings_table(inp: Inputs) -> tuple[Table | None, str]:
    """Stays with each kind of warning per cohort: the run's splits against its training reference (when the run
    keeps one and the cohort is given) and the external predictions' ``warnings`` column (when they have one);
    and what is not shown, with why."""
    rows, left_out = [], []
    reference = drift.load_reference(inp.run)
    if reference is None:
        left_out.append("the run's own splits (the run has no reference.json: it was trained before ALFIA kept "
                        "one)")
    elif inp.cohort is None or inp.texts is None:
        left_out.append("the run's own splits (pass --cohort)")
    else:
        model = inp.loaded.model
        warned = drift.stay_warnings(reference, inp.texts, token_counts(model.tokenizer, inp.texts),
                                     model.max_length, inp.cohort.df, free_text=inp.loaded.encoder is None)
        kinds = [{w["kind"] for w in ws} for ws in warned]
        splits = inp.cohort.df["split"].to_numpy() if "split" in inp.cohort.df.columns else None
        for split in ("train", "val", "test"):
            if splits is not None and (splits == split).any():
                rows.append(_warning_row(split, [k for k, s in zip(kinds, splits, strict=True) if s == split]))
    if inp.external is not None:
        preds = inp.external["predictions"]
        if "warnings" in preds.columns:
            rows.append(_warning_row(f"{inp.external['name']} (external)", drift.kinds_of(preds["warnings"])))
        else:
            left_out.append(f"{inp.external['name']} (its predictions were written before `alfia predict` wrote "
                            "warnings)")
    header = ["cohort", "stays", "out of distribution", *(k.replace("_", " ") for k in WARNING_COLUMNS)]
    inp.figs.data("cohort-warnings", {"header": header, "rows": rows, "not_shown": left_out})
    return (Table(header, rows) if rows else None), "; ".join(left_out)


def build(inp: Inputs) -> dict:
    warnings, warnings_missing = warnings_table(inp)
    context = {"splits": _splits(inp), "has_cohort": inp.cohort is not None, "table1": None, "table1_title": "",
               "table1_error": "", "lengths": None, "stats": {}, "example": None,
               "include_texts": inp.options.include_texts, "warnings": warnings,
               "warnings_missing": warnings_missing}
    if inp.cohort is None:
        return context
    from alfia.cohorts.table1 import table1

    try:
        t1 = table1(inp.cohort)
        rows = t1.values.tolist()
        context.update(table1=Table(list(t1.columns), rows, "table1"), table1_title=t1.attrs.get("title", "Table 1"))
        inp.figs.data("table1", {"columns": list(t1.columns), "rows": rows})
    except (AlfiaError, KeyError) as exc:
        context["table1_error"] = f"Table 1 ({exc})"
    if inp.texts is not None:
        context["lengths"], context["stats"] = _lengths(inp)
        if inp.options.include_texts:
            test_rows = np.flatnonzero(inp.cohort.df["split"].to_numpy() == "test")
            context["example"] = inp.texts[int(test_rows[0]) if len(test_rows) else 0]
    return context
