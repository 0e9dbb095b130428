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
from datetime import date, datetime
from typing import Any, Self

import httpx
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.patient import Patient
from pydantic import ValidationError

from .base import (
    Item,
    Labels,
    PersonQuery,
    Source,
    SourceError,
    SourceHealth,
    SourceMisconfigured,
    SourcePerson,
    SourceResponseInvalid,
    SourceUnavailable,
    name_parts,
    swapped_date,
)
from .http import MAX_PAGES, Budget, HttpSettings, HttpSource, gather_lists

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
AGENCY = "health"
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


def _as_date(value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _ref_id(reference: str | None) -> str | None:
    if not reference:
        return None
    return reference.rstrip("/").split("/")[-1]


def _uprn(address: Any) -> str | None:
    """The UPRN in a UK Core address key extension, if the address carries one."""
    for ext in (address.extension or ()) if address is not None else ():
        if ext.url != ADDRESS_KEY_EXTENSION:
            continue
        parts = {e.url: e for e in ext.extension or ()}
        kind, value = parts.get("type"), parts.get("value")
        code = kind.valueCoding.code if kind is not None and kind.valueCoding else None
        if code and code.lower() == "uprn" and value is not None and value.valueString:
            return str(value.valueString)
    return None


def _restricted(patient: Patient) -> bool:
    security = (patient.meta.security or []) if patient.meta else []
    return any(c.code in _RESTRICTED_CODES for c in security)


def _texts(concepts: Iterable[Any]) -> Iterable[str]:
    for cc in concepts:
        if cc.text:
            yield cc.text
        for coding in cc.coding or ():
            yield from filter(None, (coding.code, coding.display))


class HealthAdapter:
    """Talks FHIR R4 over HTTP; parses with fhir.resources R4B models."""

    source = Source.HEALTH

    def __init__(
        self,
        settings: HttpSettings,
        token: str | None = None,
        event_hooks: Mapping[str, list[Any]] | None = None,
    ) -> None:
        headers = {"Accept": "application/fhir+json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            client = httpx.AsyncClient(
                base_url=settings.url,
                headers=headers,
                event_hooks=event_hooks,
                limits=settings.limits(),
            )
        except (httpx.InvalidURL, TypeError, ValueError):
            raise SourceMisconfigured("invalid FHIR base URL for health source") from None
        self._http = HttpSource("health", settings, client, on_error=outcome_error)

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
    async def _bundles(self, params: Any, budget: Budget) -> list[Bundle]:
        """Every page of a Patient search, following `next` links (at most MAX_PAGES)."""
        pages: list[Bundle] = []
        url, query = "Patient", params
        for _ in range(MAX_PAGES):
            pages.append(self._bundle(await self._http.get_json(url, query, budget)))
            next_url = next((ln.url for ln in pages[-1].link or () if ln.relation == "next"), None)
            if not next_url:
                return pages
            url, query = self._http.same_origin(str(next_url)), None
        raise SourceResponseInvalid(f"health search ran past {MAX_PAGES} pages")

    @staticmethod
    def _bundle(payload: Any) -> Bundle:
        if not isinstance(payload, dict) or payload.get("resourceType") != "Bundle":
            raise SourceResponseInvalid("health source did not return a FHIR Bundle")
        try:
            return Bundle.model_validate(payload)
        except (ValidationError, ValueError, TypeError):
            raise SourceResponseInvalid("health source returned an invalid Bundle") from None

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
        patients: dict[str, Patient] = {}
        for page in pages:
            for entry in page.entry or ():
                res = entry.resource
                if isinstance(res, Patient) and res.id:
                    patients.setdefault(res.id, res)
        return [self._person(patients[k]) for k in sorted(patients)]

    def _person(self, p: Patient) -> SourcePerson:
        names = p.name or []
        name = next((n for n in names if n.use == "official"), names[0] if names else None)
        nhs = next((i.value for i in p.identifier or () if i.system == NHS_NUMBER_SYSTEM), None)
        addresses = p.address or []
        addr = next((a for a in addresses if a.use == "home"), addresses[0] if addresses else None)
        address_text = None
        if addr is not None:
            address_text = addr.text or ", ".join(
                [*(line for line in addr.line or [] if line), *filter(None, [addr.city])]
            )
        return SourcePerson(
            source=Source.HEALTH,
            local_id=str(p.id),
            given_name=(name.given or [None])[0] if name else None,
            family_name=name.family if name else None,
            date_of_birth=_as_date(p.birthDate),
            sex=p.gender,
            nhs_number=nhs,
            postcode=addr.postalCode if addr else None,
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
        patients = {
            str(e.resource.id): e.resource
            for page in pages
            for e in page.entry or ()
            if isinstance(e.resource, Patient) and e.resource.id in wanted
        }
        return [self._person(patients[k]) for k in sorted(patients)]

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
        resources = [e.resource for page in pages for e in page.entry or () if e.resource]
        protected = {r.id for r in resources if isinstance(r, Patient) and _restricted(r)}
        wanted = set(ids)
        found: dict[tuple[str, str], Item] = {}
        for res in resources:
            if not isinstance(res, (Encounter, CarePlan)) or not res.id:
                continue
            pid = _ref_id(res.subject.reference if res.subject else None)
            if pid not in wanted:
                continue
            item = self._item(res, pid, pid in protected)
            found.setdefault((item.kind, item.local_id), item)
        return sorted(found.values(), key=_item_order)

    def _item(self, res: Encounter | CarePlan, pid: str, protected: bool) -> Item:
        if isinstance(res, Encounter):
            texts = [*_texts(res.reasonCode or ()), *_texts(res.type or ())]
            texts += [*_texts([res.serviceType] if res.serviceType else [])]
            kind = "health.encounter"
            data: dict[str, Any] = {
                "date": _as_date(res.period.start if res.period else None),
                "encounter_class": self._encounter_class(res),
                "reason": self._reason(res),
            }
        else:
            texts = [*_texts(res.category or ())]
            kind = "health.plan"
            data = {
                "category": self._plan_category(res),
                "status": res.status,
                "start": _as_date(res.period.start if res.period else None),
            }
        categories = {"health"}
        if any(_SEXUAL_HEALTH.search(t) for t in texts):
            categories.add("sexual_health")
        labels = Labels(
            agency=AGENCY,
            special_categories=frozenset(categories),
            location_protected=protected,
        )
        return Item(kind=kind, local_id=str(res.id), person_id=pid, labels=labels, data=data)

    @staticmethod
    def _encounter_class(e: Encounter) -> str | None:
        cls = e.class_fhir
        if cls is None:
            return None
        if cls.code in _ENCOUNTER_CLASSES:
            return _ENCOUNTER_CLASSES[cls.code]
        return cls.display or cls.code

    @staticmethod
    def _reason(e: Encounter) -> str | None:
        return next(iter(_texts(e.reasonCode or ())), None)

    @staticmethod
    def _plan_category(c: CarePlan) -> str | None:
        fallback = None
        for cc in c.category or ():
            for coding in cc.coding or ():
                if coding.code in _PLAN_CATEGORIES:
                    return str(coding.code)
            fallback = fallback or cc.text
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
            self._bundle(payload)
            return SourceHealth(reachable=True, authenticated=True, record_count=None)
        try:
            total = self._bundle(response.json()).total
        except ValueError:
            raise SourceResponseInvalid("health source sent a body that is not JSON") from None
        return SourceHealth(reachable=True, authenticated=True, record_count=total)

    async def aclose(self) -> None:
        await self._http.aclose()


def _item_order(item: Item) -> tuple[int, int, str]:
    when = item.data.get("date") or item.data.get("start") or date.min
    return (item.kind != "health.encounter", -when.toordinal(), item.local_id)
