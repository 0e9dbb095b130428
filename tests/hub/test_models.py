"""Each domain owns its tables (hub/<domain>/models.py); `hub.store.metadata` gathers them
all for the migrations, and the migrations build exactly what the models describe."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from hub.store.engine import Store, migrate_async
from hub.store.metadata import MODELS, metadata

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


async def test_the_migrations_build_exactly_the_tables_the_domains_models_describe(
    empty_url: str,
) -> None:
    await migrate_async(empty_url)
    store = Store(empty_url)

    def differences(connection: Any) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(connection), metadata))

    async with store.engine.connect() as conn:
        assert await conn.run_sync(differences) == []
    await store.aclose()


def test_every_domains_models_module_is_gathered_for_the_migrations() -> None:
    on_disk = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for path in (ROOT / "hub").rglob("models.py")
    }
    assert on_disk == {module.__name__ for module in MODELS}


def hub_imports(path: Path) -> list[str]:
    """The hub modules a module of hub/store/ imports from, as absolute names."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 1:
                names.append(f"hub.store.{module}".rstrip("."))
            elif node.level == 2:
                names.append(f"hub.{module}".rstrip("."))
            elif module.startswith("hub."):
                names.append(module)
    return names


def test_the_store_imports_no_domain_but_to_gather_their_tables() -> None:
    # Domains import the store's base; the store importing a domain back would be a cycle.
    found = {}
    for path in sorted((ROOT / "hub" / "store").glob("*.py")):
        outside = [m for m in hub_imports(path) if not m.startswith("hub.store.")]
        if outside:
            found[path.name] = outside
    assert found == {"metadata.py": ["hub.audit", "hub.contacts", "hub.identity", "hub.reading"]}
