"""The demo source systems that stand in for the agencies' own systems.

- police      : SQL database (SQLite file by default, or any SQLAlchemy URL, e.g. PostgreSQL)
- early help  : SQL database, likewise
- health      : a small FHIR R4 server (Starlette), `fhir_app(data_dir)`
- adult social care : a REST/JSON API (Starlette), `asc_app(data_dir)`

`seed(data_dir, ...)` fills all four from the synthetic population (hub.demo.generator).
Files live under `data_dir / "sources"`: police.sqlite3, early_help.sqlite3, health.json,
asc.json. The HTTP apps load their JSON file once at start-up and serve from memory.

Run one HTTP source:  python -m hub.demo.sources {health|asc} --port P --data-dir D
Seed from the shell:  python -m hub.demo.sources seed --data-dir D [--households N --seed S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from adapters import early_help as eh_schema
from adapters import police as police_schema

from .generator import Population, generate

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
CONFIDENTIALITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PLAN_CATEGORY_SYSTEM = "https://mash-hub.example/fhir/CodeSystem/care-plan-category"
_PLAN_DISPLAY = {
    "CPP": "Child protection plan",
    "LAC": "Looked after child",
    "UNBORN": "Unborn child protection plan",
}
_CLASS_DISPLAY = {"EMER": "A&E", "AMB": "Outpatient"}

HTTP_SOURCES = ("health", "asc")


# --- paths and URLs -----------------------------------------------------------------------
def sources_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "sources"


def default_police_url(data_dir: Path) -> str:
    return f"sqlite:///{(sources_dir(data_dir) / 'police.sqlite3').resolve()}"


def default_early_help_url(data_dir: Path) -> str:
    return f"sqlite:///{(sources_dir(data_dir) / 'early_help.sqlite3').resolve()}"


def source_url(name: str, port: int, host: str = "127.0.0.1") -> str:
    """The adapter base URL of a running HTTP demo source."""
    return {"health": f"http://{host}:{port}/fhir", "asc": f"http://{host}:{port}/api/v1"}[name]


def ready_url(name: str, port: int, host: str = "127.0.0.1") -> str:
    """A URL that answers 200 once the HTTP demo source is serving."""
    return {
        "health": f"http://{host}:{port}/fhir/metadata",
        "asc": f"http://{host}:{port}/api/v1/health",
    }[name]


# --- seeding ------------------------------------------------------------------------------
def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def _fhir_resources(pop: Population) -> dict[str, list[dict[str, Any]]]:
    patients = []
    for p in pop.health.patients:
        line, _, city = p.address.partition(", ")
        res: dict[str, Any] = {
            "resourceType": "Patient",
            "id": p.id,
            "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": p.nhs_number}],
            "name": [{"use": "official", "family": p.family_name, "given": [p.given_name]}],
            "gender": p.sex,
            "birthDate": p.date_of_birth.isoformat(),
            "address": [
                {"use": "home", "line": [line], "city": city or None, "postalCode": p.postcode}
            ],
            "generalPractitioner": [{"display": p.gp}],
        }
        if not city:
            del res["address"][0]["city"]
        if p.restricted:
            res["meta"] = {
                "security": [
                    {"system": CONFIDENTIALITY_SYSTEM, "code": "R", "display": "restricted"}
                ]
            }
        patients.append(res)
    encounters = []
    for n, e in enumerate(pop.health.encounters):
        start = f"{e.start.isoformat()}T{8 + n % 14:02d}:{(n * 7) % 60:02d}:00+00:00"
        encounters.append(
            {
                "resourceType": "Encounter",
                "id": e.id,
                "status": e.status,
                "class": {
                    "system": ACT_CODE_SYSTEM,
                    "code": e.class_code,
                    "display": _CLASS_DISPLAY.get(e.class_code, e.class_code),
                },
                "subject": {"reference": f"Patient/{e.patient_id}"},
                "period": {"start": start},
                "reasonCode": [{"text": e.reason}],
            }
        )
    plans = []
    for c in pop.health.care_plans:
        plans.append(
            {
                "resourceType": "CarePlan",
                "id": c.id,
                "status": c.status,
                "intent": "plan",
                "category": [
                    {
                        "coding": [
                            {
                                "system": PLAN_CATEGORY_SYSTEM,
                                "code": c.category,
                                "display": _PLAN_DISPLAY[c.category],
                            }
                        ],
                        "text": _PLAN_DISPLAY[c.category],
                    }
                ],
                "subject": {"reference": f"Patient/{c.patient_id}"},
                "period": {"start": c.start.isoformat()},
            }
        )
    return {"Patient": patients, "Encounter": encounters, "CarePlan": plans}


def _asc_document(pop: Population) -> dict[str, Any]:
    return {
        "persons": [
            {k: _iso(v) for k, v in asdict(p).items() if k != "person_id"}
            for p in pop.adult_social_care.persons
        ],
        "involvements": [
            {
                "id": i.id,
                "person_id": i.asc_person_id,
                "involvement_type": i.involvement_type,
                "status": i.status,
                "start": _iso(i.start),
                "end": _iso(i.end),
                "summary": i.summary,
            }
            for i in pop.adult_social_care.involvements
        ],
    }


def _police_rows(pop: Population) -> dict[str, list[dict[str, Any]]]:
    s = pop.police
    return {
        "persons": [{k: v for k, v in asdict(p).items() if k != "person_id"} for p in s.persons],
        "incidents": [asdict(i) for i in s.incidents],
        "person_incident": [asdict(i) for i in s.involvements],
        "intelligence": [asdict(i) for i in s.intelligence],
    }


def _early_help_rows(pop: Population) -> dict[str, list[dict[str, Any]]]:
    s = pop.early_help
    persons = [{k: v for k, v in asdict(p).items() if k != "person_id"} for p in s.persons]
    episodes = [
        {
            "id": e.id,
            "person_id": e.eh_person_id,
            "start": e.start,
            "end": e.end,
            "status": e.status,
            "lead_practitioner": e.lead_practitioner,
            "summary": e.summary,
        }
        for e in s.episodes
    ]
    consents = [
        {
            "id": c.id,
            "person_id": c.eh_person_id,
            "status": c.status,
            "given_by": c.given_by,
            "recorded_on": c.recorded_on,
            "scope": c.scope,
        }
        for c in s.consents
    ]
    return {"persons": persons, "episodes": episodes, "consents": consents}


async def _seed_sql(url: str, metadata: sa.MetaData, rows: dict[str, list[dict[str, Any]]]) -> None:
    """Drop and recreate the tables of `metadata`, then insert `rows` (table name -> rows)."""
    engine = create_async_engine(police_schema.async_url(url))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)
            await conn.run_sync(metadata.create_all)
            for table in metadata.sorted_tables:
                if rows.get(table.name):
                    await conn.execute(table.insert(), rows[table.name])
    finally:
        await engine.dispose()


def _write_json(path: Path, document: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(document, separators=(",", ":")), encoding="utf-8")
    tmp.replace(path)


async def aseed(
    data_dir: Path,
    households: int = 300,
    seed: int = 7,
    police_url: str | None = None,
    early_help_url: str | None = None,
) -> dict[str, Any]:
    """Async form of `seed` (for callers already inside an event loop)."""
    pop = generate(households=households, seed=seed)
    out = sources_dir(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    fhir = _fhir_resources(pop)
    _write_json(out / "health.json", fhir)
    _write_json(out / "asc.json", _asc_document(pop))
    police_rows = _police_rows(pop)
    eh_rows = _early_help_rows(pop)
    await asyncio.gather(
        _seed_sql(police_url or default_police_url(data_dir), police_schema.metadata, police_rows),
        _seed_sql(early_help_url or default_early_help_url(data_dir), eh_schema.metadata, eh_rows),
    )
    return {
        "population": {"households": len(pop.households), "persons": len(pop.persons)},
        "health": {k: len(v) for k, v in fhir.items()},
        "police": {k: len(v) for k, v in police_rows.items()},
        "adult_social_care": {
            "persons": len(pop.adult_social_care.persons),
            "involvements": len(pop.adult_social_care.involvements),
        },
        "early_help": {k: len(v) for k, v in eh_rows.items()},
    }


def seed(
    data_dir: Path,
    households: int = 300,
    seed: int = 7,
    police_url: str | None = None,
    early_help_url: str | None = None,
) -> dict[str, Any]:
    """Build every demo source from the generator; returns counts per source.

    Idempotent and deterministic: SQL tables are dropped and recreated, files rewritten.
    Safe to call from inside a running event loop (it then runs in a worker thread).
    """
    coro_args = (Path(data_dir), households, seed, police_url, early_help_url)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(aseed(*coro_args))
    result: dict[str, Any] = {}
    error: list[BaseException] = []

    def worker() -> None:
        try:
            result.update(asyncio.run(aseed(*coro_args)))
        except BaseException as exc:
            error.append(exc)

    t = threading.Thread(target=worker, name="mash-demo-seed")
    t.start()
    t.join()
    if error:
        raise error[0]
    return result


# --- shared HTTP helpers ------------------------------------------------------------------
def _norm_text(value: str) -> str:
    return re.sub(r"[^a-z0-9\- ]", "", value.lower())


def _name_matches(stored: str | None, wanted: str, prefix: bool) -> bool:
    if not stored:
        return False
    s, w = _norm_text(stored), _norm_text(wanted).strip()
    if not w:
        return False
    candidates = [s, *[p for p in re.split(r"[\- ]+", s) if p]]
    if prefix:
        return any(c.startswith(w) for c in candidates)
    return any(c == w for c in candidates)


def _norm_postcode(value: str | None) -> str:
    return "".join((value or "").split()).upper()


def _load_json(path: Path) -> Any:
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run the seed first")
    return json.loads(path.read_text(encoding="utf-8"))


# --- health: FHIR R4 ----------------------------------------------------------------------
FHIR_JSON = "application/fhir+json"


class _FhirResponse(JSONResponse):
    media_type = FHIR_JSON


def _outcome(status: int, code: str, diagnostics: str) -> _FhirResponse:
    return _FhirResponse(
        {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}],
        },
        status_code=status,
    )


class _BadRequest(Exception):
    pass


def _bundle(request: Request, resources: Iterable[dict[str, Any]]) -> _FhirResponse:
    base = str(request.base_url).rstrip("/") + "/fhir"
    entries = [
        {
            "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
            "resource": r,
            "search": {"mode": "match"},
        }
        for r in resources
    ]
    return _FhirResponse(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(entries),
            "link": [{"relation": "self", "url": str(request.url)}],
            "entry": entries,
        }
    )


def _values(request: Request, name: str) -> list[list[str]]:
    """Repeated parameters AND together; commas inside one value OR together."""
    return [[v for v in raw.split(",") if v != ""] for raw in request.query_params.getlist(name)]


_PATIENT_PARAMS = {
    "identifier",
    "birthdate",
    "family",
    "address-postalcode",
    "_id",
    "_count",
    "_format",
}
_BY_PATIENT_PARAMS = {"patient", "subject", "_count", "_format"}


def _check_params(request: Request, allowed: set[str]) -> None:
    unknown = sorted(set(request.query_params.keys()) - allowed)
    if unknown:
        raise _BadRequest(f"Unknown search parameter(s): {', '.join(unknown)}")


def _match_identifier(res: dict[str, Any], token: str) -> bool:
    system, sep, value = token.rpartition("|")
    for ident in res.get("identifier", ()):
        if value and ident.get("value") != value:
            continue
        if sep and system and ident.get("system") != system:
            continue
        return True
    return False


def _match_birthdate(res: dict[str, Any], token: str) -> bool:
    if token.startswith("eq"):
        token = token[2:]
    try:
        wanted = date.fromisoformat(token)
    except ValueError:
        raise _BadRequest("birthdate must be YYYY-MM-DD") from None
    return res.get("birthDate") == wanted.isoformat()


def _match_family(res: dict[str, Any], token: str) -> bool:
    return any(_name_matches(n.get("family"), token, prefix=True) for n in res.get("name", ()))


def _match_postcode(res: dict[str, Any], token: str) -> bool:
    wanted = _norm_postcode(token)
    return bool(wanted) and any(
        _norm_postcode(a.get("postalCode")).startswith(wanted) for a in res.get("address", ())
    )


_PATIENT_MATCHERS: dict[str, Callable[[dict[str, Any], str], bool]] = {
    "identifier": _match_identifier,
    "birthdate": _match_birthdate,
    "family": _match_family,
    "address-postalcode": _match_postcode,
    "_id": lambda res, token: res.get("id") == token,
}


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


def fhir_app(data_dir: Path) -> Starlette:
    """The demo health record: a read-only FHIR R4 server over data_dir/sources/health.json."""
    store: dict[str, list[dict[str, Any]]] = _load_json(sources_dir(data_dir) / "health.json")
    patients = {p["id"]: p for p in store.get("Patient", [])}
    by_subject: dict[str, dict[str, list[dict[str, Any]]]] = {"Encounter": {}, "CarePlan": {}}
    for kind in by_subject:
        for res in store.get(kind, []):
            pid = res["subject"]["reference"].split("/")[-1]
            by_subject[kind].setdefault(pid, []).append(res)

    async def metadata(request: Request) -> _FhirResponse:
        return _FhirResponse(_capability_statement())

    async def patient_search(request: Request) -> _FhirResponse:
        try:
            _check_params(request, _PATIENT_PARAMS)
            criteria = [
                (name, tokens) for name in _PATIENT_MATCHERS for tokens in _values(request, name)
            ]
            results = []
            for res in patients.values():
                if all(
                    any(_PATIENT_MATCHERS[name](res, t) for t in tokens)
                    for name, tokens in criteria
                ):
                    results.append(res)
        except _BadRequest as exc:
            return _outcome(400, "invalid", str(exc))
        return _bundle(request, results)

    async def patient_read(request: Request) -> _FhirResponse:
        res = patients.get(request.path_params["id"])
        if res is None:
            return _outcome(404, "not-found", "Patient not found")
        return _FhirResponse(res)

    def by_patient(kind: str) -> Callable[[Request], Awaitable[_FhirResponse]]:
        async def search(request: Request) -> _FhirResponse:
            try:
                _check_params(request, _BY_PATIENT_PARAMS)
            except _BadRequest as exc:
                return _outcome(400, "invalid", str(exc))
            criteria = _values(request, "patient") + _values(request, "subject")
            if not criteria:
                results = [r for rs in by_subject[kind].values() for r in rs]
            else:
                ids = [set(v.split("/")[-1] for v in tokens) for tokens in criteria]
                wanted = set.intersection(*ids)
                results = [r for pid in sorted(wanted) for r in by_subject[kind].get(pid, [])]
            return _bundle(request, results)

        return search

    async def unknown(request: Request) -> _FhirResponse:
        return _outcome(404, "not-supported", "Unknown resource type or interaction")

    return Starlette(
        routes=[
            Route("/fhir/metadata", metadata),
            Route("/fhir/Patient", patient_search),
            Route("/fhir/Patient/{id}", patient_read),
            Route("/fhir/Encounter", by_patient("Encounter")),
            Route("/fhir/CarePlan", by_patient("CarePlan")),
            Route("/fhir/{rest:path}", unknown),
        ]
    )


# --- adult social care: REST/JSON ---------------------------------------------------------
_ASC_PARAMS = ("nhs_number", "family_name", "date_of_birth", "postcode")


def asc_app(data_dir: Path) -> Starlette:
    """The demo adult social care API over data_dir/sources/asc.json."""
    doc = _load_json(sources_dir(data_dir) / "asc.json")
    persons: dict[str, dict[str, Any]] = {p["id"]: p for p in doc["persons"]}
    involvements: dict[str, list[dict[str, Any]]] = {}
    for inv in doc["involvements"]:
        involvements.setdefault(inv["person_id"], []).append(
            {k: v for k, v in inv.items() if k != "person_id"}
        )

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "persons": len(persons)})

    async def search(request: Request) -> JSONResponse:
        params = request.query_params
        unknown = sorted(set(params.keys()) - set(_ASC_PARAMS))
        if unknown:
            return error(400, f"unknown parameter(s): {', '.join(unknown)}")
        given = {k: params[k].strip() for k in _ASC_PARAMS if params.get(k, "").strip()}
        if not given:
            return error(400, "give one of: " + ", ".join(_ASC_PARAMS))
        if "date_of_birth" in given:
            try:
                given["date_of_birth"] = date.fromisoformat(given["date_of_birth"]).isoformat()
            except ValueError:
                return error(400, "date_of_birth must be YYYY-MM-DD")

        def match(p: dict[str, Any]) -> bool:
            for key, value in given.items():
                if key == "nhs_number":
                    ok = p.get("nhs_number") == "".join(value.split())
                elif key == "family_name":
                    ok = _name_matches(p.get("family_name"), value, prefix=False)
                elif key == "postcode":
                    ok = _norm_postcode(p.get("postcode")) == _norm_postcode(value)
                else:
                    ok = p.get("date_of_birth") == value
                if not ok:
                    return False
            return True

        return JSONResponse({"items": [p for p in persons.values() if match(p)]})

    async def person(request: Request) -> JSONResponse:
        p = persons.get(request.path_params["id"])
        return JSONResponse(p) if p else error(404, "not found")

    async def person_involvements(request: Request) -> JSONResponse:
        pid = request.path_params["id"]
        if pid not in persons:
            return error(404, "not found")
        return JSONResponse({"items": involvements.get(pid, [])})

    return Starlette(
        routes=[
            Route("/api/v1/health", health),
            Route("/api/v1/persons", search),
            Route("/api/v1/persons/{id}", person),
            Route("/api/v1/persons/{id}/involvements", person_involvements),
        ]
    )


# --- processes ----------------------------------------------------------------------------
def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_source_process(name: str, port: int, data_dir: Path) -> subprocess.Popen[bytes]:
    """Start one HTTP demo source ("health" or "asc") in a child process on loopback."""
    if name not in HTTP_SOURCES:
        raise ValueError(f"unknown HTTP source {name!r}; expected one of {HTTP_SOURCES}")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hub.demo.sources",
            name,
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--host",
            "127.0.0.1",
        ]
    )


def wait_until_up(
    url: str, timeout: float = 15.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll `url` until it answers 2xx; TimeoutError after `timeout` seconds (RuntimeError
    at once if `process` has exited)."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"source process exited with code {process.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code < 300:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{url} did not come up within {timeout} s")
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hub.demo.sources", description="Serve or seed the MASH Hub demo sources."
    )
    parser.add_argument("name", choices=[*HTTP_SOURCES, "seed"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=Path("var"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--households", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--police-url")
    parser.add_argument("--early-help-url")
    args = parser.parse_args(argv)
    if args.name == "seed":
        counts = seed(
            args.data_dir, args.households, args.seed, args.police_url, args.early_help_url
        )
        print(json.dumps(counts, indent=2))
        return 0
    if not args.port:
        parser.error("--port is required to serve a source")
    import uvicorn

    app = fhir_app(args.data_dir) if args.name == "health" else asc_app(args.data_dir)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
