"""The README and docs/: generated parts (results, feature tables, speed) agree with results/ and the schemas; the
README stays short, shows the two commands first and links every page that holds a moved section."""

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# Where each generated block lives.
BLOCKS = {"README.md": ["glance"], "docs/results.md": ["results", "ablation", "backbones", "yaib"],
          "docs/speed.md": ["bench"],
          "docs/features.md": ["schema:physionet2012", "schema:mimic-iv", "schema:eicu", "schema:yaib"]}
# The pages that hold what the README used to: cohorts, text, model, training, results, speed, baselines, report,
# databases, features.
MOVED = ["cohorts", "text", "model", "training", "results", "speed", "baselines", "report", "databases", "features"]


def _script():
    spec = importlib.util.spec_from_file_location("readme_tables", ROOT / "scripts" / "readme_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_blocks_are_up_to_date():
    script = _script()
    assert set(script.FILES) == set(BLOCKS)
    for name in script.FILES:
        text = (ROOT / name).read_text()
        assert script.render(text) == text, f"run `.venv/bin/python scripts/readme_tables.py` and commit {name}"


def test_generated_blocks_are_where_they_belong_and_filled():
    for name, keys in BLOCKS.items():
        text = (ROOT / name).read_text()
        for key in keys:
            body = re.search(rf"<!-- {re.escape(key)} -->\n(.*?)<!-- /{re.escape(key)} -->", text, re.S)
            assert body and body.group(1).count("\n|") >= 3, f"{name} lacks a filled {key} block"


def test_readme_is_short_with_the_two_commands_on_top():
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    head = text.split("\n## ")[0]
    assert "make study" in head and "make test" in head


def test_results_at_a_glance_show_alfia_and_the_baselines_with_cis():
    glance = README.read_text().split("<!-- glance -->")[1].split("<!-- /glance -->")[0]
    rows = {line.split(" | ")[0].strip("| ").split(" (")[0]: line for line in glance.splitlines()
            if line.startswith("| ") and not line.startswith(("| model", "| ---"))}
    assert {"ALFIA", "ALFIA-boost", "WeightedEnsemble"} <= set(rows)
    assert all(line.count("\u2013") == 4 for line in rows.values())  # four estimates, each with its CI
    assert "honest reading" in README.read_text()


def test_every_moved_section_is_linked_and_every_link_resolves():
    text = README.read_text()
    for page in MOVED:
        assert (ROOT / "docs" / f"{page}.md").exists(), page
        assert f"(docs/{page}.md)" in text, f"the README does not link docs/{page}.md"
    for source in [README, *(ROOT / "docs").glob("*.md")]:
        for target in re.findall(r"\]\(([^)#:]+\.(?:md|png|cff))(?:#[^)]*)?\)", source.read_text()):
            assert (source.parent / target).exists(), f"{source.name} links {target}, which does not exist"
