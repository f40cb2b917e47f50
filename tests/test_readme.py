"""The README's generated parts (feature tables, study results) agree with the schemas and the results files."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("readme_tables", ROOT / "scripts" / "readme_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_generated_blocks_are_up_to_date():
    script = _script()
    readme = (ROOT / "README.md").read_text()
    assert script.render(readme) == readme, "run `.venv/bin/python scripts/readme_tables.py` and commit README.md"


def test_readme_top_shows_the_two_commands():
    head = (ROOT / "README.md").read_text().split("\n## ")[0]
    assert "make study" in head and "make test" in head
