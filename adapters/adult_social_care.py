"""Adult social care case system (REST/JSON API with OAuth 2.0 client credentials): persons
and their involvements.

Config: {"url": API base URL, e.g. "http://127.0.0.1:8082/api/v1" (required), "client_id",
"client_secret", "token_url" (absolute, or relative to the base URL; default "oauth/token"),
or instead "credentials_file": a JSON file holding those three keys; "timeout_s": budget of one
call; "retries": extra attempts after a 5xx/429/connection failure (default 2); "page_size";
"max_connections" / "max_keepalive": the connection pool's bounds (default 20 / 10);
"token_leeway_s": fetch a new token this long before the old one expires (default 60)}.

API: GET persons?nhs_number=|family_name=|date_of_birth=|postcode= and GET
involvements?person_id=a&person_id=b, both `{"items": [...], "next": absolute URL | null}`.
One search per key, concurrently, unioned by id; involvements in batches of ids.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any, Self
from urllib.parse import urljoin

import authlib.deprecate  # type: ignore[import-untyped]  # noqa: F401  (see below)

with warnings.catch_warnings():
    # Authlib 1.9 warns on import that its httpx integration will be renamed; nothing to do.
    # Its deprecate module installs an "always" filter when first imported: import it first
    # (above), so the "ignore" here comes after and wins.
    warnings.simplefilter("ignore")
    from authlib.integrations.httpx_client import (  # type: ignore[import-untyped]
        AsyncOAuth2Client,
    )

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
from .http import HttpSettings, OAuthHttpSource, gather_lists, person_searches

AGENCY = "adult_social_care"

SOURCE = Source("ADULT_SOCIAL_CARE")
DECLARATION = SourceDeclaration(
    source=SOURCE,
    agency=AGENCY,
    section="adult_social_care",
    type_prefix="AdultSocialCare",
    position=30,
    kinds=(
        KindDeclaration(
            "adult_social_care.involvement",
            "AdultSocialCareInvolvement",
            "involvements",
            # involvement_type: MENTAL_HEALTH, SUBSTANCE_MISUSE, CARE_ACT_S42, CARE_NEEDS
            (
                ("involvement_type", str),
                ("status", str),
                ("start", date),
                ("end", date),
                ("summary", str),
            ),
        ),
    ),
    roles=("asc_practitioner",),
    demo=DemoDeclaration(
        store="asc",
        server="hub.demo.asc_server:asc_app",
        base_path="api/v1",
        ready_path="health",
        options_file="asc_client.json",
    ),
    section_description="Adult social care involvement of the adults in the household.",
)
IDS_PER_REQUEST = 50
DEFAULT_TOKEN_PATH = "oauth/token"
_CATEGORIES: Mapping[str, frozenset[str]] = {
    "MENTAL_HEALTH": frozenset({"health", "mental_health"}),
    "SUBSTANCE_MISUSE": frozenset({"health", "substance_misuse"}),
}
_DEFAULT_CATEGORIES = frozenset({"health"})
_SEX = {"f": "female", "female": "female", "m": "male", "male": "male", "other": "other"}


def _date(value: Any) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _str(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _credentials(config: Mapping[str, Any]) -> dict[str, str]:
    keys = ("client_id", "client_secret", "token_url")
    merged: dict[str, Any] = {}
    if config.get("credentials_file"):
        try:
            stored = json.loads(Path(str(config["credentials_file"])).read_text("utf-8"))
        except (OSError, ValueError):
            raise SourceMisconfigured(
                "adult social care 'credentials_file' cannot be read as JSON"
            ) from None
        if isinstance(stored, dict):
            merged.update({k: stored[k] for k in keys if k in stored})
    merged.update({k: config[k] for k in keys if config.get(k)})
    for key in ("client_id", "client_secret"):
        if not isinstance(merged.get(key), str) or not merged[key]:
            raise SourceMisconfigured(f"missing adapter configuration key {key!r}")
    token_url = merged.get("token_url") or DEFAULT_TOKEN_PATH
    if not isinstance(token_url, str):
        raise SourceMisconfigured("adult social care 'token_url' must be a string")
    return {**merged, "token_url": token_url}


class AdultSocialCareAdapter:
    """Talks the adult social care REST/JSON API with an OAuth 2.0 client (Authlib + httpx)."""

    source = SOURCE
    declaration = DECLARATION

    def __init__(
        self,
        settings: HttpSettings,
        client_id: str,
        client_secret: str,
        token_url: str = DEFAULT_TOKEN_PATH,
        token_leeway_s: int = 60,
        event_hooks: Mapping[str, list[Any]] | None = None,
    ) -> None:
        # The token URL is resolved here: httpx would append even "/api/v1/oauth/token" to
        # the base path.
        try:
            transport = settings.transport()
            client = AsyncOAuth2Client(
                client_id=client_id,
                client_secret=client_secret,
                token_endpoint=urljoin(settings.url, token_url),
                grant_type="client_credentials",
                leeway=token_leeway_s,
                base_url=settings.url,
                headers={"Accept": "application/json"},
                event_hooks=event_hooks,
                transport=transport,
            )
        except (ValueError, TypeError):
            raise SourceMisconfigured("invalid adult social care base URL") from None
        self._http = OAuthHttpSource("adult social care", settings, client, transport)

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], *, event_hooks: Mapping[str, list[Any]] | None = None
    ) -> Self:
        """See the module docstring for the keys; `event_hooks` are httpx event hooks."""
        settings = HttpSettings.from_config(config, "adult social care")
        creds = _credentials(config)
        try:
            leeway = int(config.get("token_leeway_s", 60))
        except (TypeError, ValueError):
            raise SourceMisconfigured(
                "adult social care 'token_leeway_s' must be a number"
            ) from None
        return cls(
            settings,
            creds["client_id"],
            creds["client_secret"],
            creds["token_url"],
            leeway,
            event_hooks,
        )

    @property
    def tokens_fetched(self) -> int:
        """How many access tokens this adapter has fetched (for tests and metrics)."""
        return self._http.tokens_fetched

    # --- paging -------------------------------------------------------------------------
    def _page_params(self) -> list[tuple[str, str]]:
        return [("page_size", str(self._http.settings.page_size))]

    # --- Adapter protocol ---------------------------------------------------------------
    async def search(self, query: PersonQuery) -> Sequence[SourcePerson]:
        searches = person_searches(query)
        if not searches:
            return []
        budget = self._http.budget()
        rows = await gather_lists(
            [self._http.pages("persons", [*s, *self._page_params()], budget) for s in searches]
        )
        found: dict[str, SourcePerson] = {}
        try:
            for r in rows:
                pid = str(r["id"])
                if pid not in found:
                    found[pid] = _person(pid, r)
        except (KeyError, TypeError, ValueError):
            raise SourceResponseInvalid("adult social care person record is malformed") from None
        return [found[k] for k in sorted(found)]

    async def fetch(self, person_ids: Sequence[str]) -> Sequence[SourcePerson]:
        """Persons by id (`GET /persons?id=a&id=b`), in batches."""
        ids = sorted(set(person_ids))
        if not ids:
            return []
        budget = self._http.budget()
        batches = [ids[i : i + IDS_PER_REQUEST] for i in range(0, len(ids), IDS_PER_REQUEST)]
        rows = await gather_lists(
            [
                self._http.pages(
                    "persons", [*(("id", pid) for pid in b), *self._page_params()], budget
                )
                for b in batches
            ]
        )
        wanted = set(ids)
        try:
            found = {str(r["id"]): _person(str(r["id"]), r) for r in rows}
        except (KeyError, TypeError, ValueError):
            raise SourceResponseInvalid("adult social care person record is malformed") from None
        return [found[k] for k in sorted(found) if k in wanted]

    async def items(self, person_ids: Sequence[str]) -> Sequence[Item]:
        ids = sorted(set(person_ids))
        if not ids:
            return []
        budget = self._http.budget()
        batches = [ids[i : i + IDS_PER_REQUEST] for i in range(0, len(ids), IDS_PER_REQUEST)]
        rows = await gather_lists(
            [
                self._http.pages(
                    "involvements",
                    [*(("person_id", pid) for pid in batch), *self._page_params()],
                    budget,
                )
                for batch in batches
            ]
        )
        wanted = set(ids)
        found: dict[str, Item] = {}
        try:
            for r in rows:
                item = _involvement(r)
                if item.person_id in wanted:
                    found.setdefault(item.local_id, item)
        except (KeyError, TypeError, ValueError):
            raise SourceResponseInvalid("adult social care involvement is malformed") from None
        return sorted(
            found.values(),
            key=lambda i: (i.person_id, -(i.data["start"] or date.min).toordinal(), i.local_id),
        )

    async def probe(self) -> SourceHealth:
        """`/health` (no credentials) says the API is up and how many persons it holds; a
        token fetch checks our client credentials."""
        budget = self._http.budget()
        status = await self._http.get_json("health", None, budget, auth=False)
        if not isinstance(status, dict):
            raise SourceResponseInvalid("adult social care /health is not a JSON object")
        await self._http.authenticate(budget)
        count = status.get("persons")
        return SourceHealth(
            reachable=True,
            authenticated=True,
            record_count=count if isinstance(count, int) else None,
        )

    async def aclose(self) -> None:
        await self._http.aclose()


def _person(pid: str, r: Mapping[str, Any]) -> SourcePerson:
    return SourcePerson(
        source=SOURCE,
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


def _involvement(r: Mapping[str, Any]) -> Item:
    kind = str(r["involvement_type"])
    return Item(
        kind="adult_social_care.involvement",
        local_id=str(r["id"]),
        person_id=str(r["person_id"]),
        labels=Labels(agency=AGENCY, special_categories=_CATEGORIES.get(kind, _DEFAULT_CATEGORIES)),
        data={
            "involvement_type": kind,
            "status": _str(r.get("status")),
            "start": _date(r.get("start")),
            "end": _date(r.get("end")),
            "summary": _str(r.get("summary")),
        },
    )


ADAPTER = AdultSocialCareAdapter
