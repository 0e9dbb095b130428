"""The HTTP demo sources as adapters see them (PROTOCOL.md): FHIR R4 and the adult social
care API, each in its own process on loopback, with the fault switch on."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hub.demo import generator as g
from hub.demo import sources

TOKEN = "test-token-123"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("served")
    sources.seed(folder, households=300, seed=7)
    return folder


def _serve(name: str, data_dir: Path, **kwargs: object) -> Iterator[str]:
    port = sources.free_port()
    proc = sources.start_source_process(name, port, data_dir, allow_faults=True, **kwargs)  # type: ignore[arg-type]
    try:
        sources.wait_until_up(sources.ready_url(name, port), timeout=30, process=proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def fhir(data_dir: Path) -> Iterator[httpx.Client]:
    for root in _serve("health", data_dir, token=TOKEN):
        with httpx.Client(
            base_url=root, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
        ) as c:
            yield c


@pytest.fixture(scope="module")
def asc_root(data_dir: Path) -> Iterator[str]:
    yield from _serve("asc", data_dir)


@pytest.fixture(scope="module")
def asc(asc_root: str, data_dir: Path) -> Iterator[httpx.Client]:
    client = json.loads((data_dir / "sources" / "asc_client.json").read_text())
    resp = httpx.post(
        f"{asc_root}/api/v1/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client["client_id"], client["client_secret"]),
    )
    assert resp.status_code == 200
    body = resp.json()
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 300)
    with httpx.Client(
        base_url=asc_root, headers={"Authorization": f"Bearer {body['access_token']}"}, timeout=10
    ) as c:
        yield c


def _all_pages(client: httpx.Client, url: str, params: dict[str, str] | None = None) -> list[dict]:  # type: ignore[type-arg]
    entries: list[dict] = []  # type: ignore[type-arg]
    next_url: str | None = url
    pages = 0
    while next_url:
        resp = client.get(next_url, params=params if pages == 0 else None)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        pages += 1
        if "entry" in body:
            entries += body["entry"]
            next_url = next(
                (link["url"] for link in body["link"] if link["relation"] == "next"), None
            )
        else:
            entries += body["items"]
            next_url = body["next"]
    assert pages > 1
    return entries


# --- FHIR --------------------------------------------------------------------------------
def test_fhir_paging_returns_every_match_exactly_once(fhir: httpx.Client, data_dir: Path) -> None:
    entries = _all_pages(fhir, "/fhir/Patient", {"address-postalcode": "HT", "_count": "37"})
    ids = [e["resource"]["id"] for e in entries]
    assert len(ids) == len(set(ids))
    with sqlite3.connect(data_dir / "sources" / "health.sqlite3") as db:
        expected = {r[0] for r in db.execute("select id from patients where postcode like 'HT%'")}
    assert set(ids) == expected


def test_fhir_revinclude_brings_encounters_and_careplans(fhir: httpx.Client) -> None:
    resp = fhir.get(
        "/fhir/Patient",
        params=[
            ("identifier", f"https://fhir.nhs.uk/Id/nhs-number|{g.AVA_NHS}"),
            ("_revinclude", "Encounter:patient"),
            ("_revinclude", "CarePlan:patient"),
        ],
    )
    assert resp.headers["content-type"].startswith("application/fhir+json")
    kinds = [(e["resource"]["resourceType"], e["search"]["mode"]) for e in resp.json()["entry"]]
    assert kinds == [
        ("Patient", "match"),
        ("Encounter", "include"),
        ("Encounter", "include"),
        ("CarePlan", "include"),
    ]


def test_fhir_search_parameters_and_together(fhir: httpx.Client) -> None:
    def ids(**params: str) -> set[str]:
        return {
            e["resource"]["id"] for e in fhir.get("/fhir/Patient", params=params).json()["entry"]
        }

    assert ids(family="thom", birthdate=g.AVA_DOB.isoformat()) == {"pat-000001"}
    assert ids(family="thompson", **{"address-postalcode": "ht42qx"}) >= {"pat-000001"}
    assert ids(_id="pat-000001,pat-000002") == {"pat-000001", "pat-000002"}
    assert ids(identifier=f"http://other.example/id|{g.AVA_NHS}") == set()
    assert fhir.get("/fhir/Patient/pat-000001").json()["birthDate"] == g.AVA_DOB.isoformat()
    plans = fhir.get("/fhir/CarePlan", params={"patient": "Patient/pat-000001"}).json()["entry"]
    assert [p["resource"]["status"] for p in plans] == ["active"]


def test_fhir_unknown_parameter_is_a_400_operation_outcome(fhir: httpx.Client) -> None:
    resp = fhir.get("/fhir/Patient", params={"name": "x"})
    assert resp.status_code == 400
    assert resp.json()["resourceType"] == "OperationOutcome"
    assert fhir.get("/fhir/Patient", params={"_cursor": "nonsense!"}).status_code == 400


def test_fhir_token_required_when_set(fhir: httpx.Client) -> None:
    root = str(fhir.base_url).rstrip("/")
    assert httpx.get(f"{root}/fhir/metadata").status_code == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        resp = httpx.get(f"{root}/fhir/Patient", headers=headers)
        assert resp.status_code == 401
        assert resp.json()["resourceType"] == "OperationOutcome"


def test_fhir_fault_switch_answers_operation_outcomes(fhir: httpx.Client) -> None:
    root = str(fhir.base_url).rstrip("/")
    assert httpx.put(f"{root}/_fault", json={"mode": "error", "count": 1}).status_code == 200
    resp = fhir.get("/fhir/Patient/pat-000001")
    assert resp.status_code == 500 and resp.json()["resourceType"] == "OperationOutcome"
    assert fhir.get("/fhir/Patient/pat-000001").status_code == 200


# --- adult social care -------------------------------------------------------------------
def test_asc_token_endpoint_rejects_a_bad_client(asc_root: str, data_dir: Path) -> None:
    client = json.loads((data_dir / "sources" / "asc_client.json").read_text())
    bad = httpx.post(
        f"{asc_root}/api/v1/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client["client_id"],
            "client_secret": "x",
        },
    )
    assert (bad.status_code, bad.json()) == (401, {"error": "invalid_client"})
    good = httpx.post(
        f"{asc_root}/api/v1/oauth/token",
        data={
            "grant_type": "client_credentials",
            **{k: client[k] for k in ("client_id", "client_secret")},
        },
    )
    assert good.status_code == 200 and good.json()["access_token"]


def test_asc_needs_a_token(asc_root: str) -> None:
    assert httpx.get(f"{asc_root}/api/v1/health").json()["status"] == "ok"
    for headers in ({}, {"Authorization": "Bearer not-issued"}):
        resp = httpx.get(
            f"{asc_root}/api/v1/persons", params={"nhs_number": g.JADE_NHS}, headers=headers
        )
        assert (resp.status_code, resp.json()) == (401, {"error": "invalid_token"})


def test_asc_search_and_paging(asc: httpx.Client, data_dir: Path) -> None:
    [jade] = asc.get("/api/v1/persons", params={"nhs_number": g.JADE_NHS}).json()["items"]
    assert (jade["id"], jade["family_name"], jade["postcode"]) == (
        "ASC000001",
        "Thompson",
        g.SHOWCASE_POSTCODE,
    )
    found = asc.get(
        "/api/v1/persons",
        params={
            "family_name": "THOMPSON",
            "date_of_birth": g.JADE_DOB.isoformat(),
            "postcode": "ht42qx",
        },
    ).json()["items"]
    assert [p["id"] for p in found] == ["ASC000001"]
    people = _all_pages(asc, "/api/v1/persons", {"page_size": "113"})
    with sqlite3.connect(data_dir / "sources" / "asc.sqlite3") as db:
        total = db.execute("select count(*) from persons").fetchone()[0]
    assert len(people) == len({p["id"] for p in people}) == total
    involvements = asc.get(
        "/api/v1/involvements", params=[("person_id", "ASC000001"), ("person_id", "ASC000002")]
    ).json()["items"]
    assert {i["person_id"] for i in involvements} <= {"ASC000001", "ASC000002"}
    assert ("MENTAL_HEALTH", "OPEN") in {(i["involvement_type"], i["status"]) for i in involvements}
    assert asc.get("/api/v1/persons", params={"surname": "x"}).status_code == 400


def _fault(root: str, **body: object) -> None:
    assert httpx.put(f"{root}/_fault", json=body).status_code == 200


def test_asc_fault_switch_modes_are_each_observable(asc: httpx.Client, asc_root: str) -> None:
    path = "/api/v1/persons"
    params = {"nhs_number": g.JADE_NHS}
    try:
        _fault(asc_root, mode="error")
        assert asc.get(path, params=params).status_code == 500
        _fault(asc_root, mode="ratelimit")
        resp = asc.get(path, params=params)
        assert (resp.status_code, resp.headers["retry-after"]) == (429, "1")
        _fault(asc_root, mode="unauthorized")
        assert asc.get(path, params=params).status_code == 401
        for mode in ("malformed", "partial"):
            _fault(asc_root, mode=mode)
            resp = asc.get(path, params=params)
            assert resp.status_code == 200
            with pytest.raises(json.JSONDecodeError):
                json.loads(resp.content)
        _fault(asc_root, mode="slow", delay_ms=300)
        started = time.monotonic()
        assert asc.get(path, params=params).status_code == 200
        assert time.monotonic() - started >= 0.3
        _fault(asc_root, mode="hang")
        with pytest.raises(httpx.ReadTimeout):
            asc.get(path, params=params, timeout=0.5)
        _fault(asc_root, mode="error", count=2)
        assert httpx.get(f"{asc_root}/_fault").json()["mode"] == "error"
        assert [asc.get(path, params=params).status_code for _ in range(3)] == [500, 500, 200]
        assert httpx.put(f"{asc_root}/_fault", json={"mode": "explode"}).status_code == 400
    finally:
        _fault(asc_root, mode="none")
    assert asc.get(path, params=params).status_code == 200
