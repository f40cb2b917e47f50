"""Regenerate the README's generated blocks: the feature tables of every schema, the study results, the
ablation table and the speed benchmark (from ``results/``).

    .venv/bin/python scripts/readme_tables.py            # rewrite README.md in place
    .venv/bin/python scripts/readme_tables.py --check    # exit 1 when README.md is out of date (used by a test)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from alfia.cohorts.schemas import get_schema
from alfia.datasets import dataset_names

ROOT = Path(__file__).resolve().parents[1]


def schema_table(name: str) -> str:
    schema = get_schema(name)
    rows = ["| column | role | unit | window | meaning |", "| --- | --- | --- | --- | --- |"]
    for c in schema.columns:
        kind = c.kind if c.kind != "category" else "category: " + ", ".join(c.categories)
        meaning = f"{c.description} ({kind})".replace("|", "/")
        rows.append(f"| `{c.name}` | {c.role} | {c.unit or ''} | {c.window} | {meaning} |")
    return "\n".join(rows)


def blocks() -> dict[str, str]:
    out = {f"schema:{name}": schema_table(name) for name in dataset_names()}
    results = ROOT / "results" / "study"
    if (results / "metrics.json").exists():
        from alfia.study import readme_results

        out["results"] = readme_results(results)
    ablation = ROOT / "results" / "ablation" / "ablation.md"
    if ablation.exists():
        out["ablation"] = ablation.read_text().strip()
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
    readme = ROOT / "README.md"
    current = readme.read_text()
    fresh = render(current)
    if "--check" in sys.argv:
        return 0 if fresh == current else 1
    readme.write_text(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
