"""Turn what the reader read into the GraphQL view this reader may see.

Every section, item and field goes through `Access.decide`; a withheld one becomes a typed
`Redaction` or `FieldRedaction`, never a silent null.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import date
from typing import Any

import strawberry

from adapters import declaration, declarations, sources
from adapters.base import Item, Labels, PersonQuery, Source, SourceDeclaration, SourcePerson
from hub.context import Access, Context
from hub.reading import oversight
from hub.reading.oversight import Withholding
from hub.reading.reader import ChildRead, Reader, valid_contact_id
from hub.reading.records import (
    NOT_KNOWN,
    OK,
    REVIEW,
    AssembledRecord,
    HouseholdMember,
    SourceAnswer,
    weights_of,
)
from hub.reading.records import ChildMatch as Match

from ..common import (
    FieldRedaction,
    Purpose,
    Redaction,
    RedactionReason,
    Relationship,
    SourceStatus,
    client_error,
)
from ..contacts.types import PastAccess
from ..identity.types import HouseholdDecision, LinkDecision, LinkWeight
from . import types as t


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(w.title() for w in rest)


# Each source's section (GraphQL field name, agency), from the sources' declarations.
SECTIONS: dict[Source, tuple[str, str]] = {
    d.source: (_camel(d.section), d.agency) for d in declarations()
}
# The fields each item kind declares as dates (sources may send them as ISO strings).
DATE_FIELDS: dict[str, frozenset[str]] = {
    k.kind: frozenset(f for f, typ in k.fields if typ is date)
    for d in declarations()
    for k in d.kinds
}
MATCH_FIELDS = ("given_name", "family_name", "date_of_birth", "nhs_number")
PERSON_FIELDS = (
    "given_name",
    "family_name",
    "date_of_birth",
    "nhs_number",
    "postcode",
    "address",
)


async def open_access(ctx: Context, purpose: Purpose, contact_id: str | None) -> Access:
    """Name the purpose (and contact), then check this actor may read child records for it."""
    access = await ctx.access(purpose.value, valid_contact_id(contact_id))
    if not access.may_read_child():
        raise client_error("not permitted to read child records for this purpose", "FORBIDDEN")
    return access


def subject_id(id: str) -> str:
    """Hub ids are UUIDs; anything else names no child."""
    try:
        return str(uuid.UUID(str(id)))
    except ValueError:
        raise client_error("no child with this id", "NOT_FOUND") from None


def search_query(criteria: t.PersonSearch) -> PersonQuery:
    if not any(vars(criteria).values()):
        raise client_error("give at least one search criterion", "BAD_USER_INPUT")
    return PersonQuery(
        nhs_number=(criteria.nhs_number or "").replace(" ", "") or None,
        given_name=criteria.given_name,
        family_name=criteria.family_name,
        date_of_birth=criteria.date_of_birth,
        postcodes=(criteria.postcode,) if criteria.postcode else (),
    )


def child_match(match: Match, ctx: Context, access: Access) -> t.ChildMatch:
    """One search result, with the identity fields the policy lets this reader see."""
    ctx.notes.subject(match.subject_id, "search_result")
    d = match.demographics
    decision = access.decide("searchChildren", "match", Labels(agency="hub"))
    hidden = (
        dict(decision.hidden_fields)
        if decision.allowed
        else dict.fromkeys(MATCH_FIELDS, decision.reason or "NOT_PERMITTED")
    )
    values: dict[str, Any] = {
        "given_name": d.given_name,
        "family_name": d.family_name,
        "date_of_birth": d.date_of_birth,
        "nhs_number": d.nhs_number,
    }
    return t.ChildMatch(
        id=strawberry.ID(match.subject_id),
        sources=sorted({r.source for r in match.records}, key=lambda s: s.value),
        redacted_fields=[
            FieldRedaction(field=_camel(f), reason=RedactionReason(r))
            for f, r in hidden.items()
            if f in values
        ],
        **{f: None if f in hidden else v for f, v in values.items()},
    )


def child_record(read: ChildRead) -> t.ChildRecord:
    """The child's record as the reader read it, each part decided through its door:
    withheld, typed, where the reader has no relationship to the child (rule 2)."""
    access, record = read.access, read.record
    if record is None:
        return withheld_record(read.subject_id, access, read.withheld_reason)
    view = ChildView(record, access, read.withheld)
    child = view.build()
    if view.part("child.household", "household"):
        for member in record.household:
            access.notes.subject(member.subject_id, "household_member")
    if view.part("child.flags", "flags"):
        child.flags = t.ChildFlags(
            child_protection="CPP" in read.plans,
            looked_after="LAC" in read.plans,
            open_contact=read.open_contact,
        )
    if view.part("child.access_log", "previouslyAccessedBy"):
        child.previously_accessed_by = [past_access(access, p) for p in read.past]
    child.redacted_fields = view.redacted_parts
    return child


def past_access(access: Access, p: oversight.PastAccess) -> PastAccess:
    """One line of "previously accessed by": staff names where the policy allows (rule 16)."""
    labels = Labels(agency=p.agency or "unknown")
    entry = access.decide("child.previouslyAccessedBy", "access.entry", labels)
    return PastAccess(
        at=p.at,
        agency=p.agency,
        team=p.team,
        purpose=p.purpose,
        staff=None if "staff_name" in entry.hidden_fields else p.actor,
    )


def withheld_record(subject_id: str, access: Access, reason: str | None) -> t.ChildRecord:
    why = RedactionReason(reason or "NOT_PERMITTED")
    access.notes.redaction("child", why.value)
    return t.ChildRecord(
        id=strawberry.ID(subject_id),
        person=withheld_person(subject_id, why, Relationship.CHILD),
        household=[],
        **{d.section: Redaction(reason=why, agency=d.agency) for d in declarations()},
        sources=[],
        links=[],
        withheld=Redaction(reason=why, agency="hub"),
    )


def withheld_person(
    subject_id: str, why: RedactionReason, relationship: Relationship | None
) -> t.Person:
    return t.Person(
        id=strawberry.ID(subject_id),
        relationship=relationship,
        redacted_fields=[FieldRedaction(field=_camel(f), reason=why) for f in PERSON_FIELDS],
    )


async def child_reference(ctx: Context, id: str) -> t.ChildRecord | None:
    """Federation `_entities`: the same reader, policy and audit as `child`. Entity
    references carry no arguments, so the purpose comes from the `X-Purpose-Of-Use` header
    and the contact from `X-Contact-Id`."""
    sid = subject_id(id)
    ctx.notes.subject(sid, "child", primary=True)  # an attempt is audited too
    purpose = _header_purpose(ctx).value
    return child_record(await Reader(ctx).child(sid, purpose, ctx.contact_header or None))


async def person_reference(ctx: Context, id: str) -> t.Person | None:
    """Federation `_entities` for a person: the same relationship check, then their
    demographics through the same policy as a child record's `person`."""
    sid = subject_id(id)
    ctx.notes.subject(sid, "person")
    access = await open_access(ctx, _header_purpose(ctx), ctx.contact_header or None)
    relationship = access.relationship(sid)
    if not relationship.allowed:
        why = RedactionReason(relationship.reason or "NOT_PERMITTED")
        access.notes.redaction("_entities.person", why.value)
        return withheld_person(sid, why, None)
    record = await ctx.services.records.assemble(sid)
    if record is None:
        raise client_error("no person with this id", "NOT_FOUND")
    view = ChildView(record, access)
    person = view.child_person()
    person.relationship = None  # looked up on its own, not relative to a child
    access.consulted({s.value: a.status for s, a in record.answers.items()})
    return person


def _header_purpose(ctx: Context) -> Purpose:
    """The purpose an entity read names in its header: a missing header and a value that
    names no purpose are told apart (the value itself is not echoed)."""
    allowed = ", ".join(p.value for p in Purpose)
    if not ctx.purpose_header:
        raise client_error(
            f"entity reads need an X-Purpose-Of-Use header naming a purpose: one of {allowed}",
            "PURPOSE_REQUIRED",
        )
    try:
        return Purpose(ctx.purpose_header.strip())
    except ValueError:
        raise client_error(
            f"X-Purpose-Of-Use names no known purpose: use one of {allowed}", "BAD_USER_INPUT"
        ) from None


class ChildView:
    """Applies one reader's decisions to one assembled record."""

    def __init__(
        self,
        record: AssembledRecord,
        access: Access,
        withheld: Mapping[tuple[str, str], Withholding] | None = None,
    ) -> None:
        self.record = record
        self.access = access
        self.withheld = withheld or {}
        self.household_ids = {
            (r.source, r.local_id): m.subject_id for m in record.household for r in m.records
        }
        self.statuses: dict[Source, SourceStatus] = {}
        # Rule 11: a location-protected child, or anyone in the child's household, protects
        # the home: no one in it shows an address (showing one shows them all).
        self.child_protected = any(
            p.labels.location_protected for a in record.answers.values() for p, _ in a.linked
        ) or any(r.labels.location_protected for m in record.household for r in m.records)
        # ...and fails closed: a source that did not answer may hold the restriction.
        self.location_flags = (
            ("location_unverified",)
            if any(a.status not in (OK, NOT_KNOWN) for a in record.answers.values())
            else ()
        )
        self.redacted_parts: list[FieldRedaction] = []
        # The family's recorded consent to share each source's records, where it records one.
        self._consents: dict[Source, str | None] = {
            d.source: self._consent(record.answers[d.source], d.consent_kind)
            for d in declarations()
            if d.consent_kind and d.source in record.answers
        }
        self._parts: dict[str, bool] = {}

    def part(self, kind: str, name: str) -> bool:
        """Is this part of the record (household, links, flags, access log) released to
        this reader? A withheld part is listed in the record's `redactedFields`."""
        if name not in self._parts:
            decision = self.access.decide(f"child.{name}", kind, Labels(agency="hub"))
            self._parts[name] = decision.allowed
            if not decision.allowed:
                why = RedactionReason(decision.reason or "NOT_PERMITTED")
                self.redacted_parts.append(FieldRedaction(field=name, reason=why))
        return self._parts[name]

    def build(self) -> t.ChildRecord:
        sections = {d.section: self.section(d) for d in declarations()}
        self.access.consulted({s.value: st.value for s, st in self.statuses.items()})
        household = self.part("child.household", "household")
        return t.ChildRecord(
            id=strawberry.ID(self.record.subject_id),
            person=self.child_person(),
            household=[self.household_member(m) for m in self.record.household]
            if household
            else [],
            **sections,
            sources=[
                t.SourceState(
                    source=s,
                    status=self.statuses[s],
                    latency_ms=self.record.answers[s].latency_ms,
                    circuit_open=self.record.answers[s].circuit_open,
                )
                for s in sources()
                if s in self.record.answers
            ],
            links=self.links() if self.part("child.links", "links") else [],
            shared_address_residents=[
                self.shared_address_resident(m) for m in self.record.residents
            ]
            if household
            else [],
        )

    def links(self) -> list[t.SourceLink]:
        """The child's links, then the candidates waiting for an analyst (band review)."""
        answers = self.record.answers.values()
        return [
            t.SourceLink(
                source=p.source,
                source_record_id=p.local_id,
                rule=k.rule,
                agreed_fields=list(k.agreed),
                score=k.score,
                band=k.band,
                explanation=LinkWeight.all(k.weights),
                decision=LinkDecision.of(k.decision) if k.decision else None,
            )
            for a in answers
            for p, k in a.linked
        ] + [
            t.SourceLink(
                source=p.source,
                source_record_id=p.local_id,
                rule=link.rule,
                agreed_fields=list(link.agreed),
                score=link.score,
                band=REVIEW,
                explanation=LinkWeight.all(weights_of(link)),
            )
            for a in answers
            for p, link in a.reviews
        ]

    def section(self, declared: SourceDeclaration) -> Any:
        source = declared.source
        answer = self.record.answers.get(source)
        if answer is None:
            return None
        self.statuses[source] = SourceStatus(answer.status)
        if answer.status not in (OK, "NOT_KNOWN"):
            return None
        name, agency = SECTIONS[source]
        known = answer.status == OK
        consent = self._consents.get(source)
        decision = self.access.decide(
            f"child.{name}", f"{agency}.section", Labels(agency=agency), consent
        )
        if not decision.allowed:
            self.statuses[source] = SourceStatus.REDACTED
            return Redaction(
                reason=RedactionReason(decision.reason), agency=agency, known_to_agency=known
            )
        entries: dict[str, list[Any]] = {}
        for item in answer.items:
            entries.setdefault(item.kind, []).append(self.entry(name, source, item, consent))
        return t.SECTION_TYPES[source](
            known=known, **{k.field: entries.get(k.kind, []) for k in declared.kinds}
        )

    def entry(self, section: str, source: Source, item: Item, consent: str | None) -> Any:
        path = f"child.{section}.{_camel(item.kind.split('.', 1)[1])}"
        # Rule 8: an item its agency decided not to share carries that flag into the decision.
        kept = (source.value, item.local_id) in self.withheld
        flags = (("not_shared",) if kept else ()) + self.location_flags
        # Rule 11: an item's location fields (a school, say) are the protected home's too,
        # whichever source holds the restriction.
        labels = item.labels
        if self.child_protected and not labels.location_protected:
            labels = replace(labels, location_protected=True)
        decision = self.access.decide(path, item.kind, labels, consent, flags)
        if not decision.allowed:
            return Redaction(
                reason=RedactionReason(decision.reason),
                agency=item.labels.agency,
                known_to_agency=True,
            )
        values: dict[str, Any] = {}
        for key, value in item.data.items():
            if key in decision.hidden_fields:
                value = None
            elif key in DATE_FIELDS[item.kind] and isinstance(value, str):
                value = date.fromisoformat(value)
            values[key] = value
        about_id = self.household_ids.get((source, item.person_id), self.record.subject_id)
        return t.ITEM_TYPES[item.kind](
            id=strawberry.ID(item.local_id),
            about=Relationship.CHILD
            if about_id == self.record.subject_id
            else Relationship.HOUSEHOLD_MEMBER,
            about_person_id=strawberry.ID(about_id),
            redacted_fields=[
                FieldRedaction(field=_camel(f), reason=RedactionReason(r))
                for f, r in decision.hidden_fields.items()
                if f in item.data
            ],
            **values,
        )

    def child_person(self) -> t.Person:
        records = [p for a in self.record.answers.values() for p, _ in a.linked]
        return self.person(self.record.subject_id, records, Relationship.CHILD, "child.person")

    def found_by(self, member: HouseholdMember, path: str) -> HouseholdMember | Redaction:
        """The member as the agencies whose records found them may show them (rule 3: who
        another agency relates to the child, or records at the child's address, is that
        agency's information — at screening it waits for research like any other detail):
        only those agencies' bases and records, or, where none may, the reason."""
        shown: set[Source] = set()
        reason: str | None = None
        for source in dict.fromkeys(b.source for b in member.basis):
            agency = declaration(source).agency
            consent = self._consents.get(source)
            decision = self.access.decide(path, "household.member", Labels(agency), consent)
            if decision.allowed:
                shown.add(source)
            else:
                reason = reason or decision.reason
        if not shown:
            return Redaction(reason=RedactionReason(reason or "NOT_PERMITTED"), agency="hub")
        return replace(
            member,
            records=tuple(r for r in member.records if r.source in shown) or member.records,
            basis=tuple(b for b in member.basis if b.source in shown),
        )

    def household_member(self, member: HouseholdMember) -> t.HouseholdMember:
        found = self.found_by(member, "child.household")
        if isinstance(found, Redaction):
            return t.HouseholdMember(
                person=withheld_person(
                    member.subject_id, found.reason, Relationship.HOUSEHOLD_MEMBER
                ),
                relation=None,
                basis=[],
                withheld=found,
            )
        person = self.household_person(found.subject_id, found.records)
        return t.HouseholdMember(
            person=person,
            relation=_relation(found.relation, _sex(found)),
            basis=_basis(found),
            decision=HouseholdDecision.of(found.decision) if found.decision else None,
        )

    def shared_address_resident(self, member: HouseholdMember) -> t.SharedAddressResident:
        """An unconfirmed resident of the child's large shared address: who they are (as
        the policy lets this reader see a person) and where the sources record them; none
        of their items."""
        self.access.notes.subject(member.subject_id, "shared_address_resident")
        found = self.found_by(member, "child.sharedAddressResidents")
        if isinstance(found, Redaction):
            why, role = found.reason, Relationship.SHARED_ADDRESS_RESIDENT
            return t.SharedAddressResident(
                person=withheld_person(member.subject_id, why, role), basis=[], withheld=found
            )
        member = found
        person = self.person(
            member.subject_id,
            list(member.records),
            Relationship.SHARED_ADDRESS_RESIDENT,
            "child.sharedAddressResidents",
        )
        return t.SharedAddressResident(
            person=person,
            basis=_basis(member),
            decision=HouseholdDecision.of(member.decision) if member.decision else None,
        )

    def household_person(self, subject_id: str, records: tuple[SourcePerson, ...]) -> t.Person:
        return self.person(
            subject_id, list(records), Relationship.HOUSEHOLD_MEMBER, "child.household"
        )

    def person(
        self, subject_id: str, records: list[SourcePerson], relationship: Relationship, path: str
    ) -> t.Person:
        # The best-identified record speaks for the person: one with an NHS number first.
        best = min(records, key=lambda r: (r.nhs_number is None, r.source.value), default=None)
        d = self.record.demographics if relationship is Relationship.CHILD else None
        labels = Labels(
            agency=declaration(best.source).agency if best else "council",
            # A protected home (the child or a household member protected) shows no address.
            location_protected=self.child_protected
            or any(r.labels.location_protected for r in records),
        )
        decision = self.access.decide(path, "person", labels, flags=self.location_flags)
        hidden = (
            dict(decision.hidden_fields)
            if decision.allowed
            else dict.fromkeys(PERSON_FIELDS, decision.reason or "NOT_PERMITTED")
        )
        values: dict[str, Any] = {
            "given_name": best.given_name if best else (d.given_name if d else None),
            "family_name": best.family_name if best else (d.family_name if d else None),
            "date_of_birth": best.date_of_birth if best else (d.date_of_birth if d else None),
            "nhs_number": (best.nhs_number if best else None) or (d.nhs_number if d else None),
            "postcode": best.postcode if best else None,
            "address": best.address if best else None,
        }
        return t.Person(
            id=strawberry.ID(subject_id),
            relationship=relationship,
            # Which agencies know them is theirs to see only where the person is released.
            agencies=sorted({r.source for r in records}, key=lambda s: s.value)
            if decision.allowed
            else [],
            redacted_fields=[
                FieldRedaction(field=_camel(f), reason=RedactionReason(r))
                for f, r in hidden.items()
                if f in values
            ],
            **{f: None if f in hidden else v for f, v in values.items()},
        )

    @staticmethod
    def _consent(answer: SourceAnswer, kind: str) -> str | None:
        """The family's latest recorded consent (items of the source's declared consent
        kind) on the child's own records of that source."""
        child_ids = {p.local_id for p, _ in answer.linked}
        consents = [i for i in answer.items if i.kind == kind and i.person_id in child_ids]
        if not consents:
            return None
        latest = max(consents, key=lambda i: str(i.data.get("recorded_on") or ""))
        return str(latest.data["status"]) if latest.data.get("status") else None


def _sex(member: HouseholdMember) -> str | None:
    return next((r.sex for r in member.records if r.sex in ("female", "male")), None)


def _basis(member: HouseholdMember) -> list[t.HouseholdBasis]:
    sex = _sex(member)
    return [
        t.HouseholdBasis(
            kind=t.HouseholdBasisKind(b.kind),
            source=b.source,
            relation=_relation(b.relation, sex),
            confirmed=b.confirmed,
        )
        for b in member.basis
    ]


def _relation(relation: str | None, sex: str | None) -> t.HouseholdRelation | None:
    """A source's relation as the child's: a parent is the mother or father where the
    sources record the parent's sex."""
    if relation is None:
        return None
    if relation == "parent" and sex in ("female", "male"):
        return t.HouseholdRelation.MOTHER if sex == "female" else t.HouseholdRelation.FATHER
    return t.HouseholdRelation(relation.upper())
