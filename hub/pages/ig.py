"""The IG web page (`/ig`): the audit reports for information governance, server-rendered.

Authentication is the same as `/graphql`: the session of someone who signed in through
`/auth` (hub.auth.login, hub.auth.session), or a bearer JWT from a trusted issuer, checked on every
page. A browser cannot send a header, so without a session the IG officer pastes the token
into the login form once; it is kept in an HttpOnly, SameSite=Strict cookie scoped to `/ig` (Secure
except on loopback http) and verified again on each request, so it expires with the token.
Only actors the `read_audit_log` policy allows get past the login. Forms that change state
(login, logout) carry a double-submit CSRF token and must come from the same origin;
report pages are GETs and, like the GraphQL reports, each view is audited before it is
sent (no audit, no page). Jinja2 autoescapes everything.

A subject access request names a person, not a hub id: the lookup form (`POST /ig/find`,
a post so that no name or NHS number is put in a URL) finds the id (hub/ig/lookup.py, the
`find_subjects` policy, purpose SAR_RESPONSE), audited with how it looked and whom it
found, never what was typed, and shows the ids only. Dates are read and shown en-GB
(hub/pages/dates.py); the subject access report charts the accesses over time (hub/pages/charts.py).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ..audit.events import AuditNotes, AuditUnavailable
from ..auth import login, session
from ..auth.session import COOKIE as SESSION_COOKIE
from ..auth.session import Sessions
from ..auth.tokens import Actor, AuthError
from ..context import Access, Services
from ..ig import lookup, reports
from ..state import AppState
from . import charts, dates

TEMPLATES = Path(__file__).resolve().parent / "templates" / "ig"
TOKEN_COOKIE, CSRF_COOKIE = "mash_ig_token", "mash_ig_csrf"
PATH = "/ig"
MAX_FORM = 16 * 1024
PAGE_SIZE = 100  # rows per report page
FORM_TYPE = "application/x-www-form-urlencoded"
IG_PURPOSE = "IG_AUDIT"
FILTER_LABELS = {
    "subject_id": "Subject (hub id)",
    "actor_subject": "User (token subject)",
    "since": "From (dd/mm/yyyy)",
    "until": "To (dd/mm/yyyy, inclusive)",
    "unreviewed_only": "Not yet reviewed only",
}
# The registers' tables: (heading, row attribute) by the kind of row a report returns.
COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "grants": (
        ("Granted", "granted_at"),
        ("Expires", "expires_at"),
        ("User", "actor_subject"),
        ("Agency", "actor_agency"),
        ("Team", "actor_team"),
        ("Child (hub id)", "subject_id"),
        ("Reason", "reason_code"),
        ("Justification", "justification"),
        ("Reads under it", "reads"),
        ("Review", "review_outcome"),
        ("Reviewed by", "reviewed_by"),
        ("Reviewed", "reviewed_at"),
    ),
    "overrides": (
        ("Authorised", "authorised_at"),
        ("Contact", "contact_id"),
        ("Children (hub ids)", "subject_ids"),
        ("Authorised by", "authorised_by"),
        ("Role", "authoriser_role"),
        ("Reason", "reason_code"),
    ),
    "withheld": (
        ("Recorded", "withheld_at"),
        ("Agency", "agency"),
        ("Source", "source"),
        ("Item", "item_id"),
        ("Contact", "contact_id"),
        ("Children (hub ids)", "subject_ids"),
        ("By", "withheld_by"),
        ("Reason", "reason_code"),
    ),
    "contacts": (
        ("Received", "received_at"),
        ("Contact", "contact_id"),
        ("Children (hub ids)", "subject_ids"),
        ("RAG", "rag"),
        ("Target (hours)", "target_hours"),
        ("Due", "due_at"),
        ("Decided", "decided_at"),
        ("Decision", "decision"),
        ("Stage", "stage"),
        ("Hours", "hours"),
        ("Within target", "within_target"),
    ),
}
ANOMALIES = "anomalies"
SECURITY_HEADERS = login.SECURITY_HEADERS

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(enabled_extensions=("html",), default=True),
)


def routes(state: AppState) -> list[BaseRoute]:
    """The page's routes, to mount at `/ig`. `state` is the app's (verifier, services,
    writer), filled at start-up."""
    page = IgPage(state)
    return [
        Route("/", page.index, methods=["GET"]),
        Route("/login", page.login_form, methods=["GET"]),
        Route("/login", page.login, methods=["POST"]),
        Route("/logout", page.logout, methods=["POST"]),
        Route("/report/{name}", page.report, methods=["GET"]),
        Route("/find", page.find, methods=["POST"]),
        Route("/ig.css", page.stylesheet, methods=["GET"]),
    ]


class PageError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _render(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = _env.get_template(name).render(base=PATH, **context)
    return HTMLResponse(html, status, headers=SECURITY_HEADERS)


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None  # a missing Origin (older browsers) relies on SameSite + token
    return origin == session.own_origin(request)


class IgPage:
    def __init__(self, state: AppState) -> None:
        self.state = state

    @property
    def services(self) -> Services:
        services: Services = self.state.services
        return services

    # --- authentication -------------------------------------------------------------

    async def _actor(self, request: Request) -> Actor | None:
        token = request.cookies.get(TOKEN_COOKIE)
        if not token:  # signed in through /auth instead: the hub's session cookie
            sessions: Sessions | None = self.state.sessions
            current = await sessions.from_request(request) if sessions else None
            return current.actor if current else None
        try:
            actor: Actor = await self.state.verifier.verify(token)
        except AuthError:
            return None
        return actor

    def _csrf(self, request: Request) -> str:
        return request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)

    def _with_csrf(self, response: Response, request: Request, value: str) -> Response:
        if request.cookies.get(CSRF_COOKIE) != value:
            response.set_cookie(
                CSRF_COOKIE,
                value,
                httponly=True,
                samesite="strict",
                secure=session.secure(request),
                path=PATH,
            )
        return response

    async def _checked_form(self, request: Request) -> dict[str, str]:
        """The posted form's fields, once its CSRF token and origin check out. The forms
        are small url-encoded ones, parsed here (bounded) rather than by a multipart
        parser."""
        if request.headers.get("content-type", "").split(";")[0].strip() != FORM_TYPE:
            raise PageError(415, "Send the form from this page.")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM:
                raise PageError(413, "The form is too large.")
        try:
            fields = parse_qs(body.decode(), max_num_fields=8, strict_parsing=False)
        except (UnicodeDecodeError, ValueError):
            raise PageError(400, "The form could not be read.") from None
        values = {k: v[0] for k, v in fields.items()}
        expected = request.cookies.get(CSRF_COOKIE, "")
        given = values.get("csrf", "")
        if not (expected and hmac.compare_digest(expected, given) and _same_origin(request)):
            raise PageError(403, "The form expired or came from another site: try again.")
        return values

    def _allowed(self, actor: Actor, notes: AuditNotes) -> bool:
        notes.actor = actor
        notes.purpose(IG_PURPOSE, None)
        return Access(self.services.policy, actor, IG_PURPOSE, notes).allows("read_audit_log")

    def _may_find(self, actor: Actor, notes: AuditNotes) -> bool:
        notes.actor = actor
        notes.purpose(lookup.PURPOSE, None)
        door = Access(self.services.policy, actor, lookup.PURPOSE, notes)
        return door.allows("find_subjects")

    async def _audit(self, notes: AuditNotes) -> None:
        try:
            await self.state.writer.write(notes.build())
        except AuditUnavailable:
            raise PageError(503, "The audit store is unavailable: nothing can be shown.") from None

    # --- pages ------------------------------------------------------------------------

    async def login_form(self, request: Request) -> Response:
        csrf = self._csrf(request)
        return self._with_csrf(_render("login.html", csrf=csrf), request, csrf)

    async def login(self, request: Request) -> Response:
        try:
            form = await self._checked_form(request)
            notes = AuditNotes()
            notes.operation("ig_page", "ig login")
            try:
                actor = await self.state.verifier.verify(form.get("token", "").strip())
            except AuthError:
                notes.outcome("unauthenticated", "UNAUTHENTICATED")
                await self._audit(notes)
                raise PageError(401, "The token was not accepted.") from None
            if not self._allowed(actor, notes):
                notes.outcome("denied", "FORBIDDEN")
                await self._audit(notes)
                raise PageError(403, "This page is for information governance roles only.")
            await self._audit(notes)
        except PageError as exc:
            csrf = self._csrf(request)
            page = _render("login.html", exc.status, csrf=csrf, error=exc.message)
            return self._with_csrf(page, request, csrf)
        response = RedirectResponse(f"{PATH}/", 303, headers=SECURITY_HEADERS)
        response.set_cookie(
            TOKEN_COOKIE,
            form["token"].strip(),
            httponly=True,
            samesite="strict",
            secure=session.secure(request),
            path=PATH,
        )
        return response

    async def logout(self, request: Request) -> Response:
        try:
            await self._checked_form(request)
        except PageError as exc:
            return _render("error.html", exc.status, message=exc.message)
        response = RedirectResponse(f"{PATH}/login", 303, headers=SECURITY_HEADERS)
        response.delete_cookie(TOKEN_COOKIE, path=PATH)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    async def index(self, request: Request) -> Response:
        actor = await self._actor(request)
        if actor is None:
            return RedirectResponse(f"{PATH}/login", 303, headers=SECURITY_HEADERS)
        if not self._allowed(actor, AuditNotes(actor)):
            return _render("error.html", 403, message="This page is for IG roles only.")
        csrf = self._csrf(request)
        page = _render("index.html", actor=actor, reports=self._menu(), csrf=csrf, values={})
        return self._with_csrf(page, request, csrf)

    async def report(self, request: Request) -> Response:
        actor = await self._actor(request)
        if actor is None:
            return RedirectResponse(f"{PATH}/login", 303, headers=SECURITY_HEADERS)
        name = request.path_params["name"]
        if name not in reports.REPORTS and name != ANOMALIES:
            return _render("error.html", 404, message="There is no such report.")
        notes = AuditNotes(actor)
        notes.operation("ig_page", f"ig {name}")
        csrf = self._csrf(request)
        params = request.query_params
        values = {k: params.get(k, "") for k in FILTER_LABELS}
        try:
            if not self._allowed(actor, notes):
                notes.outcome("denied", "FORBIDDEN")
                await self._audit(notes)
                raise PageError(403, "This page is for information governance roles only.")
            try:
                filters = self._filters(values)
                filters.note(notes, name)
                page_request = reports.PageRequest(PAGE_SIZE, params.get("after") or None)
                if name != ANOMALIES:
                    missing = [f for f in reports.REPORTS[name].required if not values.get(f)]
                    if missing:
                        raise ValueError(f"give the {FILTER_LABELS[missing[0]].lower()}")
            except ValueError as exc:
                notes.outcome("invalid", "BAD_USER_INPUT")
                await self._audit(notes)
                raise PageError(400, str(exc)) from None
            await self._audit(notes)  # before anything from the log is shown
            context = await self._run(name, filters, page_request, values)
        except PageError as exc:
            return _render(
                "index.html",
                exc.status,
                actor=actor,
                reports=self._menu(),
                csrf=csrf,
                error=exc.message,
                selected=name,
                values=values,
            )
        page = _render(
            "report.html",
            actor=actor,
            reports=self._menu(),
            csrf=csrf,
            selected=name,
            values=values,
            **context,
        )
        return self._with_csrf(page, request, csrf)

    async def find(self, request: Request) -> Response:
        """The lookup: the ids of the people matching what the requester gave, nothing else
        about them. Audited (purpose SAR_RESPONSE) whether it finds anyone, is refused or is
        malformed; the typed values are neither recorded nor shown again."""
        actor = await self._actor(request)
        if actor is None:
            return RedirectResponse(f"{PATH}/login", 303, headers=SECURITY_HEADERS)
        csrf = self._csrf(request)
        notes = AuditNotes(actor)
        notes.operation("ig_page", f"ig {lookup.REPORT}")
        lookup.note(notes, None)
        try:
            form = await self._checked_form(request)
            if not self._may_find(actor, notes):
                notes.outcome("denied", "FORBIDDEN")
                await self._audit(notes)
                raise PageError(403, "Finding people is for information governance roles only.")
            try:
                query = _subject_query(form)
            except ValueError as exc:
                notes.outcome("invalid", "BAD_USER_INPUT")
                await self._audit(notes)
                raise PageError(400, _sentence(str(exc))) from None
            found = await lookup.find_subjects(self.services.store, query)
            lookup.note(notes, query, found)
            await self._audit(notes)  # before any id is shown
        except PageError as exc:
            page = _render(
                "index.html",
                exc.status,
                actor=actor,
                reports=self._menu(),
                csrf=csrf,
                lookup_error=exc.message,
                values={},
            )
            return self._with_csrf(page, request, csrf)
        page = _render(
            "index.html",
            actor=actor,
            reports=self._menu(),
            csrf=csrf,
            found=found,
            found_by="NHS number" if query.kind == lookup.NHS_NUMBER else "name and date of birth",
            values={},
        )
        return self._with_csrf(page, request, csrf)

    async def stylesheet(self, request: Request) -> Response:
        return Response((TEMPLATES / "ig.css").read_text(), media_type="text/css")

    # --- helpers ----------------------------------------------------------------------

    def _menu(self) -> list[dict[str, Any]]:
        menu: list[tuple[str, str, tuple[str, ...], tuple[str, ...]]] = [
            (r.name, r.title, r.filters, r.required) for r in reports.REPORTS.values()
        ]
        menu.append(
            (
                ANOMALIES,
                "Anomalies: out-of-hours access, unusual volume, flagged child read with no "
                "open contact",
                ("actor_subject", "since", "until"),
                (),
            )
        )
        return [
            {
                "name": name,
                "title": title,
                "labels": {f: FILTER_LABELS[f] for f in filters},
                "required": required,
            }
            for name, title, filters, required in menu
        ]

    def _filters(self, values: Mapping[str, str]) -> reports.Filters:
        zone = self.services.ig.zone

        def moment(field: str, end: bool) -> datetime | None:
            text = values.get(field, "")
            if not text:
                return None
            day = dates.parse(text, "the 'from' date" if field == "since" else "the 'to' date")
            start = datetime.combine(day, time(0), tzinfo=zone)  # the IG office's day
            return start + timedelta(days=1) if end else start

        return reports.Filters(
            subject_id=values.get("subject_id") or None,
            actor_subject=values.get("actor_subject") or None,
            since=moment("since", end=False),
            until=moment("until", end=True),
            unreviewed_only=values.get("unreviewed_only") in ("on", "true", "1"),
        )

    async def _accesses_chart(self, filters: reports.Filters) -> dict[str, Any]:
        """The subject's accesses per day (or week), as a chart and its table."""
        times = await reports.access_times(self.services.store, filters)
        unit, counts = charts.over_time(times, self.services.ig.zone)
        items = [charts.Bar(dates.day(start), n) for start, n in counts]
        title = (
            f"Accesses per {unit} (the {unit} starting)" if unit == "week" else "Accesses per day"
        )
        return {
            "accesses_title": title,
            "accesses_chart": charts.columns("accesses-chart", title, items),
            "accesses": items,
        }

    async def _run(
        self,
        name: str,
        filters: reports.Filters,
        page: reports.PageRequest,
        values: Mapping[str, str],
    ) -> dict[str, Any]:
        store, zone = self.services.store, self.services.ig.zone

        def local(moment: datetime | None) -> str:
            at = reports.utc(moment)
            return dates.moment(at.astimezone(zone)) if at else ""

        def cell(value: Any) -> str:
            if isinstance(value, datetime):
                return local(value)
            if isinstance(value, bool):
                return "yes" if value else "no"
            if isinstance(value, tuple | list):
                return ", ".join(map(str, value))
            return "" if value is None else str(value)

        if name == ANOMALIES:
            found = await reports.anomalies(store, filters, self.services.ig, self.services.clock())
            return {
                "title": "Anomalies",
                "anomalies": found.anomalies,
                "window": (local(found.since), local(found.until)),
                "truncated": found.truncated,
                "local": local,
            }
        report = reports.REPORTS[name]
        env = reports.Env(self.services.clock(), self.services.contacts)
        result = await report.run(store, filters, page, env)
        asked = {k: v for k, v in values.items() if v}
        chart = await self._accesses_chart(filters) if name == "subject_access" else {}
        return chart | {
            "next_query": urlencode(asked | {"after": result.end_cursor})
            if result.has_next_page
            else None,
            "title": report.title,
            "rows": result.rows,
            "total": result.total_count,
            "subject_access": name == "subject_access",
            "columns": COLUMNS.get(report.rows),
            "summary": result.summary,
            "cell": cell,
            "local": local,
            "now": local(datetime.now(UTC)),
        }


def _subject_query(form: Mapping[str, str]) -> lookup.SubjectQuery:
    """What the lookup form gave, the date of birth read en-GB. Raises ValueError."""
    given = {k: form.get(k, "").strip() for k in ("nhs_number", "given_name", "family_name")}
    born = form.get("date_of_birth", "").strip()
    return lookup.SubjectQuery(
        nhs_number=given["nhs_number"] or None,
        given_name=given["given_name"] or None,
        family_name=given["family_name"] or None,
        date_of_birth=dates.parse(born, "the date of birth") if born else None,
    )


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:] + "."
