"""Hub modules never import the demo (DESIGN.md: nothing outside demo mode imports it):
only the CLI's demo and seed commands reach it, from inside the command."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def demo_imports(path: Path, root: Path = ROOT) -> list[tuple[int, bool]]:
    """(line, at module level) of every import of hub.demo in the module at `path`."""
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative to hub/<package>/
                package = path.relative_to(root).parent.parts
                base = list(package[: len(package) - (node.level - 1)])
                module = ".".join([*base, module] if module else base)
            names = [module] + [f"{module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        if any(n == "hub.demo" or n.startswith("hub.demo.") for n in names):
            found.append((node.lineno, id(node) in top))
    return found


def test_no_hub_module_imports_the_demo() -> None:
    offenders = {}
    for path in sorted((ROOT / "hub").rglob("*.py")):
        relative = path.relative_to(ROOT)
        if relative.parts[:2] == ("hub", "demo"):
            continue
        imports = demo_imports(path)
        allowed = relative == Path("hub/cli.py") and not any(top for _, top in imports)
        if imports and not allowed:
            offenders[str(relative)] = [line for line, _ in imports]
    assert offenders == {}


def test_the_check_sees_a_relative_import_of_the_demo(tmp_path: Path) -> None:
    assert demo_imports(ROOT / "hub" / "identity" / "linkage" / "scoring.py") == []
    probe = tmp_path / "hub" / "identity" / "linkage" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("from ...demo import generator\n\ndef f():\n    import hub.demo.stack\n")
    assert demo_imports(probe, tmp_path) == [(1, True), (4, False)]
