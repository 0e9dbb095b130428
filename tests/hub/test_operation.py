"""Requests the hub must refuse clearly — and still audit — without echoing what the client
typed; and what the audit records of the operations it runs."""

from __future__ import annotations

import gc
import json
import logging
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.audit.events import AuditNotes
from hub.auth import devissuer
from hub.context import Context

from .conftest import Hub
from .test_app import AVA, RECORD, SEARCH, all_events, find_ava, ok, reading


def post(hub: Hub, body: Any, role: str = "mash_social_worker") -> httpx.Response:
    return httpx.post(
        f"{hub.url}/graphql",
        content=json.dumps(body),
        headers={"Authorization": f"Bearer {hub.token(role)}", "Content-Type": "application/json"},
        timeout=30,
    )


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ([{"query": "{ __typename }"}], "BAD_REQUEST"),
        ({"query": 5}, "BAD_REQUEST"),
        ({"query": "{ __typename }", "variables": ["Ava"]}, "BAD_REQUEST"),
        ({"query": "{ __typename }", "operationName": ["Ava Thompson"]}, "BAD_REQUEST"),
        (
            {"query": "query A { __typename }", "operationName": "Jade_Thompson"},
            "GRAPHQL_VALIDATION_FAILED",
        ),
        ({"query": "query A { __typename } query B { __typename }"}, "GRAPHQL_VALIDATION_FAILED"),
        ({"query": "{ child(id: "}, "GRAPHQL_PARSE_FAILED"),
    ],
)
def test_malformed_request_gets_a_clear_400_and_an_invalid_audit_event(
    hub: Hub, body: Any, code: str
) -> None:
    response = post(hub, body)
    assert response.status_code == 400, response.text
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == code
    assert "Thompson" not in response.text
    event = all_events(hub)[-1]
    assert (event["outcome"], event["errorCode"]) == ("invalid", code)


def test_validation_errors_do_not_echo_the_values_the_client_typed(hub: Hub) -> None:
    query = (
        '{ searchChildren(criteria: {dateOfBirth: "Ava Thompson 2016"}, '
        "purpose: AVA_THOMPSON_9434765919) { id } }"
    )
    body = post(hub, {"query": query}).json()
    assert body["errors"] and body["data"] is None
    text = json.dumps(body)
    assert "Thompson" not in text and "THOMPSON" not in text and "9434765919" not in text
    assert all(e["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED" for e in body["errors"])
    assert all_events(hub)[-1]["outcome"] == "invalid"


def test_bad_variable_values_are_the_clients_error_not_an_internal_one(hub: Hub) -> None:
    body = post(
        hub,
        {
            "query": SEARCH,
            "variables": {"criteria": {"dateOfBirth": "not-a-date"}, "purpose": "MASH_RESEARCH"},
        },
    ).json()
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "not-a-date" not in json.dumps(body)
    assert all_events(hub)[-1]["outcome"] == "invalid"


def test_one_operation_serves_one_purpose(hub: Hub) -> None:
    child_id = find_ava(hub)
    query = (
        f'{{ a: child(id: "{child_id}", purpose: S47_STRATEGY) {{ id }} '
        f'b: searchChildren(criteria: {{nhsNumber: "9434765919"}}, '
        "purpose: MASH_SCREENING) { id } }"
    )
    body = post(hub, {"query": query}).json()
    assert any(e["extensions"]["code"] == "BAD_USER_INPUT" for e in body["errors"])
    assert all_events(hub)[-1]["purpose"] == "S47_STRATEGY"


def test_audited_field_paths_are_schema_names_not_the_clients_aliases(hub: Hub) -> None:
    child_id = find_ava(hub)
    contact = hub.contact(child_id)
    query = (
        f'query Aliased {{ AvaThompson: child(id: "{child_id}", purpose: MASH_RESEARCH, '
        f'contactId: "{contact}") '
        "{ x: police { ... on PoliceSection { y: intelligence { "
        "... on PoliceIntelligence { z: summary } } } } } }"
    )
    ok(post(hub, {"query": query}))
    event = all_events(hub)[-1]
    assert event["operationName"] == "Aliased"
    assert "child.police.intelligence.summary" in event["fieldsReturned"]
    assert not any("AvaThompson" in p or ".x" in p for p in event["fieldsReturned"])


def test_audit_log_is_refused_to_roles_other_than_ig(hub: Hub) -> None:
    body = post(
        hub, {"query": "{ auditEvents(first: 1) { totalCount } }"}, role="mash_manager"
    ).json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert all_events(hub)[-1]["outcome"] == "denied"


def test_audit_total_count_counts_every_event(hub: Hub) -> None:
    before = ok(
        post(hub, {"query": "{ auditEvents(first: 1) { totalCount } }"}, role="ig_officer")
    )["auditEvents"]["totalCount"]
    ok(post(hub, {"query": "{ __typename }"}))
    after = ok(post(hub, {"query": "{ auditEvents(first: 1) { totalCount } }"}, role="ig_officer"))[
        "auditEvents"
    ]["totalCount"]
    assert after == before + 2  # the typename query and the first listing itself


def test_nothing_personal_reaches_the_logs_when_requests_fail(
    hub: Hub, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.INFO)  # what a deployment logs; libraries' DEBUG is not on
    caplog.set_level(logging.DEBUG, logger="hub")  # the hub's own, at every level
    for body in (
        {
            "query": 'query Jade_Thompson { child(id: "Ava Thompson", purpose: MASH_RESEARCH) '
            "{ id } }"
        },
        {"query": "query A { __typename }", "operationName": "Ava_Thompson"},
        {
            "query": SEARCH,
            "variables": {
                "criteria": {"familyName": "Thompson", "dateOfBirth": "2016-99-14"},
                "purpose": "MASH_RESEARCH",
            },
        },
        {"query": SEARCH, "variables": {"criteria": AVA, "purpose": "MASH_RESEARCH"}},
    ):
        post(hub, body)
    httpx.post(
        f"{hub.url}/graphql",
        json={"query": "{ __typename }"},
        headers={"Authorization": f"Bearer {devissuer.mint(tmp_path, 'mash_social_worker')}"},
        timeout=10,
    )
    assert any(r.name.startswith("hub") for r in caplog.records), "the hub's logs are captured"
    for needle in ("Thompson", "2016-03-14", "2016-99-14", "9434765919"):
        assert needle not in caplog.text


def test_location_protected_child_shows_no_location_in_record_household_or_postcode_search(
    hub: Hub,
) -> None:
    with sqlite3.connect(hub.data_dir / "sources" / "health.sqlite3") as db:
        rows = db.execute(
            "SELECT resource FROM patients WHERE restricted = 1 AND birth_date >= '2010-01-01' "
            "AND nhs_number IS NOT NULL AND postcode IS NOT NULL ORDER BY id"
        ).fetchall()
    protected = [json.loads(r[0]) for r in rows]
    assert protected, "the demo data holds a location-protected child"
    child = protected[0]
    nhs = child["identifier"][0]["value"]
    postcode = child["address"][0]["postalCode"]
    found = ok(
        post(
            hub,
            {
                "query": SEARCH,
                "variables": {"criteria": {"nhsNumber": nhs}, "purpose": "MASH_RESEARCH"},
            },
        )
    )["searchChildren"]
    assert [m["nhsNumber"] for m in found] == [nhs]
    contact = hub.contact(found[0]["id"], decision="S47")
    for role in ("mash_manager", "health_practitioner", "police_researcher", "partner_system"):
        record = ok(
            post(
                hub,
                {
                    "query": """query($id: ID!, $contactId: ID) {
            child(id: $id, purpose: S47_STRATEGY, contactId: $contactId) {
            person { givenName postcode address redactedFields { field reason } }
            household { person { postcode address redactedFields { field reason } } } } }""",
                    "variables": {"id": found[0]["id"], "contactId": contact},
                },
                role,
            )
        )["child"]
        people = [record["person"], *(m["person"] for m in record["household"])]
        if role == "partner_system":  # rule 17: flags only, no one identified
            assert record["person"]["givenName"] is None and record["household"] == []
            assert all(p["postcode"] is None and p["address"] is None for p in people)
            continue
        assert record["person"]["givenName"], "the child is identified; only location is not"
        for person in people:
            assert person["postcode"] is None and person["address"] is None
            assert {"field": "address", "reason": "LOCATION_PROTECTED"} in person["redactedFields"]
    by_postcode = ok(
        post(
            hub,
            {
                "query": SEARCH,
                "variables": {"criteria": {"postcode": postcode}, "purpose": "MASH_RESEARCH"},
            },
        )
    )["searchChildren"]
    assert nhs not in [m["nhsNumber"] for m in by_postcode]


def test_a_document_may_not_multiply_record_reads_without_limit(hub: Hub) -> None:
    child_id = find_ava(hub)
    reads = " ".join(
        f'c{i}: child(id: "{child_id}", purpose: MASH_RESEARCH) {{ id }}' for i in range(30)
    )
    body = post(hub, {"query": f"{{ {reads} }}"}).json()
    assert body["data"] is None and body["errors"]
    assert all_events(hub)[-1]["outcome"] == "invalid"


PURPOSES = (
    "MASH_SCREENING, MASH_RESEARCH, THRESHOLD_DECISION, S47_STRATEGY, S17_ASSESSMENT, "
    "EARLY_HELP, SAR_RESPONSE, IG_AUDIT, BREAK_GLASS"
)
VARS = (
    "query Find($c: PersonSearch!, $p: Purpose!) "
    "{ searchChildren(criteria: $c, purpose: $p) { id } }"
)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"query": '{ searchChildren(criteria: {familyName: "Thompson"}) { id } }'},
            "Argument 'purpose' of 'searchChildren' is required: name the purpose of use of "
            f"this request, one of {PURPOSES}.",
        ),
        (
            {
                "query": '{ searchChildren(criteria: {familyName: "Thompson"}, '
                "purpose: AVA) { id } }"
            },
            f"'purpose' is not a known Purpose: one of {PURPOSES}.",
        ),
        (
            {"query": VARS, "variables": {"c": {"familyName": "Thompson"}, "p": "AVA"}},
            f"Variable '$p' is not a known Purpose: one of {PURPOSES}.",
        ),
        (
            {"query": VARS, "variables": {"c": {"familyName": "Thompson"}}},
            f"Variable '$p' is required: one of {PURPOSES}.",
        ),
        (
            {
                "query": '{ searchChildren(criteria: {familyName: "Thompson", '
                'dateOfBirth: "14/03/2016"}, purpose: MASH_SCREENING) { id } }'
            },
            "'dateOfBirth' is not a valid Date: expected a date written YYYY-MM-DD "
            "(for example 2016-03-14).",
        ),
        (
            {
                "query": VARS,
                "variables": {"c": {"dateOfBirth": "14/03/2016"}, "p": "MASH_SCREENING"},
            },
            "Variable '$c' at 'dateOfBirth' is not a valid Date: expected a date written "
            "YYYY-MM-DD (for example 2016-03-14).",
        ),
    ],
)
def test_request_errors_name_the_argument_and_what_it_accepts(
    hub: Hub, body: Any, message: str
) -> None:
    answer = post(hub, body).json()
    assert [e["message"] for e in answer["errors"]] == [message]
    assert answer["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "14/03" not in json.dumps(answer) and "AVA" not in answer["errors"][0]["message"]


def test_each_distinct_document_is_parsed_and_validated_once(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    import graphql

    from hub.serving import operation

    calls: list[str] = []

    def counted(name: str, real: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return real(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(operation, "parse", counted("parse", graphql.parse))
    monkeypatch.setattr(operation, "validate", counted("validate", graphql.validate))
    query = f"query Once {{ __typename }}  # {uuid.uuid4()}: a text no other run sends"
    for _ in range(3):
        assert ok(hub.gql("mash_social_worker", query)) == {"__typename": "Query"}
    assert calls == ["parse", "validate"]
    # over the token limit: refused as before, as a validation failure, never cached as valid
    long = "{ " + " ".join(["__typename"] * 4001) + " }"
    for _ in range(2):
        body = hub.gql("mash_social_worker", long).json()
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        assert "4000 tokens" in body["errors"][0]["message"]


def test_a_child_read_leaves_no_cycle_holding_its_request_context(hub: Hub) -> None:
    # graphql-core's execution context refers to itself; left so, every operation's
    # context, audit notes and field caches waited for the garbage collector.
    child_id = find_ava(hub)
    variables = reading(hub, child_id)
    ok(hub.gql("mash_social_worker", RECORD, variables))  # warm: first-read work
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(3):
            record = ok(hub.gql("mash_social_worker", RECORD, variables))["child"]
            assert record["police"], "a whole record was read"
        gc.collect()
        held = [o for o in gc.garbage if isinstance(o, (Context, AuditNotes))]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert held == [], f"{len(held)} request contexts and audit notes were left in cycles"
