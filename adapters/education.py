"""Local authority education system (REST/JSON API with an API key): pupils and their
school records — the school attended, attendance, suspensions and exclusions, SEN support or
an EHCP, and child-missing-education episodes. Schools are the largest referrers to a MASH.

Config: {"url": API base URL, e.g. "http://127.0.0.1:8084/education/v1" (required),
"api_key", or instead "api_key_file" (or "credentials_file"): a file holding the key, as
plain text or as JSON `{"api_key": ...}`; "timeout_s": budget of one call; "retries": extra
attempts after a 5xx/429/connection failure (default 2); "page_size"; "max_connections" /
"max_keepalive": the connection pool's bounds (default 20 / 10)}.

API (every request but `/health` sends the key in `X-API-Key`; a missing or wrong key is a
401): GET pupils?nhs_number=|family_name=|date_of_birth=|postcode=|id= and GET
records?pupil_id=a&pupil_id=b, both `{"items": [...], "next": absolute URL | null}`. A record
has `id`, `pupil_id`, `record_type` (ENROLMENT, ATTENDANCE, EXCLUSION, SEN,
MISSING_EDUCATION), the type's fields, and `location_restricted`: the pupil's address is
restricted (a refuge, a protected placement), so their school must not be shown (rule 11).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any, Self

import httpx

from .base import (
    DemoDeclaration,
    Item,
    KindDeclaration,
    Labels,
    PersonQuery,
    Source,
    SourceDeclaration,
    SourceHealth,
    SourceMisconfigured,
    SourcePerson,
    SourceResponseInvalid,
)
from .http import Budget, HttpSettings, HttpSource, gather_lists, person_searches

AGENCY = "education"
SOURCE = Source("EDUCATION")
DECLARATION = SourceDeclaration(
    source=SOURCE,
    agency=AGENCY,
    section="education",
    type_prefix="Education",
    position=50,
    kinds=(
        KindDeclaration(
            "education.enrolment",
            "EducationEnrolment",
            "enrolments",
            (("school", str), ("school_urn", str), ("start", date), ("end", date)),
            "The school a child attends (or attended): location data (rule 11).",
        ),
        KindDeclaration(
            "education.attendance",
            "EducationAttendance",
            "attendance",
            (
                ("academic_year", str),
                ("attendance_percent", int),
                ("persistent_absence", bool),
            ),
            "Attendance this academic year; persistent absence is below 90 %.",
        ),
        KindDeclaration(
            "education.exclusion",
            "EducationExclusion",
            "exclusions",
            # exclusion_type: SUSPENSION, PERMANENT; reason: the DfE reason category
            (("exclusion_type", str), ("start", date), ("days", int), ("reason", str)),
            "A suspension (fixed period) or permanent exclusion.",
        ),
        KindDeclaration(
            "education.sen",
            "EducationSen",
            "special_educational_needs",
            # level: SEN_SUPPORT, EHCP; primary_need: the DfE SEN type code (SEMH, ASD, ...)
            (("level", str), ("ehcp", bool), ("primary_need", str), ("start", date)),
            "SEN support or an education, health and care plan (EHCP).",
        ),
        KindDeclaration(
            "education.missing_education",
            "EducationMissingEducation",
            "missing_education",
            (("reported_on", date), ("resolved_on", date)),
            "A child-missing-education episode (open while resolved_on is null).",
        ),
    ),
    roles=("education_practitioner",),
    demo=DemoDeclaration(
        store="education",
        server="hub.demo.education_server:education_app",
        base_path="education/v1",
        ready_path="health",
        options_file="education_api.json",
        seeder="hub.demo.education_seed",
    ),
    section_description="The local authority education system: school, attendance, "
    "exclusions, special educational needs and children missing education.",
)
IDS_PER_REQUEST = 50
RECORD_KINDS: Mapping[str, str] = {
    "ENROLMENT": "education.enrolment",
    "ATTENDANCE": "education.attendance",
    "EXCLUSION": "education.exclusion",
    "SEN": "education.sen",
    "MISSING_EDUCATION": "education.missing_education",
}
_FIELDS: Mapping[str, tuple[tuple[str, Any], ...]] = {k.kind: k.fields for k in DECLARATION.kinds}
# A primary need that is a health condition is special-category health data (rule 9);
# learning needs (SpLD, MLD, SLCN) are not.
_HEALTH_NEEDS: Mapping[str, frozenset[str]] = {
    "SEMH": frozenset({"health", "mental_health"}),
    **dict.fromkeys(("ASD", "HI", "VI", "MSI", "PD", "SLD", "PMLD"), frozenset({"health"})),
}
_SEX = {"f": "female", "female": "female", "m": "male", "male": "male"}


def _date(value: Any) -> date | None:
    if value in (None, ""):
        return None
    return date.fromisoformat(str(value)[:10])


def _str(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _api_key(config: Mapping[str, Any]) -> str:
    key = config.get("api_key")
    path = config.get("api_key_file") or config.get("credentials_file")
    if not key and path:
        try:
            text = Path(str(path)).read_text("utf-8").strip()
        except OSError:
            raise SourceMisconfigured("education 'api_key_file' cannot be read") from None
        key = text
        if text.startswith("{"):
            try:
                key = json.loads(text).get("api_key")
            except (ValueError, AttributeError):
                raise SourceMisconfigured("education 'api_key_file' is not JSON") from None
    if not isinstance(key, str) or not key:
        raise SourceMisconfigured("missing adapter configuration key 'api_key'")
    return key


class EducationAdapter:
    """Talks the education REST/JSON API with an API key (httpx, the shared HTTP plumbing)."""

    source = SOURCE
    declaration = DECLARATION

    def __init__(
        self,
        settings: HttpSettings,
        api_key: str,
        event_hooks: Mapping[str, list[Any]] | None = None,
    ) -> None:
        try:
            transport = settings.transport()
            client = httpx.AsyncClient(
                base_url=settings.url,
                headers={"Accept": "application/json", "X-API-Key": api_key},
                event_hooks=event_hooks,
                transport=transport,
            )
        except (ValueError, TypeError):
            raise SourceMisconfigured("invalid education base URL") from None
        self._http = HttpSource("education", settings, client, transport)

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], *, event_hooks: Mapping[str, list[Any]] | None = None
    ) -> Self:
        """See the module docstring for the keys; `event_hooks` are httpx event hooks."""
        return cls(HttpSettings.from_config(config, "education"), _api_key(config), event_hooks)

    def _listing(self, path: str, key: str, ids: list[str], budget: Budget) -> Any:
        page = [("page_size", str(self._http.settings.page_size))]
        return gather_lists(
            [
                self._http.pages(
                    path, [*((key, i) for i in ids[n : n + IDS_PER_REQUEST]), *page], budget
                )
                for n in range(0, len(ids), IDS_PER_REQUEST)
            ]
        )

    async def search(self, query: PersonQuery) -> Sequence[SourcePerson]:
        searches = person_searches(query)
        if not searches:
            return []
        budget = self._http.budget()
        page = [("page_size", str(self._http.settings.page_size))]
        rows = await gather_lists(
            [self._http.pages("pupils", [*s, *page], budget) for s in searches]
        )
        return _persons(rows)

    async def fetch(self, person_ids: Sequence[str]) -> Sequence[SourcePerson]:
        """Pupils by id (`GET /pupils?id=a&id=b`), in batches; unknown ids left out."""
        ids = sorted(set(person_ids))
        if not ids:
            return []
        rows = await self._listing("pupils", "id", ids, self._http.budget())
        return [p for p in _persons(rows) if p.local_id in set(ids)]

    async def items(self, person_ids: Sequence[str]) -> Sequence[Item]:
        ids = sorted(set(person_ids))
        if not ids:
            return []
        rows = await self._listing("records", "pupil_id", ids, self._http.budget())
        wanted = set(ids)
        found: dict[str, Item] = {}
        try:
            for r in rows:
                item = _record(r)
                if item.person_id in wanted:
                    found.setdefault(item.local_id, item)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise SourceResponseInvalid("education record is malformed") from None
        return sorted(found.values(), key=lambda i: (i.person_id, i.kind, i.local_id))

    async def probe(self) -> SourceHealth:
        """`/health` (no key) says the API is up and how many pupils it holds; a one-row
        listing checks that our key is accepted."""
        budget = self._http.budget()
        status = await self._http.get_json("health", None, budget, auth=False)
        if not isinstance(status, dict):
            raise SourceResponseInvalid("education /health is not a JSON object")
        await self._http.get_json("pupils", [("id", "-"), ("page_size", "1")], budget)
        count = status.get("pupils")
        return SourceHealth(
            reachable=True,
            authenticated=True,
            record_count=count if isinstance(count, int) else None,
        )

    async def aclose(self) -> None:
        await self._http.aclose()


def _persons(rows: list[dict[str, Any]]) -> list[SourcePerson]:
    found: dict[str, SourcePerson] = {}
    try:
        for r in rows:
            pid = str(r["id"])
            found.setdefault(pid, _person(pid, r))
    except (KeyError, TypeError, ValueError):
        raise SourceResponseInvalid("education pupil record is malformed") from None
    return [found[k] for k in sorted(found)]


def _person(pid: str, r: Mapping[str, Any]) -> SourcePerson:
    restricted = r.get("location_restricted", False)
    if not isinstance(restricted, bool):
        raise ValueError("location_restricted")
    return SourcePerson(
        source=SOURCE,
        local_id=pid,
        given_name=_str(r.get("given_name")),
        family_name=_str(r.get("family_name")),
        date_of_birth=_date(r.get("date_of_birth")),
        sex=_SEX.get(str(r.get("sex") or "").lower()),
        nhs_number=_str(r.get("nhs_number")),
        postcode=_str(r.get("postcode")),
        address=_str(r.get("address")),
        labels=Labels(agency=AGENCY, location_protected=restricted),
    )


def _value(kind: type[Any], raw: Any) -> Any:
    if raw is None or raw == "":
        return None
    if kind is date:
        return date.fromisoformat(str(raw)[:10])
    if kind is bool or kind is int:
        if not isinstance(raw, kind) or (kind is int and isinstance(raw, bool)):
            raise TypeError(kind.__name__)
        return raw
    return str(raw)


def _record(r: Mapping[str, Any]) -> Item:
    kind = RECORD_KINDS[str(r["record_type"])]
    restricted = r.get("location_restricted", False)
    if not isinstance(restricted, bool):
        raise TypeError("location_restricted")
    data = {name: _value(t, r.get(name)) for name, t in _FIELDS[kind]}
    need = str(data.get("primary_need") or "").upper()
    return Item(
        kind=kind,
        local_id=str(r["id"]),
        person_id=str(r["pupil_id"]),
        labels=Labels(
            agency=AGENCY,
            special_categories=_HEALTH_NEEDS.get(need, frozenset()),
            location_protected=restricted,
        ),
        data=data,
    )


ADAPTER = EducationAdapter
