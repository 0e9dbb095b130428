"""The Adapter protocol: the one file an adapter author must read.

An adapter speaks one agency system's own protocol (FHIR R4 over HTTP, SQL, REST/JSON) and
turns what it finds into the neutral values below. It knows nothing of GraphQL, policy,
identity or audit: the hub decides who the person is and what anyone may see.

Every value an adapter returns carries `Labels` (originating agency, handling code, special
categories, ...) because policies decide on labels, never on where the code came from.

Errors: an adapter raises `SourceError` (or a subclass) when the source cannot answer; the
subclass says what the caller should do (retry, fix configuration, report). The record
service turns it into the source's status (`UNAVAILABLE`, `TIMED_OUT`) as data; it is never
shown to the client as an exception. Deadlines are enforced by the caller, by cancellation, so
an adapter must be cancellable (plain `await`s are); its own `timeout_s` budget per call only
lets it give up cleanly first (and decide whether a retry still fits).

Shared plumbing for adapter authors: `adapters.sql` (SQL sources) and `adapters.http` (HTTP
sources: budget, retries, error mapping, OAuth client credentials).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol, Self, runtime_checkable


class Source(enum.Enum):
    """The agency systems the hub can ask. Values are the GraphQL enum names."""

    POLICE = "POLICE"
    HEALTH = "HEALTH"
    ADULT_SOCIAL_CARE = "ADULT_SOCIAL_CARE"
    EARLY_HELP = "EARLY_HELP"


@dataclass(frozen=True, slots=True)
class Labels:
    """What policies need to know about one value.

    Attributes:
        agency: originating agency, e.g. "police", "health", "adult_social_care", "early_help".
        handling_code: police intelligence handling code, "P" or "C"; None elsewhere.
        special_categories: e.g. {"health", "mental_health", "criminal_offence"}.
        investigation_sensitive: police items not to be shown to non-police roles.
        location_protected: the subject's location (address, phone, school) must not be shown.
    """

    agency: str
    handling_code: str | None = None
    special_categories: frozenset[str] = frozenset()
    investigation_sensitive: bool = False
    location_protected: bool = False


@dataclass(frozen=True, slots=True)
class PersonQuery:
    """Demographics to look a person up by. Any field may be None; an adapter returns every
    person matching ANY given key (NHS number, date of birth, family name, postcode): the hub's
    identity module decides which candidates are the same person, so adapters over-return.

    `family_name` is matched case-insensitively, ignoring punctuation; a hyphenated name in
    the source matches either part.
    """

    nhs_number: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    date_of_birth: date | None = None
    postcodes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SourcePerson:
    """One person record as one source holds it."""

    source: Source
    local_id: str
    given_name: str | None
    family_name: str | None
    date_of_birth: date | None
    sex: str | None = None
    nhs_number: str | None = None
    postcode: str | None = None
    address: str | None = None
    labels: Labels = field(default_factory=lambda: Labels(agency="unknown"))
    uprn: str | None = None  # the property's Unique Property Reference Number, where recorded


@dataclass(frozen=True, slots=True)
class Item:
    """One piece of agency content about one person (an incident, an encounter, a plan...).

    Attributes:
        kind: one of KINDS below, e.g. "police.incident".
        local_id: the source's own id for the item.
        person_id: the SourcePerson.local_id it is about.
        labels: what policies decide on.
        data: the item's fields, named as in KINDS; values are str, int, date, bool or None.
    """

    kind: str
    local_id: str
    person_id: str
    labels: Labels
    data: Mapping[str, Any]


# The item kinds and their fields; the GraphQL types in `schema/` follow these names.
KINDS: Mapping[str, tuple[str, ...]] = {
    # role: VICTIM, SUSPECT, PRESENT, WITNESS; dash_risk: STANDARD, MEDIUM, HIGH or None
    "police.incident": ("occurred_on", "category", "dash_risk", "role", "summary"),
    # 3x5x2: source_grade A/B/C, intelligence_grade 1-5, handling_code P/C
    "police.intelligence": (
        "recorded_on",
        "source_grade",
        "intelligence_grade",
        "handling_code",
        "summary",
        "text",
    ),
    # encounter_class: "A&E" for emergency attendances
    "health.encounter": ("date", "encounter_class", "reason"),
    # category: CPP (child protection plan), LAC (looked after), UNBORN
    "health.plan": ("category", "status", "start"),
    # involvement_type: MENTAL_HEALTH, SUBSTANCE_MISUSE, CARE_ACT_S42, CARE_NEEDS
    "adult_social_care.involvement": ("involvement_type", "status", "start", "end", "summary"),
    # risk: LOW, MEDIUM, HIGH; returned_on None while the child is still missing
    "police.missing_episode": ("reported_on", "returned_on", "risk"),
    # marker: e.g. VIOLENT, WEAPONS, DRUGS, MENTAL_HEALTH, SELF_HARM, ESCAPE_RISK
    "police.warning_marker": ("marker", "recorded_on"),
    "early_help.episode": ("start", "end", "status", "lead_practitioner", "summary"),
    # status: GIVEN, REFUSED, NOT_SOUGHT, WITHDRAWN
    "early_help.consent": ("status", "given_by", "recorded_on", "scope"),
}


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """What `probe()` found out about a source, without reading anyone's personal data.

    Attributes:
        reachable: the source answered.
        authenticated: it accepted our credentials (True where it needs none).
        record_count: how many person records it holds (may be an estimate), if it says.
    """

    reachable: bool
    authenticated: bool
    record_count: int | None = None


class SourceError(Exception):
    """The source could not answer. `action` says what the caller should do.

    Message text must not contain personal data: it may reach logs.
    """

    action = "report_unavailable"


class SourceUnavailable(SourceError):
    """Connection refused, 5xx, dropped connection: report UNAVAILABLE, maybe retry later."""

    action = "retry"


class SourceTimedOut(SourceUnavailable):
    """No answer within the time allowed: the hub reports TIMED_OUT, never "not known"."""


class SourceMisconfigured(SourceError):
    """Bad URL, credentials rejected (401/403), schema mismatch: fix configuration."""

    action = "fix_configuration"


class SourceResponseInvalid(SourceError):
    """The source answered with something we cannot parse: report UNAVAILABLE."""

    action = "report_unavailable"


@runtime_checkable
class Adapter(Protocol):
    """One agency system. Construct with `from_config(config)`; close with `aclose()`.

    Optional by convention: `async def probe(self) -> SourceHealth` (see `SupportsProbe`),
    a cheap check for `mash-hub sources check` and readiness that reads no personal data.
    """

    source: Source

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        """Build from configuration: always "url"; "timeout_s" and more per adapter.

        Raises:
            SourceMisconfigured: a required key is missing or malformed.
        """
        ...

    async def search(self, query: PersonQuery) -> Sequence[SourcePerson]:
        """Find candidate person records.

        Args:
            query: demographics; every person matching any given key is returned.
        Returns:
            candidates (possibly empty: the source does not know anyone matching).
        Raises:
            SourceError: the source could not answer.
        """
        ...

    async def items(self, person_ids: Sequence[str]) -> Sequence[Item]:
        """Fetch the agency content about the given person records (SourcePerson.local_id).

        Raises:
            SourceError: the source could not answer.
        """
        ...

    async def aclose(self) -> None:
        """Release connections and pools."""
        ...


@runtime_checkable
class SupportsProbe(Protocol):
    """Optional by convention: an adapter that can check its source without a search.

    Every adapter in this package implements it; callers test with
    `isinstance(adapter, SupportsProbe)` so that an adapter without it still works.
    """

    async def probe(self) -> SourceHealth:
        """Check that the source is reachable and accepts our credentials.

        Returns:
            SourceHealth with reachable and authenticated True (a source that cannot be
            reached or refuses us raises instead).
        Raises:
            SourceUnavailable: the source cannot be reached or is failing.
            SourceMisconfigured: wrong URL, credentials rejected, schema missing.
            SourceResponseInvalid: the source answered with something unreadable.
        """
        ...


@dataclass(frozen=True, slots=True)
class Relation:
    """A relation a source records between two of its person records: `related` is the
    `relation` of the person record `person_id` (relation "parent": `related` is a parent of
    `person_id`).

    Attributes:
        person_id: the SourcePerson.local_id asked about.
        relation: one of RELATIONS.
        related: the related person as the source records them.
    """

    person_id: str
    relation: str
    related: SourcePerson


# What a related person is to the person asked about.
RELATIONS = frozenset({"parent", "child", "partner", "sibling", "half_sibling", "twin", "carer"})


@runtime_checkable
class SupportsRelations(Protocol):
    """Optional: an adapter whose source records family relations between its person
    records (a police system's associations, an early help family). The hub offers those
    related as household members, with the source as the basis."""

    async def relations(self, person_ids: Sequence[str]) -> Sequence[Relation]:
        """The relations of the given person records (SourcePerson.local_id).

        Returns:
            every recorded relation whose `person_id` is one of `person_ids`.
        Raises:
            SourceError: the source could not answer.
        """
        ...


@runtime_checkable
class SupportsFetch(Protocol):
    """Optional: an adapter that can read person records by their ids, e.g. a record an
    analyst confirmed as the child's that a later search no longer brings back."""

    async def fetch(self, person_ids: Sequence[str]) -> Sequence[SourcePerson]:
        """The person records with the given ids (SourcePerson.local_id); unknown ids are
        left out.

        Raises:
            SourceError: the source could not answer.
        """
        ...


def name_parts(value: str | None) -> list[str]:
    """The lower-case parts of a name ("Thompson-Reid" -> ["thompson", "reid"])."""
    cleaned = re.sub(r"[^a-z\- ]", "", (value or "").lower())
    return list(dict.fromkeys(p for p in re.split(r"[\- ]+", cleaned) if p))


def swapped_date(value: date) -> date | None:
    """The date with day and month exchanged (a common keying error), if that is a date.

    Adapters search a family name together with this date rather than alone: a family name
    by itself matches thousands of people in a large source."""
    if value.day == value.month or value.day > 12:
        return None
    return value.replace(month=value.day, day=value.month)


def config_value(config: Mapping[str, Any], key: str) -> Any:
    """Read a required adapter configuration key, naming it when it is missing."""
    try:
        return config[key]
    except KeyError:
        raise SourceMisconfigured(f"missing adapter configuration key {key!r}") from None
