"""The shape of the package, as the README's picture draws it: which package may import
which, no two files that import each other (nor any longer loop), torch only in `export`,
no capability probing, and every command's --help. Parsed from the source, so a wrong arrow fails here
the day it is written."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from livedream import cli

PACKAGE = Path(__file__).resolve().parent.parent / "livedream"
SHARED = {"config", "params", "objective", "errors", "manifest", "files", "media"}  # the bottom layer: data, contracts, files
PACKAGES = {"cli", "live", "control", "offline", "pipeline", "outputs", "runtime", "ops", "export", "testing"}
# What each part must never import (the README's "How it is built" table).
FORBIDDEN: dict[str, set[str]] = {
    "cli": {"testing"},
    "live": {"cli", "export", "offline", "testing"},
    "control": {"cli", "live", "pipeline", "outputs", "runtime", "offline", "export", "testing"},
    "offline": {"cli", "live", "control", "export", "testing"},
    "pipeline": {"cli", "live", "control", "offline", "outputs", "ops", "export", "testing"},
    "outputs": {"cli", "live", "control", "offline", "runtime", "ops", "export", "testing"},
    "runtime": {"cli", "live", "control", "offline", "pipeline", "outputs", "ops", "testing"},
    "ops": {"cli", "live", "export", "testing"},
    "export": {"cli", "live", "control", "offline", "pipeline", "outputs", "runtime", "ops", "testing"},
    "testing": set(),
    "__main__": set(),
    "__init__": set(),
    **{name: PACKAGES for name in SHARED},
}
# The one door from the runtime to the build step: the first run exports the default graph.
ALLOWED = {("runtime/exporting.py", "export")}
TORCH_USERS = {"export", "testing"}  # testing: the bench's torch eager reference
PROBED = re.compile(r"engine|model|runner|stepper|guard|session", re.IGNORECASE)


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def part_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def imported_names(tree: ast.AST) -> list[str]:
    """Every module an import statement names, at any depth (lazy imports count too)."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
            if node.module == "livedream":
                names += [f"livedream.{alias.name}" for alias in node.names]
    return names


def test_no_module_imports_a_package_its_part_must_never_import() -> None:
    wrong = []
    for path in modules():
        part = part_of(path)
        where = str(path.relative_to(PACKAGE))
        for name in imported_names(ast.parse(path.read_text())):
            pieces = name.split(".")
            if pieces[0] != "livedream" or len(pieces) < 2:
                continue
            target = pieces[1]
            if target != part and target in FORBIDDEN[part] and (where, target) not in ALLOWED:
                wrong.append(f"{where} imports {name} ({part} never imports {target})")
    assert not wrong, "\n".join(wrong)


def test_the_import_check_sees_a_wrong_arrow() -> None:
    """The check above must fail on a lazy import of `live` inside a pipeline function."""
    tree = ast.parse("def f():\n    from livedream.live.app import LiveApp\n")
    assert "livedream.live.app" in imported_names(tree) and "live" in FORBIDDEN["pipeline"]


def module_file(name: str) -> Path | None:
    """The file of module `name` (livedream.x.y), or None outside the package."""
    pieces = name.split(".")
    if pieces[0] != "livedream":
        return None
    base = PACKAGE.joinpath(*pieces[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def imported_files(tree: ast.AST) -> set[Path]:
    """The package's files an import names, at any depth (lazy and TYPE_CHECKING ones too):
    `from livedream.a import b` is the file of a.b where b is a module, else a's."""
    files: set[Path | None] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            files.update(module_file(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            files.update(module_file(f"{node.module}.{alias.name}") or module_file(node.module) for alias in node.names)
    files.discard(None)
    return files  # type: ignore[return-value]


def import_cycles(graph: dict[Path, set[Path]]) -> list[list[Path]]:
    """Every group of files that import each other round a loop (Tarjan's strongly connected
    components of more than one file)."""
    index: dict[Path, int] = {}
    low: dict[Path, int] = {}
    stack: list[Path] = []
    cycles = []

    def visit(node: Path) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_no_files_import_each_other() -> None:
    graph = {path: imported_files(ast.parse(path.read_text())) - {path} for path in modules()}
    cycles = [" → ".join(str(p.relative_to(PACKAGE)) for p in group) for group in import_cycles(graph)]
    assert not cycles, "files that import each other:\n" + "\n".join(cycles)


def test_the_cycle_check_sees_a_lazy_import_back() -> None:
    a, b, c = PACKAGE / "a.py", PACKAGE / "b.py", PACKAGE / "c.py"
    assert import_cycles({a: {b}, b: {c}, c: {a}}) == [[a, b, c]]
    assert import_cycles({a: {b}, b: {c}, c: set()}) == []
    tree = ast.parse("def f():\n    from livedream.live.app import LiveApp\n")
    assert imported_files(tree) == {PACKAGE / "live" / "app.py"}


def test_nothing_outside_export_imports_torch() -> None:
    users = [
        str(path.relative_to(PACKAGE)) for path in modules()
        if part_of(path) not in TORCH_USERS
        and any(name.split(".")[0] == "torch" for name in imported_names(ast.parse(path.read_text())))
    ]
    assert not users, f"torch imported outside export/: {users}"


def test_every_package_says_its_job_and_what_it_never_imports() -> None:
    for name in PACKAGES - {"export"}:
        doc = ast.get_docstring(ast.parse((PACKAGE / name / "__init__.py").read_text())) or ""
        assert "never" in doc.lower() or name == "cli", f"livedream/{name}/__init__.py does not say what it never imports"
        assert len(doc.split()) > 10, f"livedream/{name}/__init__.py does not say its job"


def test_no_capability_is_found_by_getattr_and_nothing_forwards_by_getattr() -> None:
    found = []
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name == "__getattr__":
                found.append(f"{path.relative_to(PACKAGE)}: a __getattr__ forwarding proxy")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("getattr", "hasattr") and node.args
                    and PROBED.search(ast.unparse(node.args[0]))):
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {ast.unparse(node)}")
    assert not found, "\n".join(found)


def test_product_code_never_imports_the_testing_package() -> None:
    users = [
        str(path.relative_to(PACKAGE)) for path in modules() if part_of(path) != "testing"
        and any(name.startswith("livedream.testing") for name in imported_names(ast.parse(path.read_text())))
    ]
    assert not users


@pytest.mark.parametrize("command", [[], ["run"], ["dream"], ["export"], ["doctor"], ["midi"]])
def test_every_command_answers_help(command: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as leaving:
        cli.main([*command, "--help"])
    assert leaving.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: livedream") and (not command or command[0] in text)
