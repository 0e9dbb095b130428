"""Adult social care case system (REST/JSON API): persons and their involvements.

Config: {"url": API base URL, e.g. "http://127.0.0.1:8082/api/v1", "timeout_s": optional,
"token": optional bearer token}.

API: GET persons?nhs_number=|family_name=|date_of_birth=|postcode= -> {"items": [person]};
GET persons/{id}/involvements -> {"items": [involvement]}. One request per search key,
concurrently; results are unioned by id.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, Self
from urllib.parse import quote

import httpx

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

AGENCY = "adult_social_care"
_CATEGORIES: Mapping[str, frozenset[str]] = {
    "MENTAL_HEALTH": frozenset({"health", "mental_health"}),
    "SUBSTANCE_MISUSE": frozenset({"health", "substance_misuse"}),
}
_DEFAULT_CATEGORIES = frozenset({"health"})
_SEX = {"f": "female", "female": "female", "m": "male", "male": "male", "other": "other"}


def _name_parts(value: str) -> list[str]:
    cleaned = re.sub(r"[^a-z\- ]", "", value.lower())
    return list(dict.fromkeys(p for p in re.split(r"[\- ]+", cleaned) if p))


def _date(value: Any) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _str(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


class AdultSocialCareAdapter:
    """Talks the adult social care REST/JSON API with httpx."""

    source = Source.ADULT_SOCIAL_CARE

    def __init__(self, base_url: str, timeout_s: float = 10.0, token: str | None = None) -> None:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            self._client = httpx.AsyncClient(
                base_url=base_url.rstrip("/") + "/", timeout=timeout_s, headers=headers
            )
        except (httpx.InvalidURL, TypeError, ValueError):
            raise SourceMisconfigured("invalid adult social care base URL") from None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        url = config_value(config, "url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise SourceMisconfigured("adult social care adapter 'url' must be an http(s) URL")
        return cls(url, float(config.get("timeout_s") or 10.0), config.get("token"))

    async def _get_items(
        self, path: str, params: Mapping[str, str] | None = None, missing_ok: bool = False
    ) -> list[dict[str, Any]]:
        try:
            resp = await self._client.get(path, params=params)
        except httpx.UnsupportedProtocol:
            raise SourceMisconfigured("adult social care URL has an unsupported scheme") from None
        except httpx.TimeoutException:
            raise SourceUnavailable("adult social care source timed out") from None
        except (httpx.TransportError, OSError):
            raise SourceUnavailable("adult social care source unreachable") from None
        except httpx.InvalidURL:
            raise SourceMisconfigured("invalid adult social care URL") from None
        if resp.status_code == 404 and missing_ok:
            return []
        if resp.status_code in (401, 403):
            raise SourceMisconfigured(
                f"adult social care source refused credentials ({resp.status_code})"
            )
        if resp.status_code >= 500:
            raise SourceUnavailable(f"adult social care source error ({resp.status_code})")
        if resp.status_code >= 400:
            raise SourceMisconfigured(
                f"adult social care source rejected the request ({resp.status_code})"
            )
        try:
            payload = resp.json()
        except ValueError:
            raise SourceResponseInvalid("adult social care source sent non-JSON") from None
        items = payload.get("items") if isinstance(payload, dict) else None
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise SourceResponseInvalid("adult social care response has no 'items' list")
        return items

    async def _gather(self, calls: list[Any]) -> list[Any]:
        results = await asyncio.gather(*calls, return_exceptions=True)
        for r in results:
            if isinstance(r, SourceError):
                raise r
            if isinstance(r, BaseException):
                raise SourceResponseInvalid(
                    f"adult social care response could not be read ({type(r).__name__})"
                ) from None
        return list(results)

    async def search(self, query: PersonQuery) -> Sequence[SourcePerson]:
        searches: list[dict[str, str]] = []
        if query.nhs_number:
            searches.append({"nhs_number": "".join(query.nhs_number.split())})
        if query.date_of_birth:
            searches.append({"date_of_birth": query.date_of_birth.isoformat()})
        if query.family_name:
            searches += [{"family_name": part} for part in _name_parts(query.family_name)]
        for pc in dict.fromkeys(p.strip().upper() for p in query.postcodes if p and p.strip()):
            searches.append({"postcode": pc})
        if not searches:
            return []
        results = await self._gather([self._get_items("persons", s) for s in searches])
        found: dict[str, SourcePerson] = {}
        try:
            for batch in results:
                for r in batch:
                    pid = str(r["id"])
                    if pid in found:
                        continue
                    found[pid] = SourcePerson(
                        source=Source.ADULT_SOCIAL_CARE,
                        local_id=pid,
                        given_name=_str(r.get("given_name")),
                        family_name=_str(r.get("family_name")),
                        date_of_birth=_date(r.get("date_of_birth")),
                        sex=_SEX.get(str(r.get("sex") or "").lower()) if r.get("sex") else None,
                        nhs_number=_str(r.get("nhs_number")),
                        postcode=_str(r.get("postcode")),
                        address=_str(r.get("address")),
                        labels=Labels(agency=AGENCY),
                    )
        except (KeyError, TypeError, ValueError):
            raise SourceResponseInvalid("adult social care person record is malformed") from None
        return [found[k] for k in sorted(found)]

    async def items(self, person_ids: Sequence[str]) -> Sequence[Item]:
        ids = sorted(set(person_ids))
        if not ids:
            return []
        results = await self._gather(
            [
                self._get_items(f"persons/{quote(pid, safe='')}/involvements", missing_ok=True)
                for pid in ids
            ]
        )
        out: list[Item] = []
        try:
            for pid, batch in zip(ids, results, strict=True):
                for r in batch:
                    kind = str(r["involvement_type"])
                    out.append(
                        Item(
                            kind="adult_social_care.involvement",
                            local_id=str(r["id"]),
                            person_id=pid,
                            labels=Labels(
                                agency=AGENCY,
                                special_categories=_CATEGORIES.get(kind, _DEFAULT_CATEGORIES),
                            ),
                            data={
                                "involvement_type": kind,
                                "status": _str(r.get("status")),
                                "start": _date(r.get("start")),
                                "end": _date(r.get("end")),
                                "summary": _str(r.get("summary")),
                            },
                        )
                    )
        except (KeyError, TypeError, ValueError):
            raise SourceResponseInvalid("adult social care involvement is malformed") from None
        return out

    async def aclose(self) -> None:
        await self._client.aclose()
