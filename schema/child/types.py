"""GraphQL types of the unified child record. Adapter-sourced fields are nullable: one failed
source nulls its own section, never the record."""

from __future__ import annotations

import enum
from datetime import date
from typing import TYPE_CHECKING, Annotated

import strawberry

from ..common import FieldRedaction, Redaction, Relationship, SourceName, SourceStatus
from ..contacts.types import PastAccess
from ..identity.types import HouseholdDecision, LinkDecision, LinkWeight

if TYPE_CHECKING:
    from hub.context import Context


@strawberry.input(description="Search criteria: at least one field is required.")
class PersonSearch:
    given_name: str | None = None
    family_name: str | None = None
    date_of_birth: date | None = None
    nhs_number: str | None = None
    postcode: str | None = None


@strawberry.federation.type(keys=["id"], description="A person the hub has resolved.")
class Person:
    id: strawberry.ID
    given_name: str | None = None
    family_name: str | None = None
    date_of_birth: date | None = None
    nhs_number: str | None = None
    postcode: str | None = None
    address: str | None = None
    relationship: Relationship | None = None
    agencies: list[SourceName] = strawberry.field(default_factory=list)
    redacted_fields: list[FieldRedaction] = strawberry.field(default_factory=list)

    @classmethod
    async def resolve_reference(
        cls, info: strawberry.Info[Context, None], id: strawberry.ID
    ) -> Person | None:
        from .build import person_reference

        return await person_reference(info.context, str(id))


@strawberry.type(description="A child in search results; read the record with `child(id:)`.")
class ChildMatch:
    id: strawberry.ID
    given_name: str | None
    family_name: str | None
    date_of_birth: date | None
    nhs_number: str | None
    sources: list[SourceName]
    redacted_fields: list[FieldRedaction] = strawberry.field(default_factory=list)


@strawberry.type(
    description="What a flag service shares about a child (DOMAIN.md §3 rule 17): a current "
    "child-protection plan, looked-after status, and whether a MASH contact about the child "
    "is open. Whether each agency knows the child is in the sections' `knownToAgency`."
)
class ChildFlags:
    child_protection: bool
    looked_after: bool
    open_contact: bool


@strawberry.type(
    description="What one source said to this request, and how long it took. "
    "`circuitOpen`: the source has been failing, so it was not asked."
)
class SourceState:
    source: SourceName
    status: SourceStatus
    latency_ms: int | None = None
    circuit_open: bool = False


@strawberry.type(
    description="Why a source's person record was linked to the child. `band`: auto (the "
    "scorer linked it), confirmed (an analyst did: see `decision`), or review (a candidate "
    "waiting for an analyst: not linked, its items are not the child's). `explanation`: "
    "the scorer's weight per compared field (empty where the scorer gives none)."
)
class SourceLink:
    source: SourceName
    source_record_id: str
    rule: str
    agreed_fields: list[str]
    score: float
    band: str
    explanation: list[LinkWeight]
    decision: LinkDecision | None = None


@strawberry.interface(description="One piece of agency content.")
class Entry:
    id: strawberry.ID
    about: Relationship
    about_person_id: strawberry.ID
    redacted_fields: list[FieldRedaction]


@strawberry.type
class PoliceIncident(Entry):
    occurred_on: date | None
    category: str | None
    dash_risk: str | None
    role: str | None
    summary: str | None


@strawberry.type(
    description="Intelligence graded 3x5x2: source A-C, intelligence 1-5, handling code P or C."
)
class PoliceIntelligence(Entry):
    recorded_on: date | None
    source_grade: str | None
    intelligence_grade: int | None
    handling_code: str | None
    summary: str | None
    text: str | None


@strawberry.type(description="A missing-person episode; `returnedOn` null while still missing.")
class PoliceMissingEpisode(Entry):
    reported_on: date | None
    returned_on: date | None
    risk: str | None


@strawberry.type(description="A police warning marker, e.g. WEAPONS, VIOLENCE, SELF_HARM.")
class PoliceWarningMarker(Entry):
    marker: str | None
    recorded_on: date | None


@strawberry.type
class HealthEncounter(Entry):
    date: date | None
    encounter_class: str | None
    reason: str | None


@strawberry.type(description="A care plan: CPP child protection, LAC looked after, UNBORN.")
class HealthPlan(Entry):
    category: str | None
    status: str | None
    start: date | None


@strawberry.type
class AdultSocialCareInvolvement(Entry):
    involvement_type: str | None
    status: str | None
    start: date | None
    end: date | None
    summary: str | None


@strawberry.type
class EarlyHelpEpisode(Entry):
    start: date | None
    end: date | None
    status: str | None
    lead_practitioner: str | None
    summary: str | None


@strawberry.type
class EarlyHelpConsent(Entry):
    status: str | None
    given_by: str | None
    recorded_on: date | None
    scope: str | None


PoliceIncidentResult = Annotated[
    PoliceIncident | Redaction, strawberry.union("PoliceIncidentResult")
]
PoliceIntelligenceResult = Annotated[
    PoliceIntelligence | Redaction, strawberry.union("PoliceIntelligenceResult")
]
PoliceMissingEpisodeResult = Annotated[
    PoliceMissingEpisode | Redaction, strawberry.union("PoliceMissingEpisodeResult")
]
PoliceWarningMarkerResult = Annotated[
    PoliceWarningMarker | Redaction, strawberry.union("PoliceWarningMarkerResult")
]
HealthEncounterResult = Annotated[
    HealthEncounter | Redaction, strawberry.union("HealthEncounterResult")
]
HealthPlanResult = Annotated[HealthPlan | Redaction, strawberry.union("HealthPlanResult")]
AdultSocialCareInvolvementResult = Annotated[
    AdultSocialCareInvolvement | Redaction, strawberry.union("AdultSocialCareInvolvementResult")
]
EarlyHelpEpisodeResult = Annotated[
    EarlyHelpEpisode | Redaction, strawberry.union("EarlyHelpEpisodeResult")
]
EarlyHelpConsentResult = Annotated[
    EarlyHelpConsent | Redaction, strawberry.union("EarlyHelpConsentResult")
]


@strawberry.type
class PoliceSection:
    known: bool
    incidents: list[PoliceIncidentResult]
    intelligence: list[PoliceIntelligenceResult]
    missing_episodes: list[PoliceMissingEpisodeResult]
    warning_markers: list[PoliceWarningMarkerResult]


@strawberry.type
class HealthSection:
    known: bool
    encounters: list[HealthEncounterResult]
    plans: list[HealthPlanResult]


@strawberry.type(description="Adult social care involvement of the adults in the household.")
class AdultSocialCareSection:
    known: bool
    involvements: list[AdultSocialCareInvolvementResult]


@strawberry.type
class EarlyHelpSection:
    known: bool
    episodes: list[EarlyHelpEpisodeResult]
    consents: list[EarlyHelpConsentResult]


PoliceSectionResult = Annotated[PoliceSection | Redaction, strawberry.union("PoliceSectionResult")]
HealthSectionResult = Annotated[HealthSection | Redaction, strawberry.union("HealthSectionResult")]
AdultSocialCareSectionResult = Annotated[
    AdultSocialCareSection | Redaction, strawberry.union("AdultSocialCareSectionResult")
]
EarlyHelpSectionResult = Annotated[
    EarlyHelpSection | Redaction, strawberry.union("EarlyHelpSectionResult")
]


@strawberry.enum(description="Why a person is offered as a member of the child's household.")
class HouseholdBasisKind(enum.Enum):
    SOURCE_RELATION = "SOURCE_RELATION"  # a source records the relation
    SHARED_ADDRESS = "SHARED_ADDRESS"  # a source records them at the child's address
    SHARED_UPRN = "SHARED_UPRN"  # the same property reference (UPRN) as the child
    # recorded at the child's address, a large shared one (hostel, block without flat
    # numbers): household only once an analyst confirms (`confirmed`)
    LARGE_SHARED_ADDRESS = "LARGE_SHARED_ADDRESS"


@strawberry.enum(description="What a household member is to the child, as a source records it.")
class HouseholdRelation(enum.Enum):
    MOTHER = "MOTHER"
    FATHER = "FATHER"
    PARENT = "PARENT"
    CARER = "CARER"
    PARENTS_PARTNER = "PARENTS_PARTNER"
    TWIN = "TWIN"
    SIBLING = "SIBLING"
    HALF_SIBLING = "HALF_SIBLING"
    PARTNER = "PARTNER"
    CHILD = "CHILD"


@strawberry.type(
    description="One reason for a household member: the kind, the source that said so and, "
    "for a source relation, what the person is to the child. `confirmed`: whether this basis "
    "makes the person household -- false only for LARGE_SHARED_ADDRESS while no analyst has "
    "confirmed the resident."
)
class HouseholdBasis:
    kind: HouseholdBasisKind
    source: SourceName
    relation: HouseholdRelation | None = None
    confirmed: bool = True


@strawberry.type(
    description="A person offered as a member of the child's household, with the basis. "
    "Adults' records from several sources are one person only on an NHS number or the "
    "deterministic identity rules (or an analyst's confirmation), never on a fuzzy score: "
    "otherwise they are listed separately. `relation`: the most telling relation any source "
    "records (null where only the address connects them)."
)
class HouseholdMember:
    person: Person
    relation: HouseholdRelation | None
    basis: list[HouseholdBasis]
    decision: HouseholdDecision | None = strawberry.field(
        default=None,
        description="The analyst's decision about them as a resident of the child's large "
        "shared address, where one was made (a confirmation made them household).",
    )
    withheld: Redaction | None = strawberry.field(
        default=None,
        description="Set when who this is, and how they are related, is withheld from this "
        "reader (e.g. STAGE_RESTRICTED: only other agencies' records found them, and before "
        "research that is their information): the person's fields say so too.",
    )


@strawberry.type(
    description="A resident of the child's large shared address (a hostel, a block recorded "
    "without flat numbers: many unrelated people at one address) whom no source relates to "
    "the child and no analyst has confirmed. Not a household member: none of their agency "
    "records is read into the child's record. An analyst confirms or rejects them with "
    "`confirmHouseholdResident` / `rejectHouseholdResident`; `decision` holds a rejection."
)
class SharedAddressResident:
    person: Person
    basis: list[HouseholdBasis]
    decision: HouseholdDecision | None = None
    withheld: Redaction | None = None


@strawberry.federation.type(
    keys=["id"],
    description="One child's record assembled live from every source. A section is null only "
    "when its source could not answer: `sources` says which and why.",
)
class ChildRecord:
    id: strawberry.ID
    person: Person | None
    household: list[HouseholdMember]
    police: PoliceSectionResult | None
    health: HealthSectionResult | None
    adult_social_care: AdultSocialCareSectionResult | None
    early_help: EarlyHelpSectionResult | None
    sources: list[SourceState]
    links: list[SourceLink]
    withheld: Redaction | None = strawberry.field(
        default=None,
        description="Set when the whole record is withheld from this reader (e.g. "
        "NO_RELATIONSHIP: no open contact about this child is assigned to them): no source "
        "was asked, and every section says so too.",
    )
    previously_accessed_by: list[PastAccess] = strawberry.field(
        default_factory=list,
        description="The last 25 reads of this child before this one, newest first.",
    )
    flags: ChildFlags | None = None
    redacted_fields: list[FieldRedaction] = strawberry.field(
        default_factory=list,
        description="Parts of the record withheld from this reader as a whole (household, "
        "links, previouslyAccessedBy), with the reason: an empty list there means withheld, "
        "not none.",
    )
    shared_address_residents: list[SharedAddressResident] = strawberry.field(
        default_factory=list,
        description="The unconfirmed residents of the child's home where it is a large shared "
        "address (a hostel, a block recorded without flat numbers): not household members, "
        "their records not read, until an analyst confirms them. Neighbours (the same street "
        "and postcode, another house or flat) are never listed anywhere.",
    )

    @classmethod
    async def resolve_reference(
        cls, info: strawberry.Info[Context, None], id: strawberry.ID
    ) -> ChildRecord | None:
        from .build import child_reference

        return await child_reference(info.context, str(id))
