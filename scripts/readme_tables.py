"""Regenerate the generated blocks of the README and of docs/: the results at a glance (README), the feature
tables of every schema (docs/features.md), the study results, the ablation and the backbone comparison
(docs/results.md) and the speed benchmark (docs/speed.md), all from ``results/`` and the schemas.

    .venv/bin/python scripts/readme_tables.py            # rewrite the files in place
    .venv/bin/python scripts/readme_tables.py --check    # exit 1 when a file is out of date (used by a test)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from alfia.cohorts.registry import dataset_names, get_schema

ROOT = Path(__file__).resolve().parents[1]
# The files with generated blocks (<!-- key --> ... <!-- /key -->).
FILES = ("README.md", "docs/results.md", "docs/speed.md", "docs/features.md")


def schema_table(name: str) -> str:
    schema = get_schema(name)
    rows = ["| column | role | unit | window | meaning |", "| --- | --- | --- | --- | --- |"]
    for c in schema.columns:
        kind = c.kind if c.kind != "category" else "category: " + ", ".join(c.categories)
        meaning = f"{c.description} ({kind})".replace("|", "/")
        rows.append(f"| `{c.name}` | {c.role} | {c.unit or ''} | {c.window} | {meaning} |")
    return "\n".join(rows)


def leaderboard_rows(markdown: str) -> dict[str, dict[str, list[str]]]:
    """``{table: {model: cells}}`` of a study's leaderboard.md (tables "test split", "external cohort (all rows)";
    cells: model, family, AUPRC, AUROC, best F1, best F2, n), in the table's order."""
    tables: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in markdown.splitlines():
        if line.startswith("### Leaderboard: "):
            current = tables.setdefault(line.removeprefix("### Leaderboard: "), {})
        elif current is not None and line.startswith("| ") and not line.startswith(("| model", "| ---")):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            current[cells[0]] = cells
    return tables


DIFFERENCE = re.compile(r"AUPRC difference (?P<model>.+?) \u2212 (?P<baseline>.+?) \(best tabular baseline\).*?: "
                        r"(?P<diff>[-+]?\d\.\d+) \(95% CI (?P<ci>.+?)\)\.")


def glance(folder: Path) -> str:
    """The README's results at a glance: ALFIA, ALFIA-boost, the frozen-encoder logistic regression (what
    ALFIA's training must beat), the best tabular model of each table, AutoGluon's ensemble and the best severity
    score, test split and set B, with the paired differences and ALFIA's ECE and Brier score."""
    import json

    board = (folder / "leaderboard.md").read_text()
    tables = leaderboard_rows(board)
    test, external = tables["test split"], tables["external cohort (all rows)"]
    best_tabular = [next(m for m, c in t.items() if c[1] == "tabular") for t in (test, external)]
    best_score = next(m for m, c in test.items() if c[1] == "score")
    names = ["ALFIA", "ALFIA-boost", "frozen encoder + logistic regression",
             *dict.fromkeys([*best_tabular, "WeightedEnsemble"]), best_score]
    lines = ["| model | test AUPRC (95% CI) | test AUROC (95% CI) | set B AUPRC (95% CI) | set B AUROC (95% CI) |",
             "| --- | --- | --- | --- | --- |"]
    for name in (n for n in names if n in test):
        notes = [note for note, yes in (("AutoGluon's ensemble", name == "WeightedEnsemble"),
                                        ("best tabular on test", name == best_tabular[0]),
                                        ("best tabular on set B", name == best_tabular[1]),
                                        ("best severity score", name == best_score)) if yes]
        label = name + (f" ({'; '.join(notes)})" if notes else "")
        ext = external.get(name, [""] * 4)
        lines.append(f"| {label} | {test[name][2]} | {test[name][3]} | {ext[2]} | {ext[3]} |")
    where = iter(("test", "set B"))
    diffs = []
    for section in board.split("### Leaderboard: ")[1:]:
        label = next(where)
        diffs += [f"- {m['model']} \u2212 {m['baseline']} ({label}): {m['diff']} (95% CI {m['ci']})"
                  for m in DIFFERENCE.finditer(section)]
    spread_path = folder / "seeds.json"
    if spread_path.exists():   # the committed study's spread over its seeds: each difference pooled, and its reading
        spread = json.loads(spread_path.read_text())
        n = len(spread["repeats"])
        lines[0] += f" set B AUPRC over {n} seeds (mean ± sd) |"
        lines[1] += " --- |"
        over = {r["model"]: r["auprc"] for r in spread["models"].get("external", [])}
        for i, line in enumerate(lines[2:], start=2):
            name = next((m for m in over if line.startswith(f"| {m} ") or line.startswith(f"| {m} (")), None)
            lines[i] += f" {over[name]['mean']:.3f} ± {over[name]['sd']:.3f} |" if name else " n/a |"
        pooled = {(c["model"], c["baseline"], label): c for w, label in (("test", "test"), ("external", "set B"))
                  for c in spread["comparisons"].get(w, [])}
        for i, d in enumerate(diffs):
            m = re.match(r"- (?P<model>.+?) \u2212 (?P<baseline>.+?) \((?P<label>test|set B)\)", d)
            c = pooled.get((m["model"], m["baseline"], m["label"])) if m else None
            if c:
                p = c["pooled"]
                diffs[i] += (f"; over {n} seeds, pooled {p['difference']:+.3f} (95% CI {p['ci_low']:+.3f} to "
                             f"{p['ci_high']:+.3f}): {c['reading']}")
    metrics = json.loads((folder / "metrics.json").read_text())["test"]
    external_metrics = json.loads((folder / "p12-b.metrics.json").read_text())["metrics"]
    lines += ["", "Paired bootstrap AUPRC differences against the best tabular baseline:", "", *diffs, "",
              f"ALFIA's expected calibration error (10 bins): {metrics['ece']['value']:.3f} (test), "
              f"{external_metrics['ece']['value']:.3f} (set B); Brier score {metrics['brier']['value']:.3f} (test), "
              f"{external_metrics['brier']['value']:.3f} (set B); 0 is perfect for both."]
    return "\n".join(lines)


# YAIB's published test AUROCs for ICU mortality at 24 h on the full eICU-CRD (van de Water et al., ICLR 2024,
# Table 2): another cohort (about 100 times the demo), shown for reference only.
YAIB_EICU_AUROC = {"LR": 0.848, "LGBM": 0.857, "GRU": 0.859, "LSTM": 0.855, "TCN": 0.854, "Transformer": 0.859}


def yaib_block(folder: Path) -> str:
    """The real-patient study (YAIB eICU demo -> MIMIC-III demo): ALFIA's lines, the leaderboard, and YAIB's
    published AUROCs on the full eICU as reference rows of another cohort."""
    from alfia.study import readme_results

    lines = [readme_results(folder, ("yaib-eicu-demo", "yaib-mimic-demo")), "",
             "Reference, **other cohort** (YAIB's published test AUROC for mortality24 on the full eICU-CRD, about "
             "100 times the demo; not comparable with the rows above):", "",
             "| model (YAIB, full eICU) | cohort | AUROC |", "| --- | --- | ---: |"]
    lines += [f"| {name} | other cohort | {auroc:.3f} |" for name, auroc in YAIB_EICU_AUROC.items()]
    return "\n".join(lines)


def blocks() -> dict[str, str]:
    out = {f"schema:{name}": schema_table(name) for name in dataset_names()}
    results = ROOT / "results" / "study"
    if (results / "metrics.json").exists():
        from alfia.study import readme_results

        out["results"] = readme_results(results)
        out["glance"] = glance(results)
    yaib = ROOT / "results" / "yaib-study"
    if (yaib / "metrics.json").exists():
        out["yaib"] = yaib_block(yaib)
    for key, folder in (("ablation", "ablation"), ("backbones", "ablation-backbones")):
        ablation = ROOT / "results" / folder / "ablation.md"
        if ablation.exists():
            out[key] = ablation.read_text().strip()
    bench = ROOT / "results" / "bench" / "cpu.md"
    if bench.exists():
        out["bench"] = bench.read_text().strip()
    return out


def render(text: str) -> str:
    for key, body in blocks().items():
        pattern = re.compile(rf"(<!-- {re.escape(key)} -->\n)(?:.*?\n)?(<!-- /{re.escape(key)} -->)", re.S)
        text = pattern.sub(lambda m, body=body: m.group(1) + body + "\n" + m.group(2), text)
    return text


def main() -> int:
    stale = []
    for name in FILES:
        path = ROOT / name
        current = path.read_text()
        fresh = render(current)
        if fresh != current:
            stale.append(name)
            if "--check" not in sys.argv:
                path.write_text(fresh)
    if "--check" in sys.argv and stale:
        print("out of date: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
