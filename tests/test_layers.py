"""The layers of the package (docs/DEVELOPING.md): a module imports only from its own layer or the layers below it,
imports inside functions included, and never a private name (``_x``) of another package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "alfia"

# bottom to top; a module belongs to the first layer with a prefix of its dotted name
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("alfia.errors", "alfia.io", "alfia.codec", "alfia.manifest", "alfia.tracking", "alfia.run_folder",
              "alfia.distributed", "alfia")),
    ("cohorts", ("alfia.cohorts",)),
    ("text", ("alfia.text",)),
    ("datasets", ("alfia.datasets",)),
    ("evaluation", ("alfia.evaluation",)),
    ("model", ("alfia.model",)),
    ("inference", ("alfia.inference",)),
    ("training", ("alfia.training",)),
    ("baselines", ("alfia.baselines",)),
    ("analysis", ("alfia.analysis", "alfia.bench")),
    ("serving", ("alfia.serving", "alfia.experts")),
    ("facade", ("alfia.api", "alfia.study")),
    ("cli", ("alfia.cli",)),
]
# The package's root imports its facade lazily, for `from alfia import ALFIAPredictor`: the public entry point.
ENTRY_POINT = ("alfia", "alfia.api")


def layer_of(module: str) -> int:
    for rank, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if prefix != "alfia" and (module == prefix or module.startswith(prefix + ".")):
                return rank
    if module == "alfia":
        return 0
    raise AssertionError(f"{module} is in no layer: add it to LAYERS and to docs/DEVELOPING.md")


def package_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def imports(module: str, source: str, is_package: bool) -> list[tuple[int, str, list[str]]]:
    """``(line, imported module, names)`` of every import of alfia in ``source``, at any depth."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name, []) for a in node.names if a.name.split(".")[0] == "alfia"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:   # relative: resolved against this module's package
                here = module.split(".") if is_package else module.split(".")[:-1]
                base = ".".join(here[:len(here) - node.level + 1] + ([node.module] if node.module else []))
            if base.split(".")[0] == "alfia":
                found.append((node.lineno, base, [a.name for a in node.names]))
    return found


def targets(target: str, names: list[str]) -> list[str]:
    """The modules an import reaches: `from alfia import x` names the submodule x."""
    return [f"{target}.{n}" if target == "alfia" else target for n in names] or [target]


def violations(module: str, source: str, is_package: bool = False) -> list[str]:
    here = layer_of(module)
    out = []
    for line, target, names in imports(module, source, is_package):
        for full in targets(target, names):
            if (module, full) == ENTRY_POINT or full.startswith("alfia.__"):   # `from alfia import __version__`
                continue
            if layer_of(full) > here:
                out.append(f"{module}:{line} imports {full} ({LAYERS[layer_of(full)][0]}) from the lower layer "
                           f"{LAYERS[here][0]}")
        private = [n for n in names if n.startswith("_") and not n.startswith("__")]
        if private and package_of(target) != package_of(module):
            out.append(f"{module}:{line} imports the private {', '.join(private)} of {target}")
    return out


def modules():
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        is_package = rel.name == "__init__"
        name = ".".join(rel.parts[:-1] if is_package else rel.parts)
        yield name, path, is_package


def test_every_module_imports_only_from_its_layer_or_below():
    found = []
    for name, path, is_package in modules():
        found += violations(name, path.read_text(), is_package)
    assert not found, "\n".join(found)


def mutual_pairs(sources: dict[str, tuple[str, bool]]) -> set[tuple[str, str]]:
    """Pairs of alfia's packages (``alfia.x``) that import each other, at any depth, from ``{module: (source,
    is_package)}``."""
    edges = set()
    for module, (source, is_package) in sources.items():
        for _, target, names in imports(module, source, is_package):
            for full in targets(target, names):
                if (module, full) != ENTRY_POINT and not full.startswith("alfia.__"):
                    edges.add((package_of(module), package_of(full)))
    return {tuple(sorted(e)) for e in edges if e[0] != e[1] and e[::-1] in edges}


def test_no_two_packages_reach_each_other():
    pairs = mutual_pairs({name: (path.read_text(), is_package) for name, path, is_package in modules()})
    assert not pairs, pairs


def test_the_pair_check_sees_a_cycle_inside_a_layer():
    sources = {"alfia.analysis.a": ("def f():\n    from alfia.bench import x\n", False),
               "alfia.bench.b": ("from alfia.analysis.a import f\n", False)}
    assert mutual_pairs(sources) == {("alfia.analysis", "alfia.bench")}


@pytest.mark.parametrize("module,source,expected", [
    ("alfia.cohorts.io", "def f():\n    from alfia.model.alfia import ALFIA\n", "imports alfia.model.alfia"),
    ("alfia.training.teacher", "from alfia.baselines.tabular import feature_frame\n", "(baselines) from the lower"),
    ("alfia.serving.cli", "from alfia.baselines.cli import _cohort\n", "private _cohort"),
    ("alfia.text.stats", "import alfia.model.backbone\n", "imports alfia.model.backbone"),
])
def test_the_check_catches_an_upward_or_private_import(module, source, expected):
    found = violations(module, source)
    assert len(found) == 1 and expected in found[0]
    assert violations("alfia.cli", source) == [] or "private" in expected   # the top layer may import anything


def test_every_module_has_a_layer():
    for name, _, _ in modules():
        layer_of(name)
