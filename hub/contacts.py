"""MASH contacts: the enquiry a read serves, and the facts about it the policies decide on.

`ContactFacts` is the interface between the contact workflow and the policy engine: the
request path loads it once per operation (`facts_for`) and the policies read its fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .auth import Actor
from .store import Store

STAGES = ("SCREENING", "RESEARCH", "DECISION", "CLOSED")
CONSENT_STATES = ("GIVEN", "REFUSED", "NOT_SOUGHT", "WITHDRAWN")
DECISIONS = ("NFA", "EARLY_HELP", "S17", "S47", "OPEN_CASE", "IMMEDIATE_PROTECTION")


@dataclass(frozen=True, slots=True)
class ContactFacts:
    """What the policies need to know about the contact (if any) an operation serves.

    Attributes:
        contact_id: the contact, or None when the operation names none.
        stage: one of STAGES, or None without a contact.
        assigned: the actor works this contact (assigned staff or team, or on the MASH
            rota for their agency's research task) — DOMAIN.md §3 rule 2.
        consent: one of CONSENT_STATES, or None when nothing is recorded.
        consent_scope: agencies whose information the consent covers; empty means all.
        override: a manager's recorded decision to share without consent is active.
        decision: the threshold decision (one of DECISIONS) once recorded; "S47" lifts
            the consent requirement (rules 3 and 7).
        break_glass: the actor holds an active, time-boxed break-glass grant.
        subject_ids: the hub subjects (children) the contact is about.
    """

    contact_id: str | None = None
    stage: str | None = None
    assigned: bool = False
    consent: str | None = None
    consent_scope: tuple[str, ...] = ()
    override: bool = False
    decision: str | None = None
    break_glass: bool = False
    subject_ids: tuple[str, ...] = ()


NO_CONTACT = ContactFacts()


async def facts_for(
    store: Store, actor: Actor, purpose: str, contact_id: str | None, now: datetime
) -> ContactFacts:
    """The facts about `contact_id` as they stand at `now`, from the actor's point of view.

    Until the contact workflow lands every operation is treated as serving no contact.
    """
    del store, actor, purpose, now
    return NO_CONTACT if contact_id is None else ContactFacts(contact_id=contact_id)
