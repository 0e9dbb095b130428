"""The import names `hub`, `schema` and `adapters` also belong to unrelated PyPI packages."""

from __future__ import annotations

import fnmatch
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


def test_every_data_file_of_our_packages_is_in_the_wheel() -> None:
    # The wheel (the Dockerfile's `pip install`) holds only the data files package-data
    # names: a template left out works in the editable install and fails in production.
    config = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    listed = config["tool"]["setuptools"]["package-data"]
    packages = set(config["tool"]["setuptools"]["packages"])
    missing = []
    for top in OURS:
        for path in sorted((PROJECT_ROOT / top).rglob("*")):
            relative = path.relative_to(PROJECT_ROOT)
            if (
                not path.is_file()
                or path.suffix in (".py", ".pyc")
                or "__pycache__" in relative.parts
            ):
                continue
            folder = relative.parent
            while ".".join(folder.parts) not in packages:
                folder = folder.parent
            patterns = listed.get(".".join(folder.parts), [])
            inside = relative.relative_to(folder).as_posix()
            if not any(fnmatch.fnmatch(inside, pattern) for pattern in patterns):
                missing.append(str(relative))
    assert missing == [], f"not in the wheel's package data: {missing}"
