"""The manager's page (`/mash/`): the front door's queue and timeliness figures as charts.

For MASH managers signed in through `/auth` (hub.auth.login, hub.auth.session), the explorer's
session: without one the browser goes to the sign-in page; other roles get a 403 page.
Each view is one audited operation, like the GraphQL reads it stands for (`contacts` for
the queue, `contactKpis` for the figures): the same service calls (hub.contacts.workflow `find`,
hub.contacts.kpis `compute`), the same questions through the one policy door (`view_kpis`,
`read_contact`, `see_contact` with the QUEUE view), and the audit event committed before
the page is sent (no audit, no page). The queue shows what the MASH council team sees to
allocate: contact id, stage, RAG, due and assigned teams; no child, concern or referrer.

Charts are inline SVG drawn here (hub.pages.charts), each beside a table of its figures: no
script, and the page keeps the explorer's strict Content-Security-Policy. The period is a
GET form with from/to dates written en-GB (dd/mm/yyyy), read on the server (hub.pages.dates).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ..audit.events import AuditNotes, AuditUnavailable
from ..auth import login
from ..auth.session import Sessions
from ..auth.tokens import Actor
from ..contacts import kpis
from ..contacts import workflow as svc
from ..context import Access, Services
from ..state import AppState
from . import charts, dates

PATH = "/mash"
TEMPLATES = Path(__file__).resolve().parent / "templates" / "mash"
# The queue is read as the MASH reads it to allocate work: screening contact work.
PURPOSE = "MASH_SCREENING"
OPEN_STAGES = ("SCREENING", "RESEARCH", "DECISION")
QUEUE_LIMIT = 500  # per stage
DEFAULT_DAYS = 28
SECURITY_HEADERS = login.SECURITY_HEADERS
TONES = {"RED": "red", "AMBER": "amber", "GREEN": "green"}

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(enabled_extensions=("html",), default=True),
)


def routes(state: AppState) -> list[BaseRoute]:
    """The page's routes, to mount at `/mash`; `state` is the app's, filled at start-up."""
    page = ManagerPage(state)
    return [
        Route("/", page.index, methods=["GET"]),
        Route("/mash.css", page.stylesheet, methods=["GET"]),
    ]


def _render(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = _env.get_template(name).render(base=PATH, **context)
    return HTMLResponse(html, status, headers=SECURITY_HEADERS)


class PageError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class ManagerPage:
    def __init__(self, state: AppState) -> None:
        self.state = state

    @property
    def services(self) -> Services:
        services: Services = self.state.services
        return services

    async def _audit(self, notes: AuditNotes) -> None:
        try:
            await self.state.writer.write(notes.build())
        except AuditUnavailable:
            raise PageError(503, "The audit store is unavailable: nothing can be shown.") from None

    async def index(self, request: Request) -> Response:
        sessions: Sessions | None = self.state.sessions
        current = await sessions.from_request(request) if sessions else None
        if current is None:
            return RedirectResponse(f"{login.PATH}/login?next={PATH}/", 303)
        actor = current.actor
        notes = AuditNotes(actor)
        notes.operation("mash_page", "mash kpis", root_fields=["contacts", "contactKpis"])
        notes.purpose(PURPOSE, None)
        door = Access(self.services.policy, actor, PURPOSE, notes)
        params = request.query_params
        asked = {"from": params.get("from", ""), "to": params.get("to", "")}
        common: dict[str, Any] = {"actor": actor, "csrf": current.csrf, "asked": asked}
        try:
            if not (door.allows("view_kpis") and door.allows("read_contact")):
                notes.outcome("denied", "FORBIDDEN")
                await self._audit(notes)
                return _render(
                    "error.html", 403, message="This page is for MASH managers.", **common
                )
            now = self.services.clock()
            try:
                start, end = self._period(asked, now)
            except ValueError as exc:
                notes.outcome("invalid", "BAD_USER_INPUT")
                await self._audit(notes)
                message = str(exc)
                raise PageError(400, message[:1].upper() + message[1:] + ".") from None
            queue = await self._queue(door, actor, now)
            figures = await kpis.compute(self.services.store, start, end, now)
            await self._audit(notes)  # before anything is shown
        except PageError as exc:
            return _render("error.html", exc.status, message=exc.message, **common)
        return _render(
            "index.html",
            **common,
            period=(dates.day(start.date()), dates.day((end - timedelta(days=1)).date())),
            now=dates.moment(now.astimezone(self._zone)),
            queue=queue,
            figures=figures,
            **_charts(queue, figures),
        )

    async def stylesheet(self, request: Request) -> Response:
        return Response((TEMPLATES / "mash.css").read_text(), media_type="text/css")

    @property
    def _zone(self) -> ZoneInfo:
        return ZoneInfo(self.services.contacts.timezone)

    def _period(self, asked: Mapping[str, str], now: datetime) -> tuple[datetime, datetime]:
        """[from 00:00, the day after to 00:00) in the MASH's time zone; by default the
        last DEFAULT_DAYS days to today. Raises ValueError with a message to show."""
        today = now.astimezone(self._zone).date()
        last = dates.parse(asked["to"], "the 'to' date") if asked["to"] else today
        first = (
            dates.parse(asked["from"], "the 'from' date")
            if asked["from"]
            else last - timedelta(days=DEFAULT_DAYS - 1)
        )
        if first > last:
            raise ValueError("the 'from' date is after the 'to' date")

        def midnight(day: date) -> datetime:
            return datetime.combine(day, time(0), tzinfo=self._zone)

        return midnight(first), midnight(last + timedelta(days=1))

    async def _queue(self, door: Access, actor: Actor, now: datetime) -> list[dict[str, Any]]:
        """The open, undecided contacts this manager may see as the queue, soonest due
        first; each one's children are data subjects of the view's audit event."""
        rows: list[svc.ContactSnapshot] = []
        for stage in OPEN_STAGES:
            found = await svc.find(
                self.services.store, svc.ContactFilter(stage=stage), now, QUEUE_LIMIT
            )
            rows += [r for r in found if r.decided_at is None]
        today = now.astimezone(self._zone).date()
        queue = []
        for row in sorted(rows, key=lambda r: svc.as_utc(r.due_at)):
            relation = "WORKS_ON" if svc.works_on(row, actor) else "NONE"
            if not door.allows("see_contact", relation, "QUEUE"):
                continue
            for subject_id in row.child_ids:
                door.notes.subject(subject_id, "child")
            due = svc.as_utc(row.due_at).astimezone(self._zone)
            state = (
                "overdue" if svc.overdue(row, now) else "due today" if due.date() == today else ""
            )
            queue.append(
                {
                    "id": row.id,
                    "stage": row.stage,
                    "rag": row.rag,
                    "due": dates.moment(due),
                    "teams": ", ".join(map(str, row.assigned_teams)),
                    "state": state,
                }
            )
        return queue


@dataclass(frozen=True)
class RagCount:
    """Today's open contacts of one RAG rating."""

    rag: str
    open: int
    due_today: int
    overdue: int


def _hours(minutes: float | None) -> str:
    return "none" if minutes is None else f"{minutes / 60:.1f} h"


def _charts(queue: Sequence[Mapping[str, Any]], k: kpis.Kpis) -> dict[str, Any]:
    """The page's charts (inline SVG) and the rows of the tables beside them."""
    by_rag = []
    for rag in svc.RAGS:
        mine = [c for c in queue if c["rag"] == rag]
        late = sum(1 for c in mine if c["state"] == "overdue")
        today = sum(1 for c in mine if c["state"] == "due today")
        by_rag.append(RagCount(rag, len(mine), today, late))
    queue_bars = [
        bar
        for r in by_rag
        for bar in (
            charts.Bar(f"{r.rag} open", r.open, tone=TONES[r.rag]),
            charts.Bar(f"{r.rag} due today", r.due_today, tone=TONES[r.rag]),
            charts.Bar(f"{r.rag} overdue", r.overdue, tone="muted"),
        )
    ]
    timely = [
        charts.Bar(
            r.rag,
            r.percent_within_timescale or 0,
            f"{r.percent_within_timescale}% ({r.decided_within_timescale} of {r.decided} decided)"
            if r.percent_within_timescale is not None
            else "none judged yet",
            TONES[r.rag],
        )
        for r in k.by_rag
    ]
    first = k.contacts - k.re_referrals
    referrals = [
        charts.Bar("First contact in 12 months", first),
        charts.Bar("Re-referral", k.re_referrals, tone="amber"),
    ]
    outcomes = [charts.Bar(name, n) for name, n in k.outcomes.items()]
    agencies = [
        charts.Bar(
            a.agency.replace("_", " "),
            (a.median_response_minutes or 0) / 60,
            f"{_hours(a.median_response_minutes)} median ({a.completed} of {a.tasks} done)"
            if a.median_response_minutes is not None
            else f"no response yet ({a.tasks} tasks)",
        )
        for a in k.agencies
    ]
    return {
        "by_rag": by_rag,
        "queue_chart": charts.bars("queue-chart", "Today's queue by RAG", queue_bars),
        "timely_chart": charts.bars(
            "timeliness-chart", "Decided within timescale by RAG (%)", timely, scale=100
        ),
        "referrals_chart": charts.bars("referrals-chart", "Re-referrals", referrals),
        "outcomes_chart": charts.bars("outcomes-chart", "Outcome mix", outcomes),
        "agencies_chart": charts.bars(
            "agencies-chart", "Agency research response times (median hours)", agencies
        ),
        "median_decision": _hours(k.median_decision_minutes),
    }
