"""Checks shared by the contact operations: the purpose on the audit event, then the policy's
yes or no (policies/contacts.polar). Messages never echo what the client typed."""

from __future__ import annotations

from hub import contacts as svc
from hub.context import Context
from hub.policy import Request
from hub.store import Contact as ContactRow

from ..common import Purpose, client_error
from . import types as t


def request(ctx: Context, purpose: str = "") -> Request:
    return Request(tuple(sorted(ctx.actor.roles)), ctx.actor.agency, purpose)


def allowed(ctx: Context, rule: str, purpose: str = "", *args: str) -> bool:
    ctx.audit.policy_version = ctx.services.policy.version
    return ctx.services.policy.allows(rule, request(ctx, purpose), *args)


def require(ctx: Context, rule: str, purpose: str, *args: str, why: str) -> None:
    """Refuse (FORBIDDEN) unless the policy allows `rule`."""
    if not allowed(ctx, rule, purpose, *args):
        raise client_error(f"not permitted: {why}", "FORBIDDEN")


def open_contact(ctx: Context, purpose: Purpose, contact_id: str, rule: str, why: str) -> str:
    """Name the purpose and contact on the audit event, then ask the policy."""
    cid = svc.contact_uuid(contact_id)
    ctx.declare_purpose(purpose.value, cid)
    require(ctx, rule, purpose.value, why=why)
    return cid


async def seen_contact(ctx: Context, contact_id: str, purpose: str) -> ContactRow:
    """The contact, named with its stage and children on the audit event (a refused attempt
    too), if the policy lets this actor see it (rule 2)."""
    row = await svc.get(ctx.services.store, contact_id)
    svc.describe(ctx.audit, row)
    if not may_see(ctx, row, purpose):
        raise client_error("not permitted: this contact is not yours to see", "FORBIDDEN")
    return row


def may_see(ctx: Context, row: ContactRow, purpose: str) -> bool:
    """Rule 2, asked of the policy with the actor's relationship to this contact."""
    relation = "WORKS_ON" if svc.works_on(row, ctx.actor) else "NONE"
    return allowed(ctx, "see_contact", purpose, relation)


def view(ctx: Context, row: ContactRow, purpose: str) -> t.Contact:
    anonymity = "ANONYMOUS" if row.referrer_anonymous else "NAMED"
    show = allowed(ctx, "see_referrer", purpose, anonymity)
    if not show:
        ctx.audit.add_redaction("contact.referrer.name", "NOT_PERMITTED")
    return t.contact_of(row, ctx.services.clock(), show)


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
