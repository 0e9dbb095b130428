"""The import names `hub`, `schema` and `adapters` also belong to unrelated PyPI packages."""

from __future__ import annotations

import importlib.metadata as md
import tomllib

import adapters
import hub
import schema
from hub.settings import PROJECT_ROOT

OURS = {"hub", "schema", "adapters"}


def _top_level_names(dist: md.Distribution) -> set[str]:
    names = set((dist.read_text("top_level.txt") or "").split())
    for f in dist.files or ():
        parts = f.parts
        if parts and not parts[0].endswith((".dist-info", ".egg-info", ".data")):
            names.add(parts[0].removesuffix(".py"))
    return names


def test_no_other_installed_distribution_claims_our_package_names() -> None:
    clashes = {
        (dist.metadata["Name"], name)
        for dist in md.distributions()
        if dist.metadata["Name"] != "mash-hub"
        for name in _top_level_names(dist) & OURS
    }
    assert not clashes, f"other distributions claim our import names: {sorted(clashes)}"


def test_our_packages_import_from_this_project() -> None:
    for module in (hub, schema, adapters):
        assert module.__file__ and module.__file__.startswith(str(PROJECT_ROOT)), module


def test_wheel_lists_its_packages_explicitly() -> None:
    config = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    packages = set(config["tool"]["setuptools"]["packages"])
    assert packages >= OURS
    assert config["project"]["scripts"]["mash-hub"] == "hub.cli:main"


def test_wheel_lists_every_sub_package_on_disk() -> None:
    config = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(init.parent.relative_to(PROJECT_ROOT).parts)
        for top in OURS
        for init in (PROJECT_ROOT / top).rglob("__init__.py")
    }
    assert on_disk <= listed, f"not in the wheel: {sorted(on_disk - listed)}"
