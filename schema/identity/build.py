"""Checks shared by the identity operations: who may decide links, and what a decision
needs. Messages never echo what the client typed."""

from __future__ import annotations

from adapters.base import Source
from hub.context import Access, Context
from hub.identity import decisions, residents
from hub.reading.reader import valid_contact_id

from ..child.build import subject_id
from ..common import Purpose, RedactionReason, client_error
from .types import HouseholdDecision, LinkDecision


async def open_decider(ctx: Context, purpose: Purpose, contact_id: str | None) -> Access:
    """Name the purpose, then check this actor may decide links for it (MASH roles)."""
    access = await ctx.access(purpose.value, valid_contact_id(contact_id))
    if not access.allows("decide_link"):
        raise client_error(
            "not permitted to decide identity links for this purpose (MASH roles only)",
            "FORBIDDEN",
        )
    return access


async def open_household_decider(
    ctx: Context, purpose: Purpose, contact_id: str | None, child_id: str
) -> Access:
    """Name the purpose, then check this actor may decide who is a child's household for it
    (MASH roles) and works this child (rule 2: the open contact about the child)."""
    access = await ctx.access(purpose.value, valid_contact_id(contact_id))
    if not access.allows("decide_household"):
        raise client_error(
            "not permitted to decide a child's household for this purpose (MASH roles only)",
            "FORBIDDEN",
        )
    relationship = access.relationship(child_id)
    if not relationship.allowed:
        why = RedactionReason(relationship.reason or "NOT_PERMITTED")
        access.notes.redaction("household", why.value)
        raise client_error(
            "not permitted to decide this child's household: work an open contact about them",
            "FORBIDDEN",
        )
    return access


def _valid_reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise client_error("give a reason for the decision", "BAD_USER_INPUT")
    if len(reason) > decisions.MAX_REASON:
        raise client_error(
            f"reason must be at most {decisions.MAX_REASON} characters", "BAD_USER_INPUT"
        )
    if not all(ch.isprintable() or ch in "\n\t" for ch in reason):
        raise client_error("reason may hold only printable text", "BAD_USER_INPUT")
    return reason


async def decide_household(
    ctx: Context,
    decision: str,
    child_id: str,
    resident_id: str,
    reason: str,
    purpose: Purpose,
    contact_id: str | None,
) -> HouseholdDecision:
    """Record an analyst's decision that a resident of the child's large shared address is
    (or is not) the child's household; the audit event names the child and the resident."""
    sid, rid = subject_id(child_id), subject_id(resident_id)
    ctx.notes.subject(sid, "child", primary=True)  # an attempt is audited too
    ctx.notes.subject(rid, "shared_address_resident")
    await open_household_decider(ctx, purpose, contact_id, sid)
    reason = _valid_reason(reason)
    if sid == rid:
        raise client_error("a child is not their own household member", "BAD_USER_INPUT")
    if not await residents.subjects_exist(ctx.services.store, sid, rid):
        raise client_error("no child or resident with this id", "NOT_FOUND")
    # Recorded in the audit event's transaction: the decision and its audit event commit
    # together before the response is sent, or neither does.
    decided, write = residents.staged_decision(
        sid, rid, decision, reason, ctx.actor.subject, ctx.actor.agency, contact_id
    )
    ctx.notes.staged(write)
    return HouseholdDecision.of(decided)


def _valid_record_id(source_record_id: str) -> bool:
    return 0 < len(source_record_id) <= decisions.MAX_RECORD_ID and source_record_id.isprintable()


async def decide(
    ctx: Context,
    decision: str,
    child_id: str,
    source: Source,
    source_record_id: str,
    reason: str,
    purpose: Purpose,
    contact_id: str | None,
) -> LinkDecision:
    """Record an analyst's decision; the audit event names the child and the source record."""
    sid = subject_id(child_id)
    ctx.notes.subject(sid, "child", primary=True)  # an attempt is audited too
    if _valid_record_id(source_record_id):
        ctx.notes.subject(
            decisions.target_id(source, source_record_id), "link_target", primary=True
        )
    await open_decider(ctx, purpose, contact_id)
    if not _valid_record_id(source_record_id):
        raise client_error(
            f"sourceRecordId must be 1 to {decisions.MAX_RECORD_ID} printable characters",
            "BAD_USER_INPUT",
        )
    reason = _valid_reason(reason)
    if source not in ctx.services.records.adapters:
        raise client_error("this source is not configured in this hub", "BAD_USER_INPUT")
    if not await decisions.subject_exists(ctx.services.store, sid):
        raise client_error("no child with this id", "NOT_FOUND")
    # Recorded in the audit event's transaction: the decision and its audit event commit
    # together before the response is sent, or neither does.
    decided, write = decisions.staged_decision(
        sid,
        source,
        source_record_id,
        decision,
        reason,
        ctx.actor.subject,
        ctx.actor.agency,
        contact_id,
    )
    ctx.notes.staged(write)
    return LinkDecision.of(decided)
