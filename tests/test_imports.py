"""Import directions that must hold (issue 14): the data flows data -> models -> train -> eval -> tables, and a
package reads a lower one, never a higher one. Checked on the source (every import statement, also those inside
functions), so a lazy import cannot hide a circle."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import REPO

PACKAGE = REPO / "flux"


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name == "flux" or name.startswith("flux.")}


def modules(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        ("models", ("flux.train", "flux.eval", "flux.tables")),
        ("eval", ("flux.train", "flux.tables")),
    ],
)
def test_a_package_does_not_import_a_higher_one(folder, forbidden):
    offenders = {
        f"{path.relative_to(REPO)} imports {name}"
        for path in modules(folder)
        for name in imports_of(path)
        if name.startswith(forbidden)
    }
    assert not offenders, sorted(offenders)


def unit(module: str) -> str:
    """A top-level module or subpackage of flux: `flux.data.index` -> `flux.data`."""
    return ".".join(module.split(".")[:2])


def test_no_import_circle_between_flux_packages():
    """The graph of flux's top-level modules and subpackages (lazy imports included) has no cycle: e.g. the data
    package reads the dataset registry's specs from flux.data.spec, not from flux.config, which imports data."""
    edges: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        source = unit(".".join(path.relative_to(REPO).with_suffix("").parts))
        edges.setdefault(source, set()).update(unit(name) for name in imports_of(path) if unit(name) not in (source, "flux"))

    def path_back(start: str, node: str, seen: set[str]) -> list[str] | None:
        for target in sorted(edges.get(node, ())):
            if target == start:
                return [node, start]
            if target not in seen:
                seen.add(target)
                if (rest := path_back(start, target, seen)) is not None:
                    return [node, *rest]
        return None

    circles = [" -> ".join(found) for start in sorted(edges) if (found := path_back(start, start, set()))]
    assert not circles, circles


def test_table_modules_do_not_import_the_dispatcher():
    offenders = [
        str(path.relative_to(REPO))
        for path in modules("tables")
        if path.name != "render.py" and "flux.tables.render" in imports_of(path)
    ]
    assert not offenders, offenders


def test_evaluation_does_not_import_timm():
    """timm pulls torchvision and torch._dynamo (~2 s a job); only training uses it (optimiser, mixup, drop path)."""
    probe = "import sys, flux.eval.runner, flux.models.importing; print(sorted({'timm', 'torchvision'} & set(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]", loaded
