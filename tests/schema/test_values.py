"""The schema maps the values the hub's services hand it (frozen dataclasses), never ORM
rows: no schema module imports the store or a domain's models (issue 12 item 7)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def row_imports(path: Path) -> list[str]:
    """The store and models modules `path` imports, as absolute names."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for parts in (name.split(".") for name in names):
            if parts[:2] == ["hub", "store"]:
                found.add("hub.store")
            elif parts[0] == "hub" and "models" in parts:
                found.add(".".join(parts[: parts.index("models") + 1]))
    return sorted(found)


def test_no_schema_module_imports_hub_models_or_the_store() -> None:
    offenders = {}
    for path in sorted((ROOT / "schema").rglob("*.py")):
        found = row_imports(path)
        if found:
            offenders[str(path.relative_to(ROOT))] = found
    assert offenders == {}


def test_the_check_sees_each_way_of_importing_a_row(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from hub.audit.models import AuditEvent\n"
        "from hub.identity import models\n"
        "import hub.store.engine\n"
        "from hub.audit.events import LoggedEvent\n"
    )
    assert row_imports(probe) == ["hub.audit.models", "hub.identity.models", "hub.store"]
