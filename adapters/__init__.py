"""Source adapters: one module per agency system, each declaring its source as data.

A module is an adapter when it has `ADAPTER`, a class whose `declaration` says what the
source is (`adapters.base.SourceDeclaration`). The modules are found, not listed, so that a
new source is one new module here: nothing in this file (or elsewhere) names a source.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Mapping

from .base import Adapter, KindDeclaration, Source, SourceDeclaration

# The shared plumbing, not sources.
_PLUMBING = frozenset({"base", "fhir", "http", "sql"})


@functools.cache
def _found() -> tuple[type[Adapter], ...]:
    classes: list[type[Adapter]] = []
    for module in pkgutil.iter_modules(__path__):
        if module.name in _PLUMBING or module.name.startswith("_"):
            continue
        adapter = getattr(importlib.import_module(f".{module.name}", __name__), "ADAPTER", None)
        if adapter is not None:
            classes.append(adapter)
    classes.sort(key=lambda c: (c.declaration.position, c.declaration.source))
    seen: set[str] = set()
    for c in classes:
        d = c.declaration
        if c.source != d.source or d.source in seen:
            raise RuntimeError(f"adapter {c.__name__} declares {d.source!r} twice or apart")
        seen.add(d.source)
    return tuple(classes)


def registry() -> dict[Source, type[Adapter]]:
    """Each declared source's adapter class, in declaration order."""
    return {c.declaration.source: c for c in _found()}


def declarations() -> tuple[SourceDeclaration, ...]:
    """Every source's declaration, in `position` order (the schema's order)."""
    return tuple(c.declaration for c in _found())


def declaration(source: str) -> SourceDeclaration:
    """The declaration of one source by name; KeyError for a name no adapter declares."""
    for d in declarations():
        if d.source == source:
            return d
    raise KeyError(source)


def sources() -> tuple[Source, ...]:
    """The declared sources' names, in order."""
    return tuple(d.source for d in declarations())


def kinds() -> Mapping[str, KindDeclaration]:
    """Every declared item kind by its name ("police.incident" -> its declaration)."""
    return {k.kind: k for d in declarations() for k in d.kinds}


def kind_fields() -> Mapping[str, tuple[str, ...]]:
    """Every declared item kind's field names, in order (what `Item.data` holds)."""
    return {name: tuple(f for f, _ in k.fields) for name, k in kinds().items()}


__all__ = [
    "declaration",
    "declarations",
    "kind_fields",
    "kinds",
    "registry",
    "sources",
]
