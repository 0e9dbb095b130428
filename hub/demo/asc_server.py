"""The demo adult social care API: REST/JSON over asc.sqlite3 with OAuth 2.0 client
credentials (PROTOCOL.md). Access tokens are random, opaque, kept in memory with an expiry."""

from __future__ import annotations

import base64
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from .fault_switch import FaultSwitch
from .storage import name_parts, postcode_key

TOKEN_TTL_S = 300
DEFAULT_PAGE, MAX_PAGE = 50, 200
_SEARCH_KEYS = ("nhs_number", "date_of_birth", "family_name", "postcode")
_PERSON_COLUMNS = "id, given_name, family_name, date_of_birth, sex, nhs_number, postcode, address"
_PERSON_KEYS = tuple(c.strip() for c in _PERSON_COLUMNS.split(","))
_INVOLVEMENT_KEYS = ("id", "person_id", "involvement_type", "status", "start", "end", "summary")


class _BadRequest(Exception):
    pass


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


def _error_body(status: int, message: str) -> tuple[str, bytes]:
    text = "invalid_token" if status == 401 else message
    return "application/json", json.dumps({"error": text}).encode()


def _encode_cursor(rowid: int) -> str:
    return base64.urlsafe_b64encode(f"a:{rowid}".encode()).decode().rstrip("=")


def _decode_cursor(token: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        kind, _, value = raw.partition(":")
        if kind != "a":
            raise ValueError(raw)
        return int(value)
    except ValueError:
        raise _BadRequest("invalid cursor") from None


def _page_size(request: Request) -> int:
    raw = request.query_params.get("page_size")
    if raw is None:
        return DEFAULT_PAGE
    try:
        return max(1, min(MAX_PAGE, int(raw)))
    except ValueError:
        raise _BadRequest("page_size must be an integer") from None


def _next(request: Request, rowid: int) -> str:
    items = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
    items.append(("cursor", _encode_cursor(rowid)))
    return str(request.url.replace(query=urlencode(items)))


def asc_app(data_dir: Path, *, allow_faults: bool = False) -> ASGIApp:
    """The demo adult social care API over data_dir/sources/asc.sqlite3."""
    folder = Path(data_dir) / "sources"
    path = folder / "asc.sqlite3"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run the seed first")
    client = json.loads((folder / "asc_client.json").read_text())
    uri = f"file:{path.resolve()}?mode=ro"
    local = threading.local()
    tokens: dict[str, float] = {}  # access token -> expiry (monotonic)
    lock = threading.Lock()

    def db() -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        return conn

    person_count = db().execute("SELECT count(*) FROM persons").fetchone()[0]

    def authorised(request: Request) -> bool:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not value:
            return False
        now = time.monotonic()
        with lock:
            expiry = tokens.get(value)
            if expiry is None or expiry < now:
                tokens.pop(value, None)
                return False
        return True

    async def token(request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("latin-1")).items()}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                client_id, _, client_secret = base64.b64decode(value).decode().partition(":")
            except ValueError:
                return _error(401, "invalid_client")
        if form.get("grant_type") != "client_credentials":
            return _error(400, "unsupported_grant_type")
        good = secrets.compare_digest(
            str(client_id or ""), client["client_id"]
        ) & secrets.compare_digest(str(client_secret or ""), client["client_secret"])
        if not good:
            return _error(401, "invalid_client")
        access = secrets.token_urlsafe(32)
        now = time.monotonic()
        with lock:
            for stale in [t for t, e in tokens.items() if e < now]:
                del tokens[stale]
            tokens[access] = now + TOKEN_TTL_S
        return JSONResponse(
            {"access_token": access, "token_type": "Bearer", "expires_in": TOKEN_TTL_S},
            headers={"Cache-Control": "no-store"},
        )

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "persons": person_count})

    def persons(request: Request) -> Response:
        params = request.query_params
        unknown = sorted(set(params.keys()) - {*_SEARCH_KEYS, "id", "page_size", "cursor"})
        if unknown:
            raise _BadRequest(f"unknown parameter(s): {', '.join(unknown)}")
        size = _page_size(request)
        where: list[str] = []
        args: list[Any] = []
        ids = [v for raw in params.getlist("id") for v in raw.split(",") if v]
        if ids:
            if len(ids) > 500:
                raise _BadRequest("at most 500 ids")
            where.append(f"id IN ({', '.join('?' * len(ids))})")
            args += ids
        for key in _SEARCH_KEYS:
            for raw in params.getlist(key):
                value = raw.strip()
                if key == "nhs_number":
                    where.append("nhs_number = ?")
                    args.append("".join(value.split()))
                elif key == "date_of_birth":
                    try:
                        args.append(date.fromisoformat(value).isoformat())
                    except ValueError:
                        raise _BadRequest("date_of_birth must be YYYY-MM-DD") from None
                    where.append("date_of_birth = ?")
                elif key == "postcode":
                    where.append("postcode_key = ?")
                    args.append(postcode_key(value) or "")
                else:
                    parts = name_parts(value)
                    if len(parts) == 1:
                        where.append("id IN (SELECT person_id FROM person_names WHERE part = ?)")
                        args.append(parts[0])
                    else:
                        where.append("family_key = ?")
                        args.append(" ".join(parts))
        cursor = params.get("cursor")
        if cursor:
            where.append("rowid > ?")
            args.append(_decode_cursor(cursor))
        sql = f"SELECT rowid, {_PERSON_COLUMNS} FROM persons"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = db().execute(sql + " ORDER BY rowid LIMIT ?", [*args, size + 1]).fetchall()
        more = len(rows) > size
        rows = rows[:size]
        items = [dict(zip(_PERSON_KEYS, r[1:], strict=True)) for r in rows]
        return JSONResponse({"items": items, "next": _next(request, rows[-1][0]) if more else None})

    def involvements(request: Request) -> Response:
        params = request.query_params
        unknown = sorted(set(params.keys()) - {"person_id", "page_size", "cursor"})
        if unknown:
            raise _BadRequest(f"unknown parameter(s): {', '.join(unknown)}")
        ids = [v for raw in params.getlist("person_id") for v in raw.split(",") if v]
        if not ids:
            raise _BadRequest("give at least one person_id")
        if len(ids) > 500:
            raise _BadRequest("at most 500 person_id values")
        size = _page_size(request)
        where = [f"person_id IN ({', '.join('?' * len(ids))})"]
        args: list[Any] = list(ids)
        cursor = params.get("cursor")
        if cursor:
            where.append("rowid > ?")
            args.append(_decode_cursor(cursor))
        sql = (
            'SELECT rowid, id, person_id, involvement_type, status, start, "end", summary '
            f"FROM involvements WHERE {' AND '.join(where)} ORDER BY rowid LIMIT ?"
        )
        rows = db().execute(sql, [*args, size + 1]).fetchall()
        more = len(rows) > size
        rows = rows[:size]
        items = [dict(zip(_INVOLVEMENT_KEYS, r[1:], strict=True)) for r in rows]
        return JSONResponse({"items": items, "next": _next(request, rows[-1][0]) if more else None})

    def guarded(handler: Callable[[Request], Response]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            if not authorised(request):
                return _error(401, "invalid_token", **{"WWW-Authenticate": "Bearer"})
            try:
                return await run_in_threadpool(handler, request)
            except _BadRequest as exc:
                return _error(400, str(exc))
            except sqlite3.Error:
                return _error(500, "store error")

        return endpoint

    async def not_found(request: Request) -> Response:
        if not authorised(request):
            return _error(401, "invalid_token", **{"WWW-Authenticate": "Bearer"})
        return _error(404, "not found")

    app: ASGIApp = Starlette(
        routes=[
            Route("/api/v1/health", health),
            Route("/api/v1/oauth/token", token, methods=["POST"]),
            Route("/api/v1/persons", guarded(persons)),
            Route("/api/v1/involvements", guarded(involvements)),
            Route("/api/v1/{rest:path}", not_found),
        ]
    )
    if allow_faults:
        app = FaultSwitch(app, _error_body)
    return app
