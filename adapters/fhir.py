"""Reading FHIR R4 JSON on the hot path: type-checked access to the elements an adapter uses,
without building a model of every resource.

A search page or a `_revinclude` bundle carries resources the adapter then drops (patients it
was not asked about, their encounters); validating all of them with fhir.resources' pydantic
models cost more CPU than the rest of the call. Here the bundle's envelope is checked whole
(resourceType, type, entries, links, total, each resource's type and id) and every element
the adapter reads is checked as it is read: the wrong JSON type, a date that is no FHIR date,
a required element missing — each is `SourceResponseInvalid`, naming the element and never
its value (values are personal data). An absent optional element reads as None or empty.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from .base import SourceResponseInvalid

Json = Mapping[str, Any]

# The R4 primitive types' regular expressions (hl7.org/fhir/R4/datatypes.html).
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")
_DATE = (
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
    r"(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?"
)
_DATE_ONLY = re.compile(_DATE)
_DATE_TIME = re.compile(
    _DATE + r"(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]{1,9})?"
    r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?"
)


def malformed(element: str) -> SourceResponseInvalid:
    return SourceResponseInvalid(f"FHIR source sent malformed FHIR ({element})")


@dataclass(frozen=True, slots=True)
class Page:
    """One Bundle as an adapter needs it.

    Attributes:
        resources: each entry's resource, its `resourceType` a string and its `id` (when
            present) a FHIR id; nothing else in it checked yet.
        next_url: the `next` link, if any.
        total: `Bundle.total`, if given.
    """

    resources: list[Json]
    next_url: str | None
    total: int | None


def read_bundle(payload: Any) -> Page:
    """The Bundle `payload` (parsed JSON), its envelope checked."""
    if not isinstance(payload, dict) or payload.get("resourceType") != "Bundle":
        raise SourceResponseInvalid("FHIR source did not return a Bundle")
    string(payload, "type", needed=True)  # required; its value is not used
    resources: list[Json] = []
    for entry in objects(payload, "entry"):
        resource = element(entry, "resource")
        if resource is None:
            continue
        kind = resource.get("resourceType")
        if not isinstance(kind, str) or not _RESOURCE_TYPE.fullmatch(kind):
            raise malformed("Bundle.entry.resource.resourceType")
        rid = resource.get("id")
        if rid is not None and not (isinstance(rid, str) and _ID.fullmatch(rid)):
            raise malformed(f"{kind}.id")
        resources.append(resource)
    links = objects(payload, "link")
    next_url = next((string(ln, "url") for ln in links if string(ln, "relation") == "next"), None)
    total = payload.get("total")
    if total is not None and (type(total) is not int or total < 0):
        raise malformed("Bundle.total")
    return Page(resources, next_url, total)


def element(parent: Json, key: str) -> Json | None:
    """A complex element (a JSON object), or None when absent."""
    value = parent.get(key)
    if value is None or isinstance(value, dict):
        return value
    raise malformed(key)


def required(parent: Json, key: str) -> Json:
    """A complex element FHIR requires (cardinality 1..1)."""
    value = element(parent, key)
    if value is None:
        raise malformed(key)
    return value


def objects(parent: Json | None, key: str) -> list[Json]:
    """A repeated complex element (a list of objects); empty when absent."""
    value = None if parent is None else parent.get(key)
    if value is None:
        return []
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return value
    raise malformed(key)


def string(parent: Json | None, key: str, *, needed: bool = False) -> str | None:
    """A string, code or uri; None when absent (a SourceResponseInvalid if `needed`)."""
    value = None if parent is None else parent.get(key)
    if isinstance(value, str) and value:
        return value
    if value is None and not needed:
        return None
    raise malformed(key)


def strings(parent: Json | None, key: str) -> list[str]:
    """A repeated string element (`given`, `line`); empty when absent."""
    value = None if parent is None else parent.get(key)
    if value is None:
        return []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise malformed(key)


def day(parent: Json | None, key: str, *, with_time: bool = False) -> date | None:
    """A FHIR date (or dateTime, `with_time`) as the day it falls on; None when absent or
    only a year or a month (a partial date names no day)."""
    text = string(parent, key)
    if text is None:
        return None
    if not (_DATE_TIME if with_time else _DATE_ONLY).fullmatch(text):
        raise malformed(key)
    if len(text) < 10:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:  # a day the month does not have
        raise malformed(key) from None
