"""IG finds a person's hub id (issue 13, item 8), without a browser: the hub app in
process on an embedded store holding two resolved people. The lookup answers ids only, to
IG only, reads dates en-GB with a clear message for a bad one, and is audited with the ids
it found and how it looked, never with what was typed."""

from __future__ import annotations

import json
import re
from typing import Any

from hub.audit.models import AuditEvent

from .inprocess import App

TYPED = ("9434765919", "943 476 5919", "Ava", "AVA", "Thompson", "thompson", "2016", "14/03")
FIND = """query Find($nhs: String, $given: String, $family: String, $born: Date) {
  findSubjects(purpose: SAR_RESPONSE, nhsNumber: $nhs, givenName: $given,
               familyName: $family, dateOfBirth: $born)
}"""


def _ids(page: str) -> list[str]:
    return re.findall(r'<code class="hub-id">([^<]+)</code>', page)


def _unechoed(text: str) -> None:
    for value in TYPED:
        assert value not in text, value


async def test_ig_finds_ava_by_nhs_number_and_gets_her_hub_id_only(app: App) -> None:
    page = await app.find("ig_officer", nhs_number="943 476 5919")

    assert page.status_code == 200
    assert _ids(page.text) == [app.ava]
    assert f"/ig/report/subject_access?subject_id={app.ava}" in page.text
    _unechoed(page.text)  # no name, date of birth or NHS number, not even the one typed


async def test_ig_finds_ava_by_name_and_en_gb_date_of_birth_whatever_the_case_and_accents(
    app: App,
) -> None:
    page = await app.find(
        "ig_officer", given_name=" AVA ", family_name="thompsón", date_of_birth="14/03/2016"
    )

    assert page.status_code == 200 and _ids(page.text) == [app.ava]  # not her twin Ada
    _unechoed(page.text)


async def test_the_lookup_is_audited_with_the_ids_found_never_what_was_typed(app: App) -> None:
    await app.find(
        "ig_officer", given_name="Ava", family_name="Thompson", date_of_birth="14/03/2016"
    )

    event, subjects = await app.last_event("ig find_subjects")
    assert event.purpose == "SAR_RESPONSE" and event.outcome == "ok"
    assert event.actor_roles == ["ig_officer"]
    assert event.report == {"name": "find_subjects", "by": "name_and_date_of_birth"}
    assert subjects == {app.ava: "lookup_result"}
    stored = json.dumps(
        {c.name: getattr(event, c.name) for c in AuditEvent.__table__.columns}, default=str
    )
    for value in ("Ava", "Thompson", "2016-03-14", "14/03/2016", "9434765919"):
        assert value not in stored, value


async def test_a_bad_date_of_birth_gets_a_clear_message_naming_the_field_and_the_format(
    app: App,
) -> None:
    page = await app.find(
        "ig_officer", given_name="Ava", family_name="Thompson", date_of_birth="03/14/2016"
    )

    assert page.status_code == 400
    assert "The date of birth is not a date: write it as dd/mm/yyyy" in page.text
    assert _ids(page.text) == []
    _unechoed(page.text)
    event, subjects = await app.last_event("ig find_subjects")
    assert (event.outcome, event.error_code, subjects) == ("invalid", "BAD_USER_INPUT", {})


async def test_a_lookup_needs_an_nhs_number_or_all_of_name_and_date_of_birth(app: App) -> None:
    partial = await app.find("ig_officer", family_name="Thompson")
    invalid = await app.find("ig_officer", nhs_number="9434765918")  # wrong check digit

    assert (
        partial.status_code == 400 and "given name, family name and date of birth" in partial.text
    )
    assert invalid.status_code == 400 and "not a valid NHS number" in invalid.text
    _unechoed(partial.text + invalid.text)


async def test_other_roles_are_refused_the_lookup_and_the_refusal_is_audited(app: App) -> None:
    page = await app.find("mash_manager", nhs_number="9434765919")

    assert page.status_code == 403
    assert "information governance roles only" in page.text and _ids(page.text) == []
    event, subjects = await app.last_event("ig find_subjects")
    assert (event.outcome, event.error_code, subjects) == ("denied", "FORBIDDEN", {})


async def test_the_graphql_lookup_answers_ids_to_ig_only_for_a_subject_access_response(
    app: App,
) -> None:
    def ask(role: str, purpose: str = "SAR_RESPONSE", **variables: str) -> Any:
        query = FIND.replace("SAR_RESPONSE", purpose)
        headers = {"Authorization": f"Bearer {app.token(role)}"}
        return app.client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )

    by_number = (await ask("ig_officer", nhs="9434765919")).json()
    by_name = (await ask("ig_officer", given="Ada", family="THOMPSON", born="2016-03-14")).json()
    refused = (await ask("mash_manager", nhs="9434765919")).json()
    wrong_purpose = (await ask("ig_officer", "IG_AUDIT", nhs="9434765919")).json()

    assert by_number == {"data": {"findSubjects": [app.ava]}}
    assert by_name == {"data": {"findSubjects": [app.ada]}}
    for answer in (refused, wrong_purpose):
        assert answer["errors"][0]["extensions"]["code"] == "FORBIDDEN", answer
        assert "SAR_RESPONSE" in answer["errors"][0]["message"]
    event, subjects = await app.last_event("Find")
    assert event.purpose == "IG_AUDIT" and event.outcome != "ok" and subjects == {}
