"""Finding a person's hub id for a subject access request: information governance is given
an NHS number, or a name and date of birth, and needs the id the audit log knows them by.

The match is against the hub's own subjects (`hub.identity.models.Subject`, the people reads have
resolved), never the sources: an exact, valid NHS number, or the name and date of birth
under the identity module's normalisation (`hub.identity.matching.demographic_key`, the key the
store already indexes). Only ids come back. What was typed never leaves this module: the
audit event of a lookup records how it looked (`kind`) and the ids it found.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select

from ..audit.events import AuditNotes
from ..identity import linkage, matching
from ..identity.models import Subject
from ..store.engine import Store

PURPOSE = "SAR_RESPONSE"
REPORT = "find_subjects"
LOOKUP_RESULT = "lookup_result"  # how a person found by a lookup figures in its audit event
NHS_NUMBER = "nhs_number"
NAME_AND_DATE_OF_BIRTH = "name_and_date_of_birth"
MAX_NAME = 100
MAX_FOUND = 20  # more than this many people with one name and birthday is not a lookup


@dataclass(frozen=True)
class SubjectQuery:
    """What IG was given. Raises ValueError with a message that echoes none of it."""

    nhs_number: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    date_of_birth: date | None = None

    def __post_init__(self) -> None:
        if self.nhs_number:
            if linkage.valid_nhs(self.nhs_number) is None:
                raise ValueError("the NHS number is not a valid NHS number (10 digits)")
            return
        names = (self.given_name or "", self.family_name or "")
        if not (any(n.strip() for n in names) or self.date_of_birth):
            raise ValueError("give an NHS number, or a given name, family name and date of birth")
        if not all(matching.normalise(n) for n in names) or self.date_of_birth is None:
            raise ValueError(
                "without an NHS number, give the given name, family name and date of birth"
            )
        if any(len(n) > MAX_NAME for n in names):
            raise ValueError(f"names are at most {MAX_NAME} characters")

    @property
    def kind(self) -> str:
        """How the lookup was made (what its audit event may say of it)."""
        return NHS_NUMBER if self.nhs_number else NAME_AND_DATE_OF_BIRTH


async def find_subjects(store: Store, query: SubjectQuery) -> list[str]:
    """The hub ids of the subjects matching `query`, in a stable order."""
    if query.kind == NHS_NUMBER:
        clause = Subject.nhs_number == linkage.valid_nhs(query.nhs_number)
    else:
        known = matching.Demographics(
            None, query.given_name, query.family_name, query.date_of_birth
        )
        # every subject keeps the key of the names and birthday it was first resolved under
        clause = Subject.demographic_key == matching.demographic_key(known)
    async with store.sessions() as session:
        found = await session.execute(
            select(Subject.id).where(clause).order_by(Subject.id).limit(MAX_FOUND)
        )
        return list(found.scalars())


def note(notes: AuditNotes, query: SubjectQuery | None, found: Sequence[str] = ()) -> None:
    """Put the lookup on its audit event: how it looked (never what was typed) and the
    people it found, each a data subject of the event."""
    notes.report({"name": REPORT} | ({"by": query.kind} if query else {}))
    for subject_id in found:
        notes.subject(subject_id, LOOKUP_RESULT)
