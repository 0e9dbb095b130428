"""The whole path, end to end: token → GraphQL → record service → real demo sources →
identity → policy → audit → response. Runs with the hub store on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import create_async_engine

from hub.app import GC_THRESHOLD
from hub.demo import sources
from hub.demo.faults import FaultProxy
from hub.demo.stack import running_hub
from hub.store.engine import async_url

from .conftest import Hub, hub_settings

AVA = {"givenName": "Ava", "familyName": "Thompson", "dateOfBirth": "2016-03-14"}
AVA_NHS = "9434765919"

SEARCH = """
query Find($criteria: PersonSearch!, $purpose: Purpose!) {
  searchChildren(criteria: $criteria, purpose: $purpose) {
    id givenName familyName dateOfBirth nhsNumber sources
  }
}"""

RECORD = """
query Record($id: ID!, $purpose: Purpose!, $contactId: ID) {
  child(id: $id, purpose: $purpose, contactId: $contactId) {
    id
    withheld { reason }
    person { id givenName familyName dateOfBirth nhsNumber agencies address postcode
             redactedFields { field reason } }
    household {
      relation
      basis { kind source relation }
      person { id givenName familyName relationship agencies }
    }
    sources { source status latencyMs circuitOpen }
    links { source sourceRecordId rule agreedFields }
    police {
      __typename
      ... on Redaction { reason agency knownToAgency }
      ... on PoliceSection {
        known
        incidents {
          __typename
          ... on PoliceIncident { id about category dashRisk role }
          ... on Redaction { reason agency }
        }
        intelligence {
          __typename
          ... on PoliceIntelligence { id about handlingCode summary text
                                      redactedFields { field reason } }
          ... on Redaction { reason agency }
        }
      }
    }
    health {
      __typename
      ... on Redaction { reason agency knownToAgency }
      ... on HealthSection {
        known
        encounters { __typename ... on HealthEncounter { encounterClass reason
                                                           redactedFields { field reason } } }
        plans { __typename ... on HealthPlan { category status } }
      }
    }
    adultSocialCare {
      __typename
      ... on Redaction { reason agency knownToAgency }
      ... on AdultSocialCareSection {
        known
        involvements { __typename
          ... on AdultSocialCareInvolvement { about aboutPersonId involvementType }
          ... on Redaction { reason agency } }
      }
    }
    earlyHelp {
      __typename
      ... on Redaction { reason agency knownToAgency }
      ... on EarlyHelpSection {
        known
        episodes { __typename ... on EarlyHelpEpisode { about status } }
        consents { __typename ... on EarlyHelpConsent { status } }
      }
    }
    education {
      __typename
      ... on Redaction { reason agency knownToAgency }
      ... on EducationSection {
        known
        enrolments { __typename ... on EducationEnrolment { about school schoolUrn } }
        attendance { __typename ... on EducationAttendance { attendancePercent
                                                             persistentAbsence } }
        specialEducationalNeeds { __typename ... on EducationSen { level ehcp } }
      }
    }
  }
}"""

AUDIT = """
query Audit($first: Int, $after: String) {
  auditEvents(first: $first, after: $after) {
    totalCount
    pageInfo { endCursor hasNextPage }
    edges { node { id actorSubject actorRoles purpose operationName operationType queryHash
                   outcome errorCode subjects sources fieldsReturned
                   fieldsRedacted { path reason } policyVersion } }
  }
}"""


def run_sql(url: str, statement: str) -> None:
    async def run() -> None:
        engine = create_async_engine(async_url(url))
        async with engine.begin() as conn:
            await conn.exec_driver_sql(statement)
        await engine.dispose()

    asyncio.run(run())


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]  # type: ignore[no-any-return]


def find_ava(hub: Hub, role: str = "mash_social_worker") -> str:
    matches = ok(hub.gql(role, SEARCH, {"criteria": AVA, "purpose": "MASH_RESEARCH"}))
    ava = [m for m in matches["searchChildren"] if m["nhsNumber"] == AVA_NHS]
    assert len(ava) == 1, matches
    return str(ava[0]["id"])


def read_record(
    hub: Hub, role: str, purpose: str = "MASH_RESEARCH", **facts: Any
) -> dict[str, Any]:
    """Ava's record, read for a contact about her (by default in research, consent given)."""
    child_id = find_ava(hub)
    contact = hub.contact(child_id, **facts)
    variables = {"id": child_id, "purpose": purpose, "contactId": contact}
    return ok(hub.gql(role, RECORD, variables))["child"]


def reading(hub: Hub, child_id: str, purpose: str = "MASH_RESEARCH") -> dict[str, Any]:
    """Variables to read a child for a research contact about them."""
    return {"id": child_id, "purpose": purpose, "contactId": hub.contact(child_id)}


def all_events(hub: Hub) -> list[dict[str, Any]]:
    """Every audit event, oldest first, leaving out the listings' own events."""
    events: list[dict[str, Any]] = []
    after = None
    while True:
        page = ok(hub.gql("ig_officer", AUDIT, {"first": 200, "after": after}))["auditEvents"]
        events += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return [e for e in events if e["operationName"] != "Audit"]
        after = page["pageInfo"]["endCursor"]


def test_social_worker_finds_ava_and_reads_all_five_sections_with_every_source_ok(
    hub: Hub,
) -> None:
    matches = ok(
        hub.gql("mash_social_worker", SEARCH, {"criteria": AVA, "purpose": "MASH_RESEARCH"})
    )["searchChildren"]
    ava = [m for m in matches if m["nhsNumber"] == AVA_NHS]
    assert len(ava) == 1 and ava[0]["dateOfBirth"] == "2016-03-14"
    assert {"HEALTH", "POLICE", "EARLY_HELP"} <= set(ava[0]["sources"])

    record = read_record(hub, "mash_social_worker")
    assert {s["source"]: s["status"] for s in record["sources"]} == {
        "POLICE": "OK",
        "HEALTH": "OK",
        "ADULT_SOCIAL_CARE": "OK",
        "EARLY_HELP": "OK",
        "EDUCATION": "OK",
    }
    assert record["person"]["nhsNumber"] == AVA_NHS
    police = record["police"]
    assert police["__typename"] == "PoliceSection" and police["known"]
    child_incidents = [i for i in police["incidents"] if i.get("about") == "CHILD"]
    assert any(i["dashRisk"] == "HIGH" and i["category"] for i in child_incidents), police
    assert record["health"]["__typename"] == "HealthSection"
    assert any(p.get("category") == "CPP" for p in record["health"]["plans"])
    assert len([e for e in record["health"]["encounters"] if e.get("encounterClass")]) >= 2
    assert record["earlyHelp"]["__typename"] == "EarlyHelpSection"
    assert any(e.get("about") == "CHILD" for e in record["earlyHelp"]["episodes"])
    assert record["education"]["__typename"] == "EducationSection"
    assert record["education"]["known"]
    asc = record["adultSocialCare"]
    assert asc["__typename"] == "AdultSocialCareSection"
    assert any(
        i.get("involvementType") == "MENTAL_HEALTH" and i["about"] == "HOUSEHOLD_MEMBER"
        for i in asc["involvements"]
    )


def test_police_record_held_as_eva_thomson_is_linked_to_ava_and_noah_never_is(hub: Hub) -> None:
    record = read_record(hub, "mash_social_worker")
    linked = {(link["source"], link["rule"]) for link in record["links"]}
    assert ("HEALTH", "nhs_number") in linked
    assert any(source == "POLICE" for source, _ in linked)
    assert any(source == "EARLY_HELP" for source, _ in linked)
    household = {(m["person"]["givenName"], m["person"]["familyName"]) for m in record["household"]}
    assert ("Jade", "Thompson") in household
    assert any(given == "Noah" for given, _ in household), "Noah is a household member"
    assert record["person"]["givenName"] == "Ava"


def test_showcase_household_shows_mother_brother_and_mothers_partner_with_their_basis(
    hub: Hub,
) -> None:
    record = read_record(hub, "mash_social_worker")
    members: dict[str, list[dict[str, Any]]] = {}
    for m in record["household"]:
        members.setdefault(m["person"]["givenName"], []).append(m)
    # every adult appears once: their records join on NHS number or the deterministic rules
    assert len(members["Jade"]) == 1 and len(members["Liam"]) == 1, members
    jade, liam, noah = members["Jade"][0], members["Liam"][0], members["Noah"]
    assert jade["relation"] == "MOTHER"
    assert {"kind": "SOURCE_RELATION", "source": "POLICE", "relation": "MOTHER"} in jade["basis"]
    assert {"kind": "SHARED_UPRN", "source": "HEALTH", "relation": None} in jade["basis"]
    assert {"kind": "SHARED_ADDRESS", "source": "POLICE", "relation": None} in jade["basis"]
    assert {"HEALTH", "POLICE", "ADULT_SOCIAL_CARE"} <= set(jade["person"]["agencies"])
    assert liam["relation"] == "PARENTS_PARTNER"
    assert {"kind": "SOURCE_RELATION", "source": "POLICE", "relation": "PARENTS_PARTNER"} in (
        liam["basis"]
    )
    assert [m["relation"] for m in noah] == ["SIBLING"], "Noah is one person, her brother"
    sources_saying_sibling = {
        b["source"] for b in noah[0]["basis"] if b["kind"] == "SOURCE_RELATION"
    }
    assert sources_saying_sibling == {"POLICE", "EARLY_HELP"}
    assert all(m["person"]["id"] != record["id"] for m in record["household"])


def test_early_help_worker_sees_police_intelligence_redacted_with_a_typed_reason(
    hub: Hub,
) -> None:
    record = read_record(hub, "early_help_worker")
    intelligence = record["police"]["intelligence"]
    assert intelligence, "the showcase child has police intelligence"
    assert all(
        i["__typename"] == "Redaction"
        and i["reason"] == "NOT_PERMITTED"
        and i["agency"] == "police"
        for i in intelligence
    )
    assert record["police"]["incidents"], "incidents are still shared"
    assert {s["status"] for s in record["sources"]} == {"OK"}


def test_social_worker_sees_handling_code_c_summary_but_not_its_text(hub: Hub) -> None:
    record = read_record(hub, "mash_social_worker")
    coded_c = [i for i in record["police"]["intelligence"] if i.get("handlingCode") == "C"]
    assert coded_c
    for item in coded_c:
        assert item["summary"] and item["text"] is None
        assert {"field": "text", "reason": "ORIGINATOR_RESTRICTED"} in item["redactedFields"]


def test_screening_shows_known_to_health_but_no_health_detail(hub: Hub) -> None:
    record = read_record(hub, "police_researcher", stage="SCREENING", consent=None)
    assert record["health"] == {
        "__typename": "Redaction",
        "reason": "STAGE_RESTRICTED",
        "agency": "health",
        "knownToAgency": True,
    }
    assert record["police"]["__typename"] == "PoliceSection"
    statuses = {s["source"]: s["status"] for s in record["sources"]}
    assert statuses["HEALTH"] == "REDACTED" and statuses["POLICE"] == "OK"


def test_ig_officer_gets_no_child_data_but_sees_one_audit_event_per_operation(hub: Hub) -> None:
    before = len(all_events(hub))
    listing = ok(hub.gql("ig_officer", AUDIT, {"first": 1}))["auditEvents"]
    assert listing["totalCount"] >= before
    child_id = find_ava(hub)
    denied = hub.gql("ig_officer", RECORD, reading(hub, child_id))
    body = denied.json()
    assert body["data"] == {"child": None}
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    ok(hub.gql("early_help_worker", RECORD, reading(hub, child_id)))

    new = all_events(hub)[before:]
    kinds = [(e["operationName"], e["outcome"]) for e in new]
    assert kinds[:3] == [("Find", "ok"), ("Record", "denied"), ("Record", "redacted")], kinds
    search, deny, read = new[:3]
    assert child_id in search["subjects"] and child_id in deny["subjects"]
    assert deny["actorRoles"] == ["ig_officer"] and deny["errorCode"] == "FORBIDDEN"
    assert deny["fieldsReturned"] == []
    assert read["purpose"] == "MASH_RESEARCH" and child_id in read["subjects"]
    assert read["sources"] == {
        "POLICE": "OK",
        "HEALTH": "OK",
        "ADULT_SOCIAL_CARE": "OK",
        "EARLY_HELP": "OK",
        "EDUCATION": "OK",
    }
    assert {"path": "child.police.intelligence", "reason": "NOT_PERMITTED"} in read[
        "fieldsRedacted"
    ]
    assert "child.police.incidents.dashRisk" in read["fieldsReturned"]
    assert len(read["queryHash"]) == 64 and read["policyVersion"]
    # The audit holds identifiers and paths, never values or names.
    text = str(new)
    for value in ("Thompson", "Thomson", AVA_NHS, "2016-03-14", "Jade"):
        assert value not in text


def test_started_hub_has_frozen_its_start_up_heap_and_set_the_gc_threshold(hub: Hub) -> None:
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == GC_THRESHOLD


def test_request_without_a_token_gets_401_and_nothing_resolved(hub: Hub) -> None:
    response = hub.gql(None, SEARCH, {"criteria": AVA, "purpose": "MASH_RESEARCH"})
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "data" not in response.json()
    forged = httpx.post(
        f"{hub.url}/graphql",
        json={"query": "{ __typename }"},
        headers={"Authorization": "Bearer not.a.jwt"},
        timeout=10,
    )
    assert forged.status_code == 401
    assert [e["outcome"] for e in all_events(hub)[-2:]] == ["unauthenticated"] * 2


def test_invalid_query_is_rejected_and_audited_as_invalid(hub: Hub) -> None:
    response = hub.gql("mash_social_worker", 'query NoPurpose { child(id: "x") { id } }')
    assert response.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    event = all_events(hub)[-1]
    assert (event["operationName"], event["outcome"]) == ("NoPurpose", "invalid")


def test_search_without_criteria_is_a_clear_error(hub: Hub) -> None:
    body = hub.gql(
        "mash_social_worker", SEARCH, {"criteria": {}, "purpose": "MASH_RESEARCH"}
    ).json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_explorer_is_served_on_get_to_whoever_signed_in(hub: Hub) -> None:
    with httpx.Client(base_url=hub.url, follow_redirects=True, timeout=10) as client:
        signin = client.get("/graphql")
        assert signin.url.path == "/auth/login"
        csrf = client.cookies["mash_login_csrf"]
        response = client.post("/auth/dev", data={"role": "mash_social_worker", "csrf": csrf})
    assert response.url.path == "/graphql"
    assert response.status_code == 200 and "graphiql" in response.text.lower()
    assert httpx.get(f"{hub.url}/readyz", timeout=10).json()["status"] == "ready"
    assert "mash_hub_operations_total" in httpx.get(f"{hub.url}/metrics", timeout=10).text


def test_sequencer_gauge_reads_one_while_this_process_sequences(hub: Hub) -> None:
    # on SQLite the one hub process always sequences; on PostgreSQL the only hub leads
    ok(hub.gql("mash_social_worker", SEARCH, {"criteria": AVA, "purpose": "MASH_SCREENING"}))
    metrics = httpx.get(f"{hub.url}/metrics", timeout=10).text
    assert "mash_hub_audit_sequencer_active 1.0" in metrics


HOME = """query Home($id: ID!, $purpose: Purpose!, $contactId: ID) {
  child(id: $id, purpose: $purpose, contactId: $contactId) {
    person { givenName address postcode redactedFields { field reason } }
    household { person { givenName address postcode redactedFields { field reason } } } } }"""


def test_stopped_source_reports_unavailable_and_the_other_four_still_answer(
    hub: Hub,
    source_config: dict[str, Any],
    tmp_path: Any,
) -> None:
    port = sources.free_port()
    process = sources.start_source_process("health", port, hub.data_dir)
    url = f"http://127.0.0.1:{port}/fhir"
    sources.wait_until_up(f"{url}/metadata", timeout=30, process=process)
    process.terminate()
    process.wait(timeout=10)
    config = {**source_config, "HEALTH": {"url": url, "deadline_ms": 1500}}
    child_id = find_ava(hub)  # found while health was up; the hub store remembers her
    with running_hub(hub_settings(hub.data_dir, hub.database_url, config)) as base:
        other = Hub(base, hub.data_dir, hub.database_url)
        started = time.perf_counter()
        record = ok(other.gql("mash_social_worker", RECORD, reading(hub, child_id)))["child"]
        elapsed = time.perf_counter() - started
        home = ok(other.gql("mash_social_worker", HOME, reading(hub, child_id)))["child"]
    # Rule 11 fails closed: health, which may flag the home as location-protected, did not
    # answer, so no one in the home shows an address or postcode (names still show).
    people = [home["person"], *(m["person"] for m in home["household"])]
    assert len(people) > 1 and all(p["givenName"] for p in people)
    for person in people:
        assert person["address"] is None and person["postcode"] is None
        assert {"field": "address", "reason": "LOCATION_UNVERIFIED"} in person["redactedFields"]
    statuses = {s["source"]: s["status"] for s in record["sources"]}
    assert statuses == {
        "HEALTH": "UNAVAILABLE",
        "POLICE": "OK",
        "ADULT_SOCIAL_CARE": "OK",
        "EARLY_HELP": "OK",
        "EDUCATION": "OK",
    }
    assert record["health"] is None and record["police"]["__typename"] == "PoliceSection"
    assert elapsed < 1.5 + 2.0


def test_slow_source_reports_timed_out_within_its_deadline(
    hub: Hub, source_config: dict[str, Any]
) -> None:
    config = {
        **source_config,
        "ADULT_SOCIAL_CARE": {**source_config["ADULT_SOCIAL_CARE"], "deadline_ms": 1},
    }
    with running_hub(hub_settings(hub.data_dir, hub.database_url, config)) as base:
        other = Hub(base, hub.data_dir, hub.database_url)
        child_id = find_ava(other)
        record = ok(other.gql("mash_social_worker", RECORD, reading(hub, child_id)))["child"]
    states = {s["source"]: s for s in record["sources"]}
    assert states["ADULT_SOCIAL_CARE"]["status"] == "TIMED_OUT"
    assert states["ADULT_SOCIAL_CARE"]["latencyMs"] < 200
    assert record["adultSocialCare"] is None
    assert states["POLICE"]["status"] == "OK"


def test_no_data_leaves_when_the_audit_event_cannot_be_committed(
    hub: Hub, source_config: dict[str, Any]
) -> None:
    with running_hub(hub_settings(hub.data_dir, hub.database_url, source_config)) as base:
        other = Hub(base, hub.data_dir, hub.database_url)
        child_id = find_ava(other)
        run_sql(hub.database_url, "ALTER TABLE audit_events RENAME TO audit_events_away")
        try:
            response = other.gql("mash_social_worker", RECORD, reading(hub, child_id))
        finally:
            run_sql(hub.database_url, "ALTER TABLE audit_events_away RENAME TO audit_events")
    assert response.status_code == 503
    body = response.json()
    assert "data" not in body and body["errors"][0]["extensions"]["code"] == "AUDIT_UNAVAILABLE"
    assert "Thompson" not in response.text


def test_concurrent_searches_and_reads_are_all_answered_and_all_audited(hub: Hub) -> None:
    # Searches write subjects while reads write audit events: on SQLite, one writer at a time.
    child_id = find_ava(hub)
    before = len(all_events(hub))
    token = hub.token("mash_social_worker")
    read = {"query": RECORD, "variables": reading(hub, child_id)}
    search = {"query": SEARCH, "variables": {"criteria": AVA, "purpose": "MASH_RESEARCH"}}

    async def worker(client: httpx.AsyncClient) -> list[int]:
        codes = []
        for _ in range(4):
            for body in (search, read):
                codes.append((await client.post("/graphql", json=body)).status_code)
        return codes

    async def run() -> list[int]:
        async with httpx.AsyncClient(
            base_url=hub.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as client:
            results = await asyncio.gather(*(worker(client) for _ in range(16)))
        return [code for codes in results for code in codes]

    assert asyncio.run(run()) == [200] * 128
    assert len(all_events(hub)) == before + 128


def test_hung_source_times_out_then_its_circuit_opens_then_it_is_used_again(
    hub: Hub, source_config: dict[str, Any]
) -> None:
    child_id = find_ava(hub)
    health = httpx.URL(source_config["HEALTH"]["url"])
    deadline_s = 0.8
    with FaultProxy("127.0.0.1", health.port or 80) as proxy:
        config = {
            **source_config,
            "HEALTH": {
                **source_config["HEALTH"],
                "url": str(health.copy_with(port=proxy.port)),
                "deadline_ms": int(deadline_s * 1000),
                "circuit_failures": 2,
                "circuit_reset_s": 1.0,
            },
        }
        with running_hub(hub_settings(hub.data_dir, hub.database_url, config)) as base:
            other = Hub(base, hub.data_dir, hub.database_url)

            def read() -> tuple[dict[str, Any], float]:
                started = time.perf_counter()
                record = ok(other.gql("mash_social_worker", RECORD, reading(hub, child_id)))[
                    "child"
                ]
                states = {s["source"]: s for s in record["sources"]}
                return states, time.perf_counter() - started

            healthy, _ = read()
            assert healthy["HEALTH"]["status"] == "OK"
            proxy.mode = "hang"
            for _ in range(2):  # hung: each read waits out the deadline, no longer
                states, took = read()
                assert states["HEALTH"]["status"] == "TIMED_OUT"
                assert {states[s]["status"] for s in states if s != "HEALTH"} == {"OK"}
                assert deadline_s <= took < deadline_s + 0.7
            states, took = read()  # circuit open: no waiting at all
            assert states["HEALTH"] == {**states["HEALTH"], "status": "UNAVAILABLE"}
            assert took < deadline_s / 2
            proxy.mode = "pass"  # restored: after the reset time a background probe finds it
            time.sleep(1.1)
            read()  # starts the probe
            for _ in range(50):
                states, _ = read()
                if states["HEALTH"]["status"] == "OK":
                    break
                time.sleep(0.1)
            assert states["HEALTH"]["status"] == "OK"
