"""The demo education API: REST/JSON over education.sqlite3 (hub.demo.education_seed), with
an API key in `X-API-Key` (the seeder writes it to sources/education_api.json). The paging
and search keys follow the adult social care API (PROTOCOL.md); records are typed by
`record_type` and carry their pupil's `location_restricted`."""

from __future__ import annotations

import base64
import json
import secrets
import sqlite3
import threading
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from .fault_switch import FaultSwitch
from .storage import name_parts, postcode_key

DEFAULT_PAGE, MAX_PAGE = 50, 200
_SEARCH_KEYS = ("nhs_number", "date_of_birth", "family_name", "postcode")
_PUPIL_COLUMNS = (
    "id, given_name, family_name, date_of_birth, sex, postcode, address, location_restricted"
)
_PUPIL_KEYS = tuple(c.strip() for c in _PUPIL_COLUMNS.split(","))


class _BadRequest(Exception):
    pass


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _error_body(status: int, message: str) -> tuple[str, bytes]:
    return "application/json", json.dumps({"error": message}).encode()


def _cursor(token: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        kind, _, value = raw.partition(":")
        if kind != "e":
            raise ValueError(raw)
        return int(value)
    except ValueError:
        raise _BadRequest("invalid cursor") from None


def _page(request: Request, rows: list[Any], size: int, keys: Any) -> Response:
    more = len(rows) > size
    rows = rows[:size]
    items = [keys(r) for r in rows]
    next_url = None
    if more:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
        token = base64.urlsafe_b64encode(f"e:{rows[-1][0]}".encode()).decode().rstrip("=")
        next_url = str(request.url.replace(query=urlencode([*params, ("cursor", token)])))
    return JSONResponse({"items": items, "next": next_url})


def _size(request: Request) -> int:
    raw = request.query_params.get("page_size")
    try:
        return DEFAULT_PAGE if raw is None else max(1, min(MAX_PAGE, int(raw)))
    except ValueError:
        raise _BadRequest("page_size must be an integer") from None


def _search(params: Any) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    ids = [v for raw in params.getlist("id") for v in raw.split(",") if v]
    if len(ids) > 500:
        raise _BadRequest("at most 500 ids")
    if ids:
        where.append(f"id IN ({', '.join('?' * len(ids))})")
        args += ids
    for key in _SEARCH_KEYS:
        for raw in params.getlist(key):
            value = raw.strip()
            if key == "nhs_number":
                where.append("0")  # the school system holds no NHS numbers
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
                where.append(
                    f"id IN (SELECT pupil_id FROM pupil_names WHERE part IN "
                    f"({', '.join('?' * len(parts))}))"
                    if parts
                    else "0"
                )
                args += parts
    return where, args


def education_app(data_dir: Path, *, allow_faults: bool = False) -> ASGIApp:
    """The demo education API over data_dir/sources/education.sqlite3."""
    folder = Path(data_dir) / "sources"
    path = folder / "education.sqlite3"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run the seed first")
    api_key = str(json.loads((folder / "education_api.json").read_text())["api_key"])
    uri = f"file:{path.resolve()}?mode=ro"
    local = threading.local()

    def db() -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        return conn

    pupil_count = db().execute("SELECT count(*) FROM pupils").fetchone()[0]

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "pupils": pupil_count})

    def pupils(request: Request) -> Response:
        params = request.query_params
        unknown = sorted(set(params.keys()) - {*_SEARCH_KEYS, "id", "page_size", "cursor"})
        if unknown:
            raise _BadRequest(f"unknown parameter(s): {', '.join(unknown)}")
        where, args = _search(params)
        if cursor := params.get("cursor"):
            where.append("rowid > ?")
            args.append(_cursor(cursor))
        sql = f"SELECT rowid, {_PUPIL_COLUMNS} FROM pupils"
        if where:
            sql += " WHERE " + " AND ".join(where)
        size = _size(request)
        rows = db().execute(sql + " ORDER BY rowid LIMIT ?", [*args, size + 1]).fetchall()

        def pupil(r: Any) -> dict[str, Any]:
            found = dict(zip(_PUPIL_KEYS, r[1:], strict=True))
            return {**found, "location_restricted": bool(found["location_restricted"])}

        return _page(request, rows, size, pupil)

    def records(request: Request) -> Response:
        params = request.query_params
        unknown = sorted(set(params.keys()) - {"pupil_id", "page_size", "cursor"})
        if unknown:
            raise _BadRequest(f"unknown parameter(s): {', '.join(unknown)}")
        ids = [v for raw in params.getlist("pupil_id") for v in raw.split(",") if v]
        if not ids or len(ids) > 500:
            raise _BadRequest("give 1 to 500 pupil_id values")
        where = [f"r.pupil_id IN ({', '.join('?' * len(ids))})"]
        args: list[Any] = list(ids)
        if cursor := params.get("cursor"):
            where.append("r.rowid > ?")
            args.append(_cursor(cursor))
        sql = (
            "SELECT r.rowid, r.id, r.pupil_id, r.record_type, r.fields, p.location_restricted "
            "FROM records r JOIN pupils p ON p.id = r.pupil_id "
            f"WHERE {' AND '.join(where)} ORDER BY r.rowid LIMIT ?"
        )
        size = _size(request)
        rows = db().execute(sql, [*args, _size(request) + 1]).fetchall()

        def record(r: Any) -> dict[str, Any]:
            return {
                "id": r[1],
                "pupil_id": r[2],
                "record_type": r[3],
                **json.loads(r[4]),
                "location_restricted": bool(r[5]),
            }

        return _page(request, rows, size, record)

    def guarded(handler: Callable[[Request], Response]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            given = request.headers.get("x-api-key", "")
            if not secrets.compare_digest(given.encode(), api_key.encode()):
                return _error(401, "missing or invalid API key")
            try:
                return await run_in_threadpool(handler, request)
            except _BadRequest as exc:
                return _error(400, str(exc))
            except sqlite3.Error:
                return _error(500, "store error")

        return endpoint

    def not_found(request: Request) -> Response:
        return _error(404, "not found")

    app: ASGIApp = Starlette(
        routes=[
            Route("/education/v1/health", health),
            Route("/education/v1/pupils", guarded(pupils)),
            Route("/education/v1/records", guarded(records)),
            Route("/education/v1/{rest:path}", guarded(not_found)),
        ]
    )
    if allow_faults:
        app = FaultSwitch(app, _error_body)
    return app
