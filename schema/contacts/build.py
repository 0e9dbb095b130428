"""Checks shared by the contact operations: the purpose on the audit event, then the policy's
yes or no (policies/contacts.polar). Messages never echo what the client typed."""

from __future__ import annotations

from adapters.base import Labels
from hub.contacts import workflow as svc
from hub.context import Context

from ..common import Purpose, RedactionReason, client_error
from . import types as t


def allowed(ctx: Context, rule: str, purpose: str = "", *args: str) -> bool:
    """The policy's yes or no, asked through the operation's door (noted on its event)."""
    return ctx.door(purpose).allows(rule, *args)


def require(ctx: Context, rule: str, purpose: str, *args: str, why: str) -> None:
    """Refuse (FORBIDDEN) unless the policy allows `rule`."""
    if not allowed(ctx, rule, purpose, *args):
        raise client_error(f"not permitted: {why}", "FORBIDDEN")


def shows_accessor(ctx: Context, agency: str | None) -> bool:
    """Rule 16: a staff name on a notice of who read a child, as "previously accessed by"
    shows it (access.polar's `access.entry`: the reader's own agency and MASH managers)."""
    entry = ctx.door("").decide("notifications.actor", "access.entry", Labels(agency=agency or ""))
    return "staff_name" not in entry.hidden_fields


# What of a contact an actor sees (contacts.polar `see_contact`, rule 2).
DETAIL = "DETAIL"  # all of it: those who work the contact
QUEUE = "QUEUE"  # id, stage, RAG, due, assigned teams: the MASH council team, to allocate


def contact_view(ctx: Context, row: svc.ContactSnapshot, purpose: str) -> str | None:
    """Rule 2, asked of the policy with the actor's relationship to this contact (the
    `works_on` fact): DETAIL, QUEUE, or None for nothing at all. Every read of a contact
    and every change to one asks this."""
    relation = "WORKS_ON" if svc.works_on(row, ctx.actor) else "NONE"
    for seen in (DETAIL, QUEUE):
        if allowed(ctx, "see_contact", purpose, relation, seen):
            return seen
    return None


async def open_contact(
    ctx: Context, purpose: Purpose, contact_id: str, rule: str, why: str, *args: str
) -> svc.ContactSnapshot:
    """For a change to a contact: name the purpose and contact on the audit event, ask the
    policy for `rule`, then whether this actor works the contact (rule 2). Returns the
    contact as it stands.

    Raises:
        GraphQLError: FORBIDDEN when either answer is no (nothing is changed); NOT_FOUND
            when there is no such contact.
    """
    cid = svc.contact_uuid(contact_id)
    ctx.declare_purpose(purpose.value, cid)
    require(ctx, rule, purpose.value, *args, why=why)
    return await worked_contact(ctx, cid, purpose.value)


async def worked_contact(ctx: Context, contact_id: str, purpose: str) -> svc.ContactSnapshot:
    """The contact, named with its stage and children on the audit event (a refused attempt
    too), if this actor works it (rule 2: the policy's DETAIL view)."""
    row = await svc.read(ctx.services.store, contact_id)
    svc.describe(ctx.notes, row)
    if contact_view(ctx, row, purpose) != DETAIL:
        raise client_error("not permitted: this contact is not yours to work", "FORBIDDEN")
    return row


async def seen_contact(
    ctx: Context, contact_id: str, purpose: str
) -> tuple[svc.ContactSnapshot, str]:
    """The contact and how much of it this actor sees, named with its stage and children on
    the audit event (a refused attempt too), if the policy lets the actor see it at all."""
    row = await svc.read(ctx.services.store, contact_id)
    svc.describe(ctx.notes, row)
    seen = contact_view(ctx, row, purpose)
    if seen is None:
        raise client_error("not permitted: this contact is not yours to see", "FORBIDDEN")
    return row, seen


def view(
    ctx: Context, row: svc.ContactSnapshot, purpose: str, seen: str | None = None
) -> t.Contact:
    """The contact as this actor may see it (`seen`, or asked again after a change): the
    queue with every other field a typed redaction, noted on the audit event; or all of it,
    the referrer as rule 12 allows."""
    seen = seen or contact_view(ctx, row, purpose)
    if seen is None:
        raise client_error("not permitted: this contact is not yours to see", "FORBIDDEN")
    now = ctx.services.clock()
    if seen == QUEUE:
        for name in t.DETAIL_FIELDS:
            ctx.notes.redaction(f"contact.{name}", RedactionReason.NO_RELATIONSHIP.value)
        return t.queue_of(row, now, RedactionReason.NO_RELATIONSHIP)
    anonymity = "ANONYMOUS" if row.referrer_anonymous else "NAMED"
    show = allowed(ctx, "see_referrer", purpose, anonymity)
    if not show:
        ctx.notes.redaction("contact.referrer.name", "NOT_PERMITTED")
    return t.contact_of(row, now, show)


def details(child: t.ChildDetailsInput | None) -> tuple[dict[str, str], ...]:
    if child is None:
        return ()
    d = {
        "given_name": svc.text(child.given_name, "child.givenName", svc.MAX_SHORT, False),
        "family_name": svc.text(child.family_name, "child.familyName", svc.MAX_SHORT, False),
        "date_of_birth": child.date_of_birth.isoformat() if child.date_of_birth else None,
        "postcode": svc.text(child.postcode, "child.postcode", 10, False),
    }
    kept = {k: v for k, v in d.items() if v}
    return (kept,) if kept else ()
