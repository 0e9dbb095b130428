"""The demo health record: a read-only FHIR R4 server over health.sqlite3 (PROTOCOL.md).

Every request runs indexed queries on its own thread's read-only SQLite connection (in the
thread pool, so the event loop is never blocked); stored resources are spliced into the
Bundle as the JSON they are, never parsed. Pages are walked by rowid with an opaque cursor.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .fault_switch import FaultSwitch
from .storage import NHS_NUMBER_SYSTEM, name_parts, postcode_key

FHIR_JSON = "application/fhir+json"
DEFAULT_COUNT, MAX_COUNT = 50, 200
_PATIENT_PARAMS = {
    "identifier",
    "birthdate",
    "family",
    "address-postalcode",
    "_id",
    "_count",
    "_revinclude",
    "_cursor",
    "_format",
}
_BY_PATIENT_PARAMS = {"patient", "subject", "_count", "_cursor", "_format"}
_REVINCLUDES = {
    "Encounter:patient": "encounters",
    "Encounter:subject": "encounters",
    "CarePlan:patient": "careplans",
    "CarePlan:subject": "careplans",
}


class BadRequest(Exception):
    pass


def outcome(status: int, code: str, diagnostics: str) -> Response:
    return Response(
        json.dumps(
            {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}],
            }
        ),
        status_code=status,
        media_type=FHIR_JSON,
    )


def _error_body(status: int, message: str) -> tuple[str, bytes]:
    code = {401: "login", 429: "throttled"}.get(status, "exception")
    return FHIR_JSON, bytes(outcome(status, code, message).body)


class _Store:
    """Per-thread read-only connections to health.sqlite3."""

    def __init__(self, path: Path) -> None:
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: run the seed first")
        self.uri = f"file:{path.resolve()}?mode=ro"
        self.local = threading.local()

    def db(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self.local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.uri, uri=True, check_same_thread=False)
            self.local.conn = conn
        return conn


def _encode_cursor(rowid: int) -> str:
    return base64.urlsafe_b64encode(f"r:{rowid}".encode()).decode().rstrip("=")


def _decode_cursor(token: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        kind, _, value = raw.partition(":")
        if kind != "r":
            raise ValueError(raw)
        return int(value)
    except ValueError:
        raise BadRequest("invalid page cursor") from None


def _values(request: Request, name: str) -> list[list[str]]:
    """Repeated parameters AND together; commas inside one value OR together."""
    return [[v for v in raw.split(",") if v != ""] for raw in request.query_params.getlist(name)]


def _count(request: Request) -> int:
    raw = request.query_params.get("_count")
    if raw is None:
        return DEFAULT_COUNT
    try:
        return max(1, min(MAX_COUNT, int(raw)))
    except ValueError:
        raise BadRequest("_count must be an integer") from None


def _check_params(request: Request, allowed: set[str]) -> None:
    unknown = sorted(set(request.query_params.keys()) - allowed)
    if unknown:
        raise BadRequest(f"Unknown search parameter(s): {', '.join(unknown)}")


def _in(column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
    return f"{column} IN ({', '.join('?' * len(values))})", list(values)


def _patient_conditions(request: Request) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    args: list[Any] = []

    def add(clauses: list[tuple[str, list[Any]]]) -> None:
        if not clauses:
            where.append("0")
            return
        where.append("(" + " OR ".join(c for c, _ in clauses) + ")")
        for _, a in clauses:
            args.extend(a)

    for tokens in _values(request, "identifier"):
        numbers = []
        for token in tokens:
            system, sep, value = token.rpartition("|")
            if sep and system and system != NHS_NUMBER_SYSTEM:
                continue
            numbers.append("".join(value.split()))
        add([_in("nhs_number", numbers)] if numbers else [])
    for tokens in _values(request, "birthdate"):
        days = []
        for token in tokens:
            token = token[2:] if token.startswith("eq") else token
            try:
                days.append(date.fromisoformat(token).isoformat())
            except ValueError:
                raise BadRequest("birthdate must be YYYY-MM-DD (prefix eq only)") from None
        add([_in("birth_date", days)])
    # With a more selective key in the same search, test the name on the few rows that key
    # finds (EXISTS per row) instead of collecting every patient whose name has the prefix.
    narrowed = any(request.query_params.get(k) for k in ("birthdate", "identifier", "_id"))
    for tokens in _values(request, "family"):
        clauses = []
        for token in tokens:
            parts = name_parts(token)
            if len(parts) == 1:
                lo = parts[0]
                if narrowed:  # family_key: the parts joined by spaces
                    clauses.append(
                        ("(family_key LIKE ? OR family_key LIKE ?)", [f"{lo}%", f"% {lo}%"])
                    )
                else:
                    clauses.append(
                        (
                            "id IN (SELECT patient_id FROM patient_names "
                            "WHERE part >= ? AND part < ?)",
                            [lo, lo + "\uffff"],
                        )
                    )
            elif parts:
                lo = " ".join(parts)
                clauses.append(("(family_key >= ? AND family_key < ?)", [lo, lo + "\uffff"]))
        add(clauses)
    for tokens in _values(request, "address-postalcode"):
        clauses = []
        for token in tokens:
            key = postcode_key(token)
            if key:
                clauses.append(("(postcode >= ? AND postcode < ?)", [key, key + "\uffff"]))
        add(clauses)
    for tokens in _values(request, "_id"):
        add([_in("id", tokens)])
    return where, args


def _next_url(request: Request, cursor: str) -> str:
    items = [(k, v) for k, v in request.query_params.multi_items() if k != "_cursor"]
    items.append(("_cursor", cursor))
    return str(request.url.replace(query=urlencode(items)))


def _bundle(
    request: Request, entries_in: list[tuple[str, str, str, str]], next_url: str | None
) -> Response:
    """entries_in: (resource type, id, resource JSON as stored, search mode)."""
    base = f"{request.url.scheme}://{request.url.netloc}/fhir"
    links = [{"relation": "self", "url": str(request.url)}]
    if next_url:
        links.append({"relation": "next", "url": next_url})
    entries = ",".join(
        f'{{"fullUrl":"{base}/{kind}/{rid}","resource":{raw},"search":{{"mode":"{mode}"}}}}'
        for kind, rid, raw, mode in entries_in
    )
    head = json.dumps({"resourceType": "Bundle", "type": "searchset", "link": links})
    return Response(f'{head[:-1]},"entry":[{entries}]}}', media_type=FHIR_JSON)


def _capability_statement() -> dict[str, Any]:
    def params(*names: tuple[str, str]) -> list[dict[str, str]]:
        return [{"name": n, "type": t} for n, t in names]

    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-26",
        "kind": "instance",
        "software": {"name": "MASH Hub demo health record"},
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "resource": [
                    {
                        "type": "Patient",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": params(
                            ("identifier", "token"),
                            ("birthdate", "date"),
                            ("family", "string"),
                            ("address-postalcode", "string"),
                            ("_id", "token"),
                        ),
                        "searchRevInclude": ["Encounter:patient", "CarePlan:patient"],
                    },
                    {
                        "type": "Encounter",
                        "interaction": [{"code": "search-type"}],
                        "searchParam": params(("patient", "reference"), ("subject", "reference")),
                    },
                    {
                        "type": "CarePlan",
                        "interaction": [{"code": "search-type"}],
                        "searchParam": params(("patient", "reference"), ("subject", "reference")),
                    },
                ],
            }
        ],
    }


class _BearerToken:
    """Every path but /fhir/metadata needs `Authorization: Bearer <token>`."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app, self.expected = app, f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in ("/fhir/metadata", "/_fault"):
            given = dict(scope.get("headers", [])).get(b"authorization", b"")
            if given != self.expected:
                await outcome(401, "login", "Bearer token required")(scope, receive, send)
                return
        await self.app(scope, receive, send)


def fhir_app(data_dir: Path, *, token: str | None = None, allow_faults: bool = False) -> ASGIApp:
    """The demo FHIR R4 server over data_dir/sources/health.sqlite3."""
    store = _Store(Path(data_dir) / "sources" / "health.sqlite3")

    def patient_search(request: Request) -> Response:
        _check_params(request, _PATIENT_PARAMS)
        count = _count(request)
        revincludes = []
        for raw in request.query_params.getlist("_revinclude"):
            if raw not in _REVINCLUDES:
                raise BadRequest(f"Unsupported _revinclude: {raw}")
            revincludes.append(_REVINCLUDES[raw])
        where, args = _patient_conditions(request)
        cursor = request.query_params.get("_cursor")
        if cursor:
            where.append("rowid > ?")
            args.append(_decode_cursor(cursor))
        sql = "SELECT rowid, id, resource FROM patients"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY rowid LIMIT ?"
        db = store.db()
        rows = db.execute(sql, [*args, count + 1]).fetchall()
        more = len(rows) > count
        rows = rows[:count]
        matches = [("Patient", r[1], r[2], "match") for r in rows]
        ids = [r[1] for r in rows]
        for table in dict.fromkeys(revincludes):
            kind = "Encounter" if table == "encounters" else "CarePlan"
            for start in range(0, len(ids), 500):
                clause, a = _in("patient_id", ids[start : start + 500])
                matches += [
                    (kind, rid, raw, "include")
                    for rid, raw in db.execute(
                        f"SELECT id, resource FROM {table} WHERE {clause} ORDER BY rowid", a
                    )
                ]
        next_url = _next_url(request, _encode_cursor(rows[-1][0])) if more else None
        return _bundle(request, matches, next_url)

    def patient_read(request: Request) -> Response:
        row = (
            store.db()
            .execute("SELECT resource FROM patients WHERE id = ?", (request.path_params["id"],))
            .fetchone()
        )
        if row is None:
            return outcome(404, "not-found", "Patient not found")
        return Response(row[0], media_type=FHIR_JSON)

    def by_patient(kind: str, table: str) -> Callable[[Request], Response]:
        def search(request: Request) -> Response:
            _check_params(request, _BY_PATIENT_PARAMS)
            count = _count(request)
            where: list[str] = []
            args: list[Any] = []
            for tokens in _values(request, "patient") + _values(request, "subject"):
                clause, a = _in("patient_id", [t.rsplit("/", 1)[-1] for t in tokens])
                where.append(clause)
                args += a
            cursor = request.query_params.get("_cursor")
            if cursor:
                where.append("rowid > ?")
                args.append(_decode_cursor(cursor))
            sql = f"SELECT rowid, id, resource FROM {table}"
            if where:
                sql += " WHERE " + " AND ".join(where)
            rows = store.db().execute(sql + " ORDER BY rowid LIMIT ?", [*args, count + 1])
            found = rows.fetchall()
            more = len(found) > count
            found = found[:count]
            next_url = _next_url(request, _encode_cursor(found[-1][0])) if more else None
            return _bundle(request, [(kind, r[1], r[2], "match") for r in found], next_url)

        return search

    def threaded(handler: Callable[[Request], Response]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            try:
                return await run_in_threadpool(handler, request)
            except BadRequest as exc:
                return outcome(400, "invalid", str(exc))
            except sqlite3.Error:
                return outcome(500, "exception", "store error")

        return endpoint

    async def metadata(request: Request) -> Response:
        return Response(json.dumps(_capability_statement()), media_type=FHIR_JSON)

    async def unknown(request: Request) -> Response:
        return outcome(404, "not-supported", "Unknown resource type or interaction")

    app: ASGIApp = Starlette(
        routes=[
            Route("/fhir/metadata", metadata),
            Route("/fhir/Patient", threaded(patient_search)),
            Route("/fhir/Patient/{id}", threaded(patient_read)),
            Route("/fhir/Encounter", threaded(by_patient("Encounter", "encounters"))),
            Route("/fhir/CarePlan", threaded(by_patient("CarePlan", "careplans"))),
            Route("/fhir/{rest:path}", unknown),
        ]
    )
    if token:
        app = _BearerToken(app, token)
    if allow_faults:
        app = FaultSwitch(app, _error_body)
    return app
