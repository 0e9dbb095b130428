"""GraphQL types of the unified child record. Adapter-sourced fields are nullable: one failed
source nulls its own section, never the record."""

from __future__ import annotations

import enum
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any, Optional, Union

import strawberry

from adapters import declarations
from adapters.base import KindDeclaration, Source, SourceDeclaration

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


# --- the sources' sections, generated from their declarations -----------------------------
# Each adapter module declares its source (adapters.base.SourceDeclaration); its section type,
# item types and their `...Result` unions are made from that, so a new source needs no edit
# here. The names and field order are the declaration's, so the SDL reads as if written out.


def _item_type(kind: KindDeclaration) -> type[Any]:
    """`<TypeName> implements Entry` with the kind's fields, each nullable (a field a policy
    hides comes back null with a `FieldRedaction`)."""
    fields = {name: Optional[typ] for name, typ in kind.fields}  # noqa: UP045 (runtime union)
    cls = type(kind.type_name, (Entry,), {"__annotations__": fields, "__module__": __name__})
    return strawberry.type(cls, description=kind.description)


def _result(cls: type[Any], name: str) -> Any:
    """`cls | Redaction` as the union `name` (withheld as a whole: a typed redaction)."""
    return Annotated[Union[cls, Redaction], strawberry.union(name)]  # noqa: UP007


def _section_type(d: SourceDeclaration) -> tuple[type[Any], dict[str, type[Any]]]:
    """The source's section (`known` and one list per item kind) and its item types."""
    items = {k.kind: _item_type(k) for k in d.kinds}
    fields: dict[str, Any] = {"known": bool}
    for k in d.kinds:
        fields[k.field] = list[_result(items[k.kind], f"{k.type_name}Result")]  # type: ignore[misc]
    cls = type(f"{d.type_prefix}Section", (), {"__annotations__": fields, "__module__": __name__})
    return strawberry.type(cls, description=d.section_description), items


SECTION_TYPES: dict[Source, type[Any]] = {}
ITEM_TYPES: dict[str, type[Any]] = {}
_SECTION_RESULTS: dict[str, Any] = {}
for _d in declarations():
    SECTION_TYPES[_d.source], _items = _section_type(_d)
    ITEM_TYPES.update(_items)
    _SECTION_RESULTS[_d.section] = Optional[  # noqa: UP045
        _result(SECTION_TYPES[_d.source], f"{_d.type_prefix}SectionResult")
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


_CHILD_RECORD_DESCRIPTION = (
    "One child's record assembled live from every source. A section is null only "
    "when its source could not answer: `sources` says which and why."
)


class _ChildRecordParts:
    """The child record's fields other than the sources' sections, in SDL order: the
    sections (one per declared source, `_SECTION_RESULTS`) go after `household`."""

    id: strawberry.ID
    person: Person | None
    household: list[HouseholdMember]
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


def _child_record() -> type[Any]:
    """`ChildRecord` with one nullable section field per declared source after `household`
    (its keyword argument is the declaration's `section`)."""
    parts = _ChildRecordParts.__annotations__
    head = ("id", "person", "household")
    annotations = {
        **{k: parts[k] for k in head},
        **_SECTION_RESULTS,
        **{k: v for k, v in parts.items() if k not in head},
    }
    namespace = {
        k: v for k, v in vars(_ChildRecordParts).items() if k not in ("__dict__", "__weakref__")
    }
    namespace.update(__annotations__=annotations, __module__=__name__, __qualname__="ChildRecord")
    cls = type("ChildRecord", (), namespace)
    return strawberry.federation.type(cls, keys=["id"], description=_CHILD_RECORD_DESCRIPTION)


if TYPE_CHECKING:

    class ChildRecord(_ChildRecordParts):
        """(For the type checker: the generated class, built with the sections by name.)"""

        def __init__(self, **fields: Any) -> None: ...

else:
    ChildRecord = _child_record()
