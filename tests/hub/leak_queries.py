"""The leak matrix's queries, generated from the live schema's introspection: every leaf
reachable from a root type, inline fragments on every union member and interface
implementation, bounded depth, no type entered twice on one path. A field added to the
schema later is selected (and so must be classified by the oracle) without anyone editing
this file."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

INTROSPECTION = """query Introspect { __schema { types { name kind
  possibleTypes { name }
  fields { name args { name defaultValue type { ...T } } type { ...T } } } } }
fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name
  ofType { kind name } } } } }"""

LEAF_KINDS = ("SCALAR", "ENUM")
ALIAS = "__on__"  # a clashing field's alias: reason__on__HealthEncounter
MAX_DEPTH = 7  # levels below a root type: ChildRecord.household.person.redactedFields.field


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # the named type, lists and non-null unwrapped
    required_args: bool
    shape: str  # the type as written, e.g. "[Redaction!]!"


@dataclass
class Schema:
    kinds: dict[str, str] = field(default_factory=dict)
    fields: dict[str, dict[str, Field]] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)
    skipped: set[str] = field(default_factory=set)  # Type.field not selected, and why

    @classmethod
    def of(cls, introspection: dict[str, Any]) -> Schema:
        s = cls()
        for t in introspection["__schema"]["types"]:
            s.kinds[t["name"]] = t["kind"]
            s.members[t["name"]] = sorted(m["name"] for m in t.get("possibleTypes") or [])
            s.fields[t["name"]] = {
                f["name"]: Field(
                    f["name"],
                    _named(f["type"]),
                    any(
                        a["type"]["kind"] == "NON_NULL" and a["defaultValue"] is None
                        for a in f["args"]
                    ),
                    _shape(f["type"]),
                )
                for f in t.get("fields") or []
            }
        return s

    def field_type(self, type_name: str, field_name: str) -> str | None:
        f = self.fields.get(type_name, {}).get(field_name)
        return f.type if f else None

    def selection(
        self,
        type_name: str,
        path: tuple[str, ...] = (),
        clash: frozenset[str] | set[str] = frozenset(),
    ) -> str:
        """Every leaf of `type_name`, as a selection set's contents."""
        kind = self.kinds[type_name]
        if kind in ("UNION", "INTERFACE"):
            # Members' fields of one name but different types may not share a response name
            # (e.g. HealthEncounter.reason and Redaction.reason): those get an alias.
            shapes: dict[str, list[str]] = {}
            for m in self.members[type_name]:
                for f in self.fields[m].values():
                    shapes.setdefault(f.name, []).append(f.shape)
            # the commonest shape keeps the plain name; the others are aliased
            keep = {
                n: max(set(s), key=lambda x, s=s: (s.count(x), x))  # type: ignore[misc]
                for n, s in shapes.items()
                if len(set(s)) > 1
            }
            parts = ["__typename"]
            for m in self.members[type_name]:
                mine = self.fields[m]
                clash = {n for n, k in keep.items() if n in mine and mine[n].shape != k}
                parts.append(f"... on {m} {{ {self.selection(m, path, clash)} }}")
            return " ".join(parts)
        here = (*path, type_name)
        parts = []
        for f in self.fields[type_name].values():
            where = f"{type_name}.{f.name}"
            alias = f"{f.name}{ALIAS}{type_name}: " if f.name in clash else ""
            if f.required_args:
                self.skipped.add(f"{where} (required arguments)")
                continue
            if self.kinds[f.type] in LEAF_KINDS:
                parts.append(f"{alias}{f.name}")
            elif f.type in here:
                self.skipped.add(f"{where} (cycle)")
            elif len(here) >= MAX_DEPTH:
                self.skipped.add(f"{where} (depth)")
            else:
                parts.append(f"{alias}{f.name} {{ {self.selection(f.type, here)} }}")
        return " ".join(parts) or "__typename"


def _shape(t: dict[str, Any]) -> str:
    if t["kind"] == "NON_NULL":
        return _shape(t["ofType"]) + "!"
    if t["kind"] == "LIST":
        return f"[{_shape(t['ofType'])}]"
    return str(t["name"])


def _named(t: dict[str, Any]) -> str:
    while t.get("ofType"):
        t = t["ofType"]
    return str(t["name"])


@dataclass(frozen=True)
class Leaf:
    """One non-null leaf value of a response and the (type, field) path to it."""

    path: tuple[tuple[str, str], ...]
    value: Any
    objects: tuple[dict[str, Any], ...]  # the objects on the path, outermost first


def leaves(
    schema: Schema,
    value: Any,
    type_name: str,
    path: tuple[tuple[str, str], ...],
    objects: tuple[dict[str, Any], ...] = (),
) -> Iterator[Leaf]:
    """Walk a response value of `type_name`, yielding every non-null leaf."""
    if value is None:
        return
    if isinstance(value, list):
        for v in value:
            yield from leaves(schema, v, type_name, path, objects)
        return
    kind = schema.kinds.get(type_name)
    if kind in LEAF_KINDS:
        yield Leaf(path, value, objects)
        return
    if not isinstance(value, dict):
        yield Leaf(path, value, objects)  # not what the schema says: let the oracle see it
        return
    actual = str(value.get("__typename") or type_name)
    for response_key, v in value.items():
        if response_key == "__typename":
            continue
        key = response_key.split(ALIAS)[0]
        ft = schema.field_type(actual, key)
        if ft is None:
            yield Leaf((*path, (actual, key)), v, (*objects, value))  # the oracle decides
            continue
        yield from leaves(schema, v, ft, (*path, (actual, key)), (*objects, value))


def fragment(schema: Schema, name: str, type_name: str) -> str:
    return f"fragment {name} on {type_name} {{ {schema.selection(type_name)} }}"
