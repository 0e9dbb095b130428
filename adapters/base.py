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

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol, Self, runtime_checkable


class Source(str):
    """A source system's name, as the GraphQL enum `SourceName` spells it (e.g. "POLICE").

    Nothing here lists the sources: each adapter module declares its own
    (`SourceDeclaration.source`) and `adapters.declarations()` collects them, so adding a
    source touches its own module only. A `str`, so it keys rows and JSON as itself."""

    __slots__ = ()

    @property
    def value(self) -> str:
        """The name itself (kept so callers read `source.value` as they would an enum's)."""
        return str(self)


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
        kind: one of its source's declared kinds (`KindDeclaration.kind`), e.g.
            "police.incident".
        local_id: the source's own id for the item.
        person_id: the SourcePerson.local_id it is about.
        labels: what policies decide on.
        data: the item's fields, named as its kind declares them; values are str, int, date,
            bool or None.
    """

    kind: str
    local_id: str
    person_id: str
    labels: Labels
    data: Mapping[str, Any]


# What an item field may hold; the GraphQL field types follow (date -> Date, ...).
FieldType = type[str] | type[int] | type[date] | type[bool]


@dataclass(frozen=True, slots=True)
class KindDeclaration:
    """One kind of item a source returns, as data: the schema's item type is generated from it.

    Attributes:
        kind: "<agency>.<name>", e.g. "police.incident" (`Item.kind`; policies decide on it).
        type_name: the GraphQL object type, e.g. "PoliceIncident".
        field: the section's list field (snake case), e.g. "incidents".
        fields: each field's name (snake case, as `Item.data` names it) and type, in order.
        description: the GraphQL type's description, if any.
    """

    kind: str
    type_name: str
    field: str
    fields: tuple[tuple[str, FieldType], ...]
    description: str | None = None


@dataclass(frozen=True, slots=True)
class DemoDeclaration:
    """How the demo stands the source up (hub/demo reads this; adapters never import it).

    Attributes:
        store: the name of the demo store the seeder fills ("<store>.<table>" rows) and the
            data folder's `sources/<store>.sqlite3` file.
        server: for an HTTP source, its demo server's app factory, "module:function" called
            with the data folder (and `allow_faults`, and `token` where one is asked for);
            served as `python -m hub.demo.sources STORE`. None for a SQL source, which the
            adapter reads straight from the store.
        base_path: the adapter's URL path on the demo server, e.g. "fhir".
        ready_path: a path under `base_path` that answers 2xx once the server is up.
        options_file: a JSON file under `sources/` the seeder writes with the adapter's
            `options` (e.g. OAuth client credentials), if any.
        seeder: the demo module that derives this source's store from the generated
            population, for a source whose content the shared seeder does not write: it
            defines `rows(chunk)` (rows keyed "<store>.<table>", and "truth.persons"),
            `SCHEMA` and `INDEXES` (its stdlib SQLite store's statements, for an HTTP
            source) and `options(households, seed)` (the `options_file`'s content, if any).
    """

    store: str
    server: str | None = None
    base_path: str = ""
    ready_path: str = ""
    options_file: str | None = None
    seeder: str | None = None


@dataclass(frozen=True, slots=True)
class SourceDeclaration:
    """Everything outside the adapter module needs to know about one source, as data: the
    schema's section and item types, the contact workflow's agency and research task, the
    development issuer's roles, the demo and the benchmarks are all read from it. Who may
    see what is not here: that is `policies/*.polar`, deciding on `kind` and `agency`.

    Attributes:
        source: the source's name (`SourceName` in GraphQL).
        agency: the originating agency of its values (`Labels.agency`, research tasks).
        section: the child record's field for it (snake case), e.g. "adult_social_care".
        type_prefix: the GraphQL name stem of its section types, e.g. "AdultSocialCare".
        position: where its section and enum value come among the sources (ascending).
        kinds: its item kinds, in the order the section lists them.
        roles: the roles of its practitioners (the development issuer mints them with
            `agency`).
        demo: how the demo runs it.
        section_description: the GraphQL description of its section type, if any.
        consent_kind: the item kind holding the family's recorded consent to share this
            source's records (its latest `status` on the child's own records is handed to
            the policies), if the source records consent.
        plan_kind: the item kind holding care plans whose `category` (CPP, LAC) and `status`
            flag a child as subject to a child-protection plan or looked after (rule 16 and
            `ChildRecord.flags`), if the source records them.
    """

    source: Source
    agency: str
    section: str
    type_prefix: str
    position: int
    kinds: tuple[KindDeclaration, ...]
    roles: tuple[str, ...]
    demo: DemoDeclaration
    section_description: str | None = None
    consent_kind: str | None = None
    plan_kind: str | None = None


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
    declaration: SourceDeclaration

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
