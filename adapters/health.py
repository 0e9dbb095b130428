"""Health record (FHIR R4 REST server): Patient, Encounter (A&E attendances), CarePlan.

Config: {"url": FHIR base URL, e.g. "http://127.0.0.1:8081/fhir", "timeout_s": optional,
"token": optional bearer token}.

FHIR search combines parameters with AND; a PersonQuery wants every patient matching ANY key,
so the adapter makes one search per key, concurrently, and unions the results by id.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
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
    SourceMisconfigured,
    SourcePerson,
    SourceResponseInvalid,
    SourceUnavailable,
    config_value,
)

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
AGENCY = "health"
_HEALTH = frozenset({"health"})
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
_MAX_PAGES = 20
_IDS_PER_REQUEST = 40


def _name_parts(value: str) -> list[str]:
    cleaned = re.sub(r"[^a-z\- ]", "", value.lower())
    return list(dict.fromkeys(p for p in re.split(r"[\- ]+", cleaned) if p))


def _as_date(value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value)
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def _ref_id(reference: str | None) -> str | None:
    if not reference:
        return None
    return reference.rstrip("/").split("/")[-1]


class HealthAdapter:
    """Talks FHIR R4 over HTTP; parses with fhir.resources R4B models."""

    source = Source.HEALTH

    def __init__(self, base_url: str, timeout_s: float = 10.0, token: str | None = None) -> None:
        headers = {"Accept": "application/fhir+json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            self._client = httpx.AsyncClient(
                base_url=base_url.rstrip("/") + "/", timeout=timeout_s, headers=headers
            )
        except (httpx.InvalidURL, TypeError, ValueError):
            raise SourceMisconfigured("invalid FHIR base URL for health source") from None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        url = config_value(config, "url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise SourceMisconfigured("health adapter 'url' must be an http(s) FHIR base URL")
        return cls(url, float(config.get("timeout_s") or 10.0), config.get("token"))

    # --- HTTP ---------------------------------------------------------------------------
    async def _get_json(self, url: str, params: Mapping[str, str] | None = None) -> Any:
        try:
            resp = await self._client.get(url, params=params)
        except httpx.UnsupportedProtocol:
            raise SourceMisconfigured("health source URL has an unsupported scheme") from None
        except httpx.TimeoutException:
            raise SourceUnavailable("health source timed out") from None
        except (httpx.TransportError, OSError):
            raise SourceUnavailable("health source unreachable") from None
        except httpx.InvalidURL:
            raise SourceMisconfigured("invalid health source URL") from None
        if resp.status_code in (401, 403):
            raise SourceMisconfigured(f"health source refused credentials ({resp.status_code})")
        if resp.status_code >= 500:
            raise SourceUnavailable(f"health source error ({resp.status_code})")
        if resp.status_code >= 400:
            raise SourceMisconfigured(f"health source rejected the request ({resp.status_code})")
        try:
            return resp.json()
        except ValueError:
            raise SourceResponseInvalid("health source sent a non-JSON response") from None

    async def _search(self, resource: str, params: Mapping[str, str]) -> list[Any]:
        """All resources of type `resource` from a searchset, following `next` links."""
        found: list[Any] = []
        url: str = resource
        query: Mapping[str, str] | None = params
        for _ in range(_MAX_PAGES):
            payload = await self._get_json(url, query)
            if not isinstance(payload, dict) or payload.get("resourceType") != "Bundle":
                raise SourceResponseInvalid("health source did not return a FHIR Bundle")
            try:
                bundle = Bundle.model_validate(payload)
            except (ValidationError, ValueError, TypeError):
                raise SourceResponseInvalid("health source returned an invalid Bundle") from None
            for entry in bundle.entry or ():
                res = entry.resource
                if res is not None and res.get_resource_type() == resource:
                    found.append(res)
            next_url = next(
                (link.url for link in bundle.link or () if link.relation == "next"), None
            )
            if not next_url:
                break
            url, query = str(next_url), None
        return found

    async def _gather(self, calls: list[Any]) -> list[list[Any]]:
        results = await asyncio.gather(*calls, return_exceptions=True)
        for r in results:
            if isinstance(r, SourceError):
                raise r
            if isinstance(r, BaseException):
                raise SourceResponseInvalid(
                    f"health source response could not be read ({type(r).__name__})"
                ) from None
        return list(results)  # type: ignore[arg-type]

    # --- Adapter protocol ---------------------------------------------------------------
    async def search(self, query: PersonQuery) -> Sequence[SourcePerson]:
        searches: list[dict[str, str]] = []
        if query.nhs_number:
            nhs = "".join(query.nhs_number.split())
            searches.append({"identifier": f"{NHS_NUMBER_SYSTEM}|{nhs}"})
        if query.date_of_birth:
            searches.append({"birthdate": query.date_of_birth.isoformat()})
        if query.family_name:
            searches += [{"family": part} for part in _name_parts(query.family_name)]
        for pc in dict.fromkeys(p.strip().upper() for p in query.postcodes if p and p.strip()):
            searches.append({"address-postalcode": pc})
        if not searches:
            return []
        results = await self._gather([self._search("Patient", s) for s in searches])
        patients: dict[str, Patient] = {}
        for batch in results:
            for p in batch:
                if p.id and p.id not in patients:
                    patients[p.id] = p
        return [self._person(p) for p in sorted(patients.values(), key=lambda p: p.id or "")]

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
        security = (p.meta.security or []) if p.meta else []
        restricted = any(c.code in _RESTRICTED_CODES for c in security)
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
            labels=Labels(agency=AGENCY, location_protected=restricted),
        )

    async def items(self, person_ids: Sequence[str]) -> Sequence[Item]:
        ids = sorted(set(person_ids))
        if not ids:
            return []
        chunks = [ids[i : i + _IDS_PER_REQUEST] for i in range(0, len(ids), _IDS_PER_REQUEST)]
        calls = [self._search("Encounter", {"patient": ",".join(c)}) for c in chunks]
        calls += [self._search("CarePlan", {"patient": ",".join(c)}) for c in chunks]
        results = await self._gather(calls)
        wanted = set(ids)
        labels = Labels(agency=AGENCY, special_categories=_HEALTH)
        encounters: dict[str, Item] = {}
        plans: dict[str, Item] = {}
        for batch in results:
            for res in batch:
                pid = _ref_id(res.subject.reference if res.subject else None)
                if pid not in wanted or not res.id:
                    continue
                if isinstance(res, Encounter):
                    encounters[res.id] = Item(
                        kind="health.encounter",
                        local_id=res.id,
                        person_id=pid,
                        labels=labels,
                        data={
                            "date": _as_date(res.period.start if res.period else None),
                            "encounter_class": self._encounter_class(res),
                            "reason": self._reason(res),
                        },
                    )
                elif isinstance(res, CarePlan):
                    plans[res.id] = Item(
                        kind="health.plan",
                        local_id=res.id,
                        person_id=pid,
                        labels=labels,
                        data={
                            "category": self._plan_category(res),
                            "status": res.status,
                            "start": _as_date(res.period.start if res.period else None),
                        },
                    )
        enc = sorted(
            encounters.values(),
            key=lambda i: (i.data["date"] or date.min, i.local_id),
            reverse=True,
        )
        pl = sorted(
            plans.values(), key=lambda i: (i.data["start"] or date.min, i.local_id), reverse=True
        )
        return [*enc, *pl]

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
        for cc in e.reasonCode or ():
            if cc.text:
                return cc.text
            for coding in cc.coding or ():
                if coding.display:
                    return coding.display
        return None

    @staticmethod
    def _plan_category(c: CarePlan) -> str | None:
        fallback = None
        for cc in c.category or ():
            for coding in cc.coding or ():
                if coding.code in _PLAN_CATEGORIES:
                    return coding.code
            fallback = fallback or cc.text
        return fallback

    async def aclose(self) -> None:
        await self._client.aclose()
