"""Health record (FHIR R4 REST server): Patient, Encounter (A&E attendances), CarePlan.

Config: {"url": FHIR base URL, e.g. "http://127.0.0.1:8081/fhir" (required), "token":
bearer token (optional), "timeout_s": budget of one call, "retries": extra attempts after a
5xx/429/connection failure (default 2), "page_size": `_count` per search page (optional),
"max_connections" / "max_keepalive": the connection pool's bounds (default 20 / 10)}.

FHIR search combines parameters with AND; a PersonQuery wants every patient matching ANY key,
so the adapter makes one search per key, concurrently, and unions the results by id. Content
comes in one search per batch of patients: `Patient?_id=...&_revinclude=Encounter:patient
&_revinclude=CarePlan:patient`, which also carries each patient's security label to the
patient's encounters and plans.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
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
    SourceError,
    SourceHealth,
    SourceMisconfigured,
    SourcePerson,
    SourceResponseInvalid,
    SourceUnavailable,
    name_parts,
    swapped_date,
)
from .fhir import (
    Json,
    Page,
    day,
    element,
    malformed,
    objects,
    read_bundle,
    required,
    string,
    strings,
)
from .http import MAX_PAGES, Budget, HttpSettings, HttpSource, gather_lists

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
AGENCY = "health"

SOURCE = Source("HEALTH")
DECLARATION = SourceDeclaration(
    source=SOURCE,
    agency=AGENCY,
    section="health",
    type_prefix="Health",
    position=20,
    kinds=(
        KindDeclaration(
            "health.encounter",
            "HealthEncounter",
            "encounters",
            # encounter_class: "A&E" for emergency attendances
            (("date", date), ("encounter_class", str), ("reason", str)),
        ),
        KindDeclaration(
            "health.plan",
            "HealthPlan",
            "plans",
            (("category", str), ("status", str), ("start", date)),
            "A care plan: CPP child protection, LAC looked after, UNBORN.",
        ),
    ),
    roles=("health_practitioner",),
    demo=DemoDeclaration(
        store="health",
        server="hub.demo.fhir_server:fhir_app",
        base_path="fhir",
        ready_path="metadata",
    ),
    plan_kind="health.plan",
)
IDS_PER_REQUEST = 50
ADDRESS_KEY_EXTENSION = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-AddressKey"
# v3-Confidentiality codes that mark a sensitive patient whose location must not be shown
_RESTRICTED_CODES = frozenset({"R", "V"})
_PLAN_CATEGORIES = frozenset({"CPP", "LAC", "UNBORN"})
_ENCOUNTER_CLASSES = {
    "EMER": "A&E",
    "AMB": "Outpatient",
    "IMP": "Inpatient",
    "HH": "Home visit",
    "VR": "Virtual",
}
_SEXUAL_HEALTH = re.compile(r"sexual|genito-?urinary|\bGUM\b|contracept", re.IGNORECASE)
# OperationOutcome issue codes that mean "try again later"; any other means our request or
# configuration is wrong for this server.
_TRANSIENT_ISSUES = frozenset(
    {"transient", "lock", "no-store", "exception", "timeout", "incomplete", "throttled"}
)
_KNOWN_ISSUES = _TRANSIENT_ISSUES | {
    "invalid", "structure", "required", "value", "invariant", "security", "login", "unknown",
    "expired", "forbidden", "suppressed", "processing", "not-supported", "duplicate",
    "multiple-matches", "not-found", "deleted", "too-long", "code-invalid", "extension",
    "too-costly", "business-rule", "conflict", "informational",
}  # fmt: skip


def outcome_error(response: httpx.Response) -> SourceError | None:
    """A failed response with an OperationOutcome body, classified by its first issue code.
    Only the code (a closed vocabulary) goes in the message: diagnostics may echo a search."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("resourceType") != "OperationOutcome":
        return None
    issues = body.get("issue")
    if not isinstance(issues, list):
        issues = []
    code = next((i.get("code") for i in issues if isinstance(i, dict)), None)
    code = code if code in _KNOWN_ISSUES else "unknown"
    status = response.status_code
    if status in (401, 403):
        return SourceMisconfigured(f"health source refused our credentials ({status}, {code})")
    if status >= 500 or status == 429 or code in _TRANSIENT_ISSUES:
        return SourceUnavailable(f"health source failed ({status}, {code})")
    return SourceMisconfigured(f"health source rejected the request ({status}, {code})")


def _ref_id(reference: str | None) -> str | None:
    if not reference:
        return None
    return reference.rstrip("/").split("/")[-1]


def _uprn(address: Json | None) -> str | None:
    """The UPRN in a UK Core address key extension, if the address carries one."""
    for ext in objects(address, "extension"):
        if string(ext, "url") != ADDRESS_KEY_EXTENSION:
            continue
        parts = {string(e, "url"): e for e in objects(ext, "extension")}
        code = string(element(parts.get("type") or {}, "valueCoding"), "code")
        value = string(parts.get("value"), "valueString")
        if code and code.lower() == "uprn" and value:
            return value
    return None


def _restricted(patient: Json) -> bool:
    security = objects(element(patient, "meta"), "security")
    return any(string(c, "code") in _RESTRICTED_CODES for c in security)


def _texts(concepts: Iterable[Json]) -> Iterable[str]:
    """The texts, codes and displays of CodeableConcepts."""
    for cc in concepts:
        if text := string(cc, "text"):
            yield text
        for coding in objects(cc, "coding"):
            yield from filter(None, (string(coding, "code"), string(coding, "display")))


class HealthAdapter:
    """Talks FHIR R4 over HTTP; reads the elements it uses from the JSON (adapters.fhir)."""

    source = SOURCE
    declaration = DECLARATION

    def __init__(
        self,
        settings: HttpSettings,
        token: str | None = None,
        event_hooks: Mapping[str, list[Any]] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`transport` replaces httpx's network transport (tests: an httpx.MockTransport)."""
        headers = {"Accept": "application/fhir+json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            transport = transport or settings.transport()
            client = httpx.AsyncClient(
                base_url=settings.url,
                headers=headers,
                event_hooks=event_hooks,
                transport=transport,
            )
        except (httpx.InvalidURL, TypeError, ValueError):
            raise SourceMisconfigured("invalid FHIR base URL for health source") from None
        self._http = HttpSource("health", settings, client, transport, on_error=outcome_error)

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], *, event_hooks: Mapping[str, list[Any]] | None = None
    ) -> Self:
        """See the module docstring for the keys; `event_hooks` are httpx event hooks."""
        token = config.get("token")
        if token is not None and not isinstance(token, str):
            raise SourceMisconfigured("health adapter 'token' must be a string")
        return cls(HttpSettings.from_config(config, "health"), token, event_hooks)

    # --- searching ----------------------------------------------------------------------
    async def _bundles(self, params: Any, budget: Budget) -> list[Page]:
        """Every page of a Patient search, following `next` links (at most MAX_PAGES)."""
        pages: list[Page] = []
        url, query = "Patient", params
        for _ in range(MAX_PAGES):
            pages.append(read_bundle(await self._http.get_json(url, query, budget)))
            if not pages[-1].next_url:
                return pages
            url, query = self._http.same_origin(pages[-1].next_url), None
        raise SourceResponseInvalid(f"health search ran past {MAX_PAGES} pages")

    def _page_params(self) -> dict[str, str]:
        return {"_count": str(self._http.settings.page_size)}

    async def search(self, query: PersonQuery) -> Sequence[SourcePerson]:
        searches: list[dict[str, str]] = []
        if query.nhs_number:
            nhs = "".join(query.nhs_number.split())
            searches.append({"identifier": f"{NHS_NUMBER_SYSTEM}|{nhs}"})
        if query.date_of_birth:
            # A date of birth alone finds a hundred people in a large source: with a family
            # name, ask for those whose family name (any part) has one of its initials.
            born = {"birthdate": query.date_of_birth.isoformat()}
            initials = sorted({p[0] for p in name_parts(query.family_name)})
            searches += [{**born, "family": i} for i in initials] or [born]
        swapped = swapped_date(query.date_of_birth) if query.date_of_birth else None
        if query.family_name and (swapped or not query.date_of_birth):
            # with a date of birth, a family name only narrows its day/month swap
            extra = {"birthdate": swapped.isoformat()} if swapped else {}
            searches += [{"family": part, **extra} for part in name_parts(query.family_name)]
        for pc in dict.fromkeys(p.strip().upper() for p in query.postcodes if p and p.strip()):
            searches.append({"address-postalcode": pc})
        if not searches:
            return []
        budget = self._http.budget()
        pages = await gather_lists(
            [self._bundles({**s, **self._page_params()}, budget) for s in searches]
        )
        return [self._person(p) for p in _patients(pages).values()]

    def _person(self, p: Json) -> SourcePerson:
        names = objects(p, "name")
        name = next((n for n in names if string(n, "use") == "official"), None)
        name = name or (names[0] if names else None)
        nhs = next(
            (
                string(i, "value")
                for i in objects(p, "identifier")
                if string(i, "system") == NHS_NUMBER_SYSTEM
            ),
            None,
        )
        addresses = objects(p, "address")
        addr = next((a for a in addresses if string(a, "use") == "home"), None)
        addr = addr or (addresses[0] if addresses else None)
        address_text = None
        if addr is not None:
            address_text = string(addr, "text") or ", ".join(
                [
                    *(line for line in strings(addr, "line") if line),
                    *filter(None, [string(addr, "city")]),
                ]
            )
        return SourcePerson(
            source=SOURCE,
            local_id=str(p["id"]),
            given_name=next(iter(strings(name, "given")), None),
            family_name=string(name, "family"),
            date_of_birth=day(p, "birthDate"),
            sex=string(p, "gender"),
            nhs_number=nhs,
            postcode=string(addr, "postalCode"),
            address=address_text or None,
            labels=Labels(agency=AGENCY, location_protected=_restricted(p)),
            uprn=_uprn(addr),
        )

    async def fetch(self, person_ids: Sequence[str]) -> Sequence[SourcePerson]:
        """Patients by id (`_id=a,b,...`), in batches."""
        ids = sorted(set(person_ids))
        if not ids:
            return []
        budget = self._http.budget()
        batches = [ids[i : i + IDS_PER_REQUEST] for i in range(0, len(ids), IDS_PER_REQUEST)]
        pages = await gather_lists(
            [
                self._bundles([("_id", ",".join(b)), ("_count", str(len(b)))], budget)
                for b in batches
            ]
        )
        wanted = set(ids)
        return [self._person(p) for pid, p in _patients(pages).items() if pid in wanted]

    # --- content ------------------------------------------------------------------------
    async def items(self, person_ids: Sequence[str]) -> Sequence[Item]:
        ids = sorted(set(person_ids))
        if not ids:
            return []
        budget = self._http.budget()
        batches = [ids[i : i + IDS_PER_REQUEST] for i in range(0, len(ids), IDS_PER_REQUEST)]
        pages = await gather_lists(
            [
                self._bundles(
                    [
                        ("_id", ",".join(batch)),
                        ("_revinclude", "Encounter:patient"),
                        ("_revinclude", "CarePlan:patient"),
                        ("_count", str(len(batch))),
                    ],
                    budget,
                )
                for batch in batches
            ]
        )
        wanted = set(ids)
        patients = _patients(pages)
        # Only the patients asked about are read (for their security label); the rest of the
        # bundle is looked at no further than its envelope.
        protected = {pid for pid in wanted if pid in patients and _restricted(patients[pid])}
        found: dict[tuple[str, str], Item] = {}
        for res in (r for page in pages for r in page.resources):
            if res["resourceType"] not in _ITEM_TYPES:
                continue
            if not res.get("id"):
                raise malformed(f"{res['resourceType']}.id")
            pid = _ref_id(string(element(res, "subject"), "reference"))
            if pid not in wanted:
                continue
            item = self._item(res, pid, pid in protected)
            found.setdefault((item.kind, item.local_id), item)
        return sorted(found.values(), key=_item_order)

    def _item(self, res: Json, pid: str, protected: bool) -> Item:
        string(res, "status", needed=True)  # required in both; a plan's status is shown
        if res["resourceType"] == "Encounter":
            required(res, "class")
            texts = [*_texts(objects(res, "reasonCode")), *_texts(objects(res, "type"))]
            texts += [*_texts(filter(None, [element(res, "serviceType")]))]
            kind = "health.encounter"
            data: dict[str, Any] = {
                "date": day(element(res, "period"), "start", with_time=True),
                "encounter_class": self._encounter_class(res),
                "reason": self._reason(res),
            }
        else:
            string(res, "intent", needed=True)
            required(res, "subject")
            texts = [*_texts(objects(res, "category"))]
            kind = "health.plan"
            data = {
                "category": self._plan_category(res),
                "status": string(res, "status"),
                "start": day(element(res, "period"), "start", with_time=True),
            }
        categories = {"health"}
        if any(_SEXUAL_HEALTH.search(t) for t in texts):
            categories.add("sexual_health")
        labels = Labels(
            agency=AGENCY,
            special_categories=frozenset(categories),
            location_protected=protected,
        )
        return Item(kind=kind, local_id=str(res["id"]), person_id=pid, labels=labels, data=data)

    @staticmethod
    def _encounter_class(e: Json) -> str | None:
        cls = required(e, "class")
        code = string(cls, "code")
        if code in _ENCOUNTER_CLASSES:
            return _ENCOUNTER_CLASSES[code]
        return string(cls, "display") or code

    @staticmethod
    def _reason(e: Json) -> str | None:
        return next(iter(_texts(objects(e, "reasonCode"))), None)

    @staticmethod
    def _plan_category(c: Json) -> str | None:
        fallback = None
        for cc in objects(c, "category"):
            for coding in objects(cc, "coding"):
                if (code := string(coding, "code")) in _PLAN_CATEGORIES:
                    return code
            fallback = fallback or string(cc, "text")
        return fallback

    # --- health -------------------------------------------------------------------------
    async def probe(self) -> SourceHealth:
        """`/metadata` (no credentials) says the server is there; `Patient?_summary=count`
        checks our credentials and reads only the total. A server without `_summary`
        support is asked for a patient id that cannot exist instead (no count then)."""
        budget = self._http.budget()
        meta = await self._http.get_json("metadata", None, budget, auth=False)
        if not isinstance(meta, dict) or meta.get("resourceType") != "CapabilityStatement":
            raise SourceResponseInvalid("health source /metadata is not a CapabilityStatement")
        response = await self._http.get(
            "Patient", {"_summary": "count"}, budget, accept=frozenset({400})
        )
        if response.status_code == 400:
            payload = await self._http.get_json("Patient", {"_id": "mash-hub-probe"}, budget)
            read_bundle(payload)
            return SourceHealth(reachable=True, authenticated=True, record_count=None)
        try:
            total = read_bundle(response.json()).total
        except ValueError:
            raise SourceResponseInvalid("health source sent a body that is not JSON") from None
        return SourceHealth(reachable=True, authenticated=True, record_count=total)

    async def aclose(self) -> None:
        await self._http.aclose()


_ITEM_TYPES = frozenset({"Encounter", "CarePlan"})


def _patients(pages: Iterable[Page]) -> dict[str, Json]:
    """The Patient resources of `pages` by id (first seen wins), in id order. A search
    result names every resource it holds: a patient without an id is a broken answer."""
    found: dict[str, Json] = {}
    for page in pages:
        for res in page.resources:
            if res["resourceType"] != "Patient":
                continue
            if not res.get("id"):
                raise malformed("Patient.id")
            found.setdefault(res["id"], res)
    return {k: found[k] for k in sorted(found)}


def _item_order(item: Item) -> tuple[int, int, str]:
    when = item.data.get("date") or item.data.get("start") or date.min
    return (item.kind != "health.encounter", -when.toordinal(), item.local_id)


ADAPTER = HealthAdapter
