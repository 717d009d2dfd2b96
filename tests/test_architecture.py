"""The import order of docs/architecture.md, read off the code: a package imports only those below it,
and no two modules or subpackages of the application import each other, directly or round a loop."""
from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import networkx
import pytest

ROOT = Path(__file__).resolve().parent.parent
# Each package with the packages it may import (core ← platforms ← vouchers ← marketplace ← monitoring
# ← reports; funding ← evaluation, both on core and platforms, evaluation also on monitoring).
MAY_IMPORT = {
    "core": set(),
    "platforms": {"core"},
    "vouchers": {"core", "platforms"},
    "marketplace": {"core", "platforms", "vouchers"},
    "monitoring": {"core", "platforms", "vouchers", "marketplace"},
    "reports": {"core", "platforms", "vouchers", "marketplace", "monitoring"},
    "funding": {"core", "platforms"},
    "evaluation": {"core", "platforms", "funding", "monitoring"},
}


def application_modules() -> dict[str, Path]:
    modules = {}
    for package in MAY_IMPORT:
        for path in (ROOT / package).rglob("*.py") if (ROOT / package).is_dir() else ():
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _statements(tree: ast.Module, *, top_level_only: bool) -> list[ast.AST]:
    """The file's statements, without those under `if TYPE_CHECKING:` (an import for annotations only)."""
    if top_level_only:
        return [node for node in tree.body if not _type_checking(node)]
    found, waiting = [], [tree]
    while waiting:
        node = waiting.pop()
        found.append(node)
        waiting.extend(child for child in ast.iter_child_nodes(node) if not _type_checking(child))
    return found


def imports_of(path: Path, module: str, modules: dict[str, Path], *, top_level_only: bool = False) -> set[str]:
    """The application modules this file imports: `from a import b` is a.b where that is a module, else a.
    Imports inside functions count too unless top_level_only (a deferred import is still a dependency,
    but only imports at the top of a file can make Python's import of a module fail half-way); imports
    under `if TYPE_CHECKING:` never count (the type only)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in _statements(tree, top_level_only=top_level_only):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join([*parts[: len(parts) - node.level + 1], *filter(None, [base])])
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {name for name in found if name in modules and name != module}


def import_graph(*, top_level_only: bool = False) -> networkx.DiGraph:
    modules = application_modules()
    graph = networkx.DiGraph()
    for module, path in modules.items():
        graph.add_node(module)
        graph.add_edges_from((module, target) for target in imports_of(path, module, modules,
                                                                        top_level_only=top_level_only)
                             # a module's own package, and a package's __init__ wiring its own rooms
                             if not module.startswith(target + ".") and not target.startswith(module + "."))
    return graph


@pytest.fixture(scope="module")
def graph() -> networkx.DiGraph:
    return import_graph()


# Inside a package with subpackages, each subpackage with the subpackages it may import (docs/architecture.md:
# registry ← booking ← catalogue, payments ← booking). Its top-level modules are units of their own: the
# shared ones (marketplace.blueprints) import no subpackage; only the wiring (WIRING) imports them all.
SUBPACKAGE_MAY_IMPORT = {
    "marketplace.registry": set(),
    "marketplace.payments": set(),
    "marketplace.booking": {"marketplace.registry", "marketplace.payments"},
    "marketplace.catalogue": {"marketplace.registry", "marketplace.booking"},
    "vouchers.claims": set(),
}
WIRING = {"marketplace", "marketplace.demo", "vouchers"}


def has_subpackages(package: str) -> bool:
    return any(path.is_dir() and (path / "__init__.py").exists() for path in (ROOT / package).iterdir())


def unit(module: str) -> str:
    """A module's unit in the order: its package; where the package has subpackages, its subpackage, or
    the top-level module itself."""
    parts = module.split(".")
    if len(parts) > 2 and (ROOT / parts[0] / parts[1]).is_dir():
        return ".".join(parts[:2])
    if len(parts) == 2 and has_subpackages(parts[0]):
        return module
    return parts[0]


def test_a_package_imports_only_the_packages_below_it(graph):
    wrong = sorted(f"{source} → {target}" for source, target in graph.edges
                   if source.split(".")[0] != target.split(".")[0]
                   and target.split(".")[0] not in MAY_IMPORT[source.split(".")[0]])
    assert wrong == []


def test_no_modules_import_each_other_round_a_loop_at_the_top_of_their_files():
    assert sorted(sorted(cycle) for cycle in networkx.simple_cycles(import_graph(top_level_only=True))) == []


def test_subpackages_import_each_other_one_way_only(graph):
    units = networkx.DiGraph()
    units.add_edges_from((unit(a), unit(b)) for a, b in graph.edges if unit(a) != unit(b))
    assert sorted(sorted(cycle) for cycle in networkx.simple_cycles(units)) == []


def test_subpackages_import_only_those_below_them(graph):
    """Across the subpackages of one package, only the directions of SUBPACKAGE_MAY_IMPORT; a top-level
    module other than the package's wiring imports none of them."""
    wrong = []
    for source, target in graph.edges:
        a, b = unit(source), unit(target)
        if b not in SUBPACKAGE_MAY_IMPORT or a == b or a.split(".")[0] != b.split(".")[0]:
            continue
        if a in SUBPACKAGE_MAY_IMPORT and b not in SUBPACKAGE_MAY_IMPORT[a] \
                or a not in SUBPACKAGE_MAY_IMPORT and a not in WIRING:
            wrong.append(f"{source} → {target}")
    assert sorted(wrong) == []


def test_the_subpackage_order_names_every_subpackage():
    found = {f"{package}.{path.name}" for package in ("marketplace", "vouchers") for path in (ROOT / package).iterdir()
             if (path / "__init__.py").exists()}
    assert found == set(SUBPACKAGE_MAY_IMPORT)


def test_every_noqa_names_its_rule_and_says_why():
    """ruff (run by `make test`) keeps the code clean; where a line is exempted, the exemption names the
    rule and gives its reason on the same line."""
    files = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True)
    mark = "# no" "qa"  # spelt in two, so that this file's own lines are not read as exemptions
    bare = [f"{name}:{number}" for name in files.stdout.split()
            for number, line in enumerate((ROOT / name).read_text(encoding="utf-8").splitlines(), 1)
            if mark in line and not re.search(mark + r": [A-Z]+[0-9]+(, ?[A-Z]+[0-9]+)* +\S", line)]
    assert bare == []
