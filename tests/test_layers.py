"""The layers of the package (docs/DEVELOPING.md): a module imports only from its own layer or the layers below it,
imports inside functions included, and never uses a private name (``_x``) of another package: neither imports one,
nor reaches one as an attribute of another package's module, class or object (:func:`private_uses`), nor
overrides one in a subclass."""

from __future__ import annotations

import ast
import functools
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


# -- private names of another package ------------------------------------------------------------------------------
def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def is_module(dotted: str) -> bool:
    """Is ``dotted`` a module or package of alfia (a file or folder under alfia/)?"""
    path = ROOT.parent.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def source_of(module: str) -> tuple[str, bool] | None:
    path = ROOT.parent.joinpath(*module.split("."))
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py").read_text(), False
    if (path / "__init__.py").is_file():
        return (path / "__init__.py").read_text(), True
    return None


@functools.cache
def member_class(cls: str, attr: str) -> str | None:
    """The class of ``attr`` of alfia's class ``cls`` (dotted) as its source declares it: a field annotated with a
    class (``model: ALFIA``), or a method whose return annotation is one (``def to_runtime(...) -> ALFIA``)."""
    module, name = cls.rsplit(".", 1)
    found = source_of(module)
    if found is None:
        return None
    tree = ast.parse(found[0])
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            for item in node.body:
                annotation = None
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name) and item.target.id == attr:
                    annotation = item.annotation
                elif isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name == attr:
                    annotation = item.returns
                if annotation is not None:
                    kind = _Scope.of(module).resolve(annotation)
                    return kind[1] if kind is not None and kind[0] == "object" else None
    return None


class _Scope:
    """What the names of one module stand for, where it can be told without running it: ``("module", dotted)`` for
    an imported alfia module, ``("object", dotted)`` for a name imported from one or defined here (a class, a
    function), ``("instance", dotted)`` for a value of such a class (``x = C(...)``, ``x = C.load(...)``, a
    parameter annotated ``x: C``, a field or method result the class declares (:func:`member_class`);
    ``self.x = C(...)`` is ``self.x`` in the whole module)."""

    @staticmethod
    @functools.cache
    def of(module: str) -> _Scope:
        """The names a module imports or defines (what its annotations can name), values not followed."""
        source, is_package = source_of(module)
        return _Scope(module, ast.parse(source), is_package, values=False)

    def __init__(self, module: str, tree: ast.AST, is_package: bool, values: bool = True):
        self.names: dict[str, tuple[str, str]] = {}
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                self.names[node.name] = ("object", f"{module}.{node.name}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.split(".")[0] == "alfia":
                        if a.asname:
                            self.names[a.asname] = ("module", a.name)
                        else:
                            self.names["alfia"] = ("module", "alfia")
            elif isinstance(node, ast.ImportFrom):
                found = imports(module, ast.unparse(ast.Module([ast.ImportFrom(
                    node.module, node.names, node.level)], [])), is_package)
                for _, base, _names in found:
                    for a in node.names:
                        full = f"{base}.{a.name}"
                        self.names[a.asname or a.name] = ("module", full) if is_module(full) else ("object", full)
        # a value built from another tracked value (x = C(...); y = x) is found on the second pass
        for _ in range(2 if values else 0):
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    for arg in [*node.args.args, *node.args.kwonlyargs, *node.args.posonlyargs]:
                        kind = self.resolve(arg.annotation) if arg.annotation is not None else None
                        if kind is not None and kind[0] == "object":
                            self.names[arg.arg] = ("instance", kind[1])
                elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                    value = self.resolve(node.value)
                    if value is None or value[0] != "instance":
                        continue
                    for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                        key = self.key(target)
                        if key is not None:
                            self.names[key] = value

    @staticmethod
    def key(node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
            return f"self.{node.attr}"
        return None

    def resolve(self, node: ast.AST | None) -> tuple[str, str] | None:
        if node is None:
            return None
        key = self.key(node)
        if key is not None and key in self.names:
            return self.names[key]
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):   # an annotation ``C | None``
            return self.resolve(node.left) or self.resolve(node.right)
        if isinstance(node, ast.Attribute):
            inner = self.resolve(node.value)
            if inner is None:
                return None
            kind, dotted = inner
            if kind == "module":
                full = f"{dotted}.{node.attr}"
                return ("module", full) if is_module(full) else ("object", full)
            if kind == "object" and not is_private(node.attr):
                return ("method", dotted)   # C.load: a class's public constructor-like attribute
            if kind == "instance":
                member = member_class(dotted, node.attr)
                return None if member is None else ("member", member)
            return None
        if isinstance(node, ast.Call):
            inner = self.resolve(node.func)
            if inner is not None and inner[0] in ("object", "method") and inner[1].rsplit(".", 1)[-1][:1].isupper():
                return ("instance", inner[1])   # C(...) or C.load(...): a C, as far as one can tell
            if inner is not None and inner[0] == "member":
                return ("instance", inner[1])   # x.to_runtime(...) declared to return a C
        return None


def private_uses(module: str, source: str, is_package: bool = False) -> list[str]:
    """Private names of another package that ``source`` reaches beyond its imports: ``m._x`` on another package's
    module, ``C._x`` / ``obj._x`` on a class imported from another package or a value built by one, and a subclass
    of another package's class that defines or calls (``super()._x``) a private method."""
    tree = ast.parse(source)
    scope = _Scope(module, tree, is_package)
    here = package_of(module)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and is_private(node.attr):
            owner = scope.resolve(node.value)
            if owner is not None and owner[0] == "member":   # x.field: the class its owner declares
                owner = ("instance", owner[1])
            if owner is not None and package_of(owner[1]) != here:
                out.append(f"{module}:{node.lineno} uses the private {node.attr} of {owner[1]} ({owner[0]})")
        elif isinstance(node, ast.ClassDef):
            bases = [b for b in map(scope.resolve, node.bases) if b is not None and package_of(b[1]) != here]
            if not bases:
                continue
            for item in ast.walk(node):
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and is_private(item.name):
                    out.append(f"{module}:{item.lineno} overrides the private {item.name} of {bases[0][1]}")
                elif (isinstance(item, ast.Attribute) and is_private(item.attr) and isinstance(item.value, ast.Call)
                      and isinstance(item.value.func, ast.Name) and item.value.func.id == "super"):
                    out.append(f"{module}:{item.lineno} calls the private {item.attr} of {bases[0][1]}")
    return out


def test_no_module_reaches_a_private_name_of_another_package():
    found = []
    for name, path, is_package in modules():
        found += private_uses(name, path.read_text(), is_package)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("source,expected", [
    ("from alfia.model import alfia\n\ndef f():\n    return alfia._load_adapter\n", "private _load_adapter of "
     "alfia.model.alfia (module)"),
    ("import alfia.model.alfia as m\nm._load_adapter(None, None)\n", "private _load_adapter of alfia.model.alfia"),
    ("import alfia.model.alfia\nalfia.model.alfia._load_adapter(None, None)\n", "private _load_adapter"),
    ("from alfia.model.alfia import ALFIA\n\ndef f(c):\n    model = ALFIA(c)\n    return model._infer([], 1, id)\n",
     "private _infer of alfia.model.alfia.ALFIA (instance)"),
    ("from alfia.model.alfia import ALFIA\n\nclass T:\n    def build(self):\n        self.model = ALFIA.load('x')\n"
     "\n    def score(self):\n        return self.model._infer([], 1, id)\n",
     "private _infer of alfia.model.alfia.ALFIA"),
    ("from alfia.model.alfia import ALFIA\n\ndef f(model: ALFIA):\n    return model._batches([], 1)\n",
     "private _batches"),
    ("from alfia.model.alfia import ALFIA\n\nclass T:\n    def build(self, c):\n"
     "        self.model = ALFIA(c).to_runtime('cpu')\n\n    def score(self):\n        return self.model._infer([])\n",
     "private _infer of alfia.model.alfia.ALFIA"),
    ("from alfia.inference import Run\n\ndef f():\n    return Run.load('x').model._base_model()\n",
     "private _base_model of alfia.model.alfia.ALFIA"),
    ("from alfia.model.alfia import ALFIA\nALFIA._sized(None, 1, 'x')\n", "private _sized of alfia.model.alfia.ALFIA "
     "(object)"),
    ("from alfia.training.trainer import Trainer\n\nclass T(Trainer):\n    def _save_best(self):\n        pass\n",
     "overrides the private _save_best of alfia.training.trainer.Trainer"),
    ("from alfia.training import trainer\n\nclass T(trainer.Trainer):\n    def build(self):\n"
     "        super()._build()\n", "calls the private _build"),
])
def test_the_private_check_catches_a_deliberate_violation(source, expected):
    found = private_uses("alfia.analysis.example", source)
    assert len(found) == 1 and expected in found[0], found
    owner = "alfia.training.example" if "alfia.training" in source else "alfia.model.example"
    assert private_uses(owner, source) == []   # inside its own package a private name is fine


def test_the_private_check_leaves_public_and_own_names_alone():
    source = ("from alfia.model import scoring\nfrom alfia.model.alfia import ALFIA\n\n"
              "def f(model: ALFIA, texts):\n    _local = scoring.score(model, texts, 8, id)\n"
              "    return model.forward, model.__class__, scoring.__name__, _local\n\n"
              "class _Mine:\n    def _helper(self):\n        return self._other\n")
    assert private_uses("alfia.inference", source) == []
