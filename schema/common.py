"""Types shared by every domain of the API: purposes, source status, typed redactions."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

import strawberry
from graphql import GraphQLError

from adapters import sources
from adapters.base import Source
from hub.errors import CLIENT_CODES

if TYPE_CHECKING:
    SourceName = Source
else:
    # The declared sources, in declaration order (adapters.declarations()): an input value
    # is a `str` enum member equal to the `Source` of the same name; outputs may be either.
    SourceName = strawberry.enum(
        enum.Enum("SourceName", [(s, s) for s in sources()], type=str),
        name="SourceName",
        description="An agency source system.",
    )


@strawberry.enum(description="Purpose of use: every read of personal data names one.")
class Purpose(enum.Enum):
    MASH_SCREENING = "MASH_SCREENING"
    MASH_RESEARCH = "MASH_RESEARCH"
    THRESHOLD_DECISION = "THRESHOLD_DECISION"
    S47_STRATEGY = "S47_STRATEGY"
    S17_ASSESSMENT = "S17_ASSESSMENT"
    EARLY_HELP = "EARLY_HELP"
    SAR_RESPONSE = "SAR_RESPONSE"
    IG_AUDIT = "IG_AUDIT"
    BREAK_GLASS = "BREAK_GLASS"


@strawberry.enum(
    description="What a source said: OK and NOT_KNOWN are answers; "
    "UNAVAILABLE and TIMED_OUT mean it could not answer."
)
class SourceStatus(enum.Enum):
    OK = "OK"
    NOT_KNOWN = "NOT_KNOWN"
    UNAVAILABLE = "UNAVAILABLE"
    TIMED_OUT = "TIMED_OUT"
    REDACTED = "REDACTED"


@strawberry.enum(
    description="Why a value is withheld. NOT_PERMITTED: this role or purpose may not see it; "
    "CONSENT_REQUIRED: it needs the family's recorded consent (or an override, or s47); "
    "ORIGINATOR_RESTRICTED: the originating agency keeps it (handling conditions, "
    "investigation-sensitive, extra-protected); LOCATION_PROTECTED: the person's location is "
    "protected; LOCATION_UNVERIFIED: a source that may restrict this home's location did not "
    "answer this read, so no location in the home is shown until one does; "
    "STAGE_RESTRICTED: before research only 'known to agency: yes/no'; "
    "NO_RELATIONSHIP: the reader does not work an open contact about this child; "
    "WITHHELD_BY_ORIGINATOR: the originating agency recorded a decision not to share it."
)
class RedactionReason(enum.Enum):
    NOT_PERMITTED = "NOT_PERMITTED"
    CONSENT_REQUIRED = "CONSENT_REQUIRED"
    ORIGINATOR_RESTRICTED = "ORIGINATOR_RESTRICTED"
    LOCATION_PROTECTED = "LOCATION_PROTECTED"
    LOCATION_UNVERIFIED = "LOCATION_UNVERIFIED"
    STAGE_RESTRICTED = "STAGE_RESTRICTED"
    NO_RELATIONSHIP = "NO_RELATIONSHIP"
    WITHHELD_BY_ORIGINATOR = "WITHHELD_BY_ORIGINATOR"


@strawberry.type(
    description="A record or section withheld from this reader, with the reason. "
    "`known` answers 'known to this agency: yes/no' where detail is withheld."
)
class Redaction:
    reason: RedactionReason
    agency: str
    known_to_agency: bool | None = None


@strawberry.type(description="A field of a released record that is withheld, with the reason.")
class FieldRedaction:
    field: str
    reason: RedactionReason


@strawberry.enum(description="Whom an item is about, relative to the child.")
class Relationship(enum.Enum):
    CHILD = "CHILD"
    HOUSEHOLD_MEMBER = "HOUSEHOLD_MEMBER"
    # at the child's large shared address, not (yet) confirmed as household by an analyst
    SHARED_ADDRESS_RESIDENT = "SHARED_ADDRESS_RESIDENT"


def client_error(message: str, code: str) -> GraphQLError:
    """An error the client is meant to see. The message must hold no personal data."""
    assert code in CLIENT_CODES
    return GraphQLError(message, extensions={"code": code})
