"""The health adapter reads FHIR JSON without building fhir.resources models: a malformed
answer must still be `SourceResponseInvalid`, whichever element is wrong and whichever call
reads it. Each case is checked against fhir.resources too, so that it is malformed FHIR and
not merely something this adapter dislikes."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import date
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from adapters.base import PersonQuery, SourceResponseInvalid
from adapters.health import NHS_NUMBER_SYSTEM, HealthAdapter
from adapters.http import HttpSettings

Payload = dict[str, Any]

PATIENT: Payload = {
    "resourceType": "Patient",
    "id": "p1",
    "meta": {"security": [{"code": "N"}]},
    "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": "9434765919"}],
    "name": [{"use": "official", "family": "Thompson", "given": ["Ava"]}],
    "gender": "female",
    "birthDate": "2016-03-14",
    "address": [{"use": "home", "line": ["14 Larch Close"], "postalCode": "HT4 2QX"}],
}
ENCOUNTER: Payload = {
    "resourceType": "Encounter",
    "id": "e1",
    "status": "finished",
    "class": {"code": "EMER"},
    "subject": {"reference": "Patient/p1"},
    "period": {"start": "2026-06-02T09:07:00+00:00"},
    "reasonCode": [{"text": "Head injury"}],
}
CARE_PLAN: Payload = {
    "resourceType": "CarePlan",
    "id": "c1",
    "status": "active",
    "intent": "plan",
    "subject": {"reference": "Patient/p1"},
    "category": [{"coding": [{"code": "CPP"}], "text": "Child protection plan"}],
    "period": {"start": "2026-11-02"},
}
BUNDLE: Payload = {
    "resourceType": "Bundle",
    "type": "searchset",
    "total": 1,
    "entry": [{"resource": r} for r in (PATIENT, ENCOUNTER, CARE_PLAN)],
}


def _adapter(bundle: Payload) -> HealthAdapter:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/metadata"):
            return httpx.Response(200, json={"resourceType": "CapabilityStatement"})
        return httpx.Response(200, json=bundle)

    settings = HttpSettings.from_config({"url": "http://fhir.test/fhir", "retries": 0}, "health")
    return HealthAdapter(settings, transport=httpx.MockTransport(answer))


def _entry(index: int) -> Callable[[Payload], Payload]:
    return lambda b: b["entry"][index]["resource"]


PATIENT_OF, ENCOUNTER_OF, PLAN_OF = _entry(0), _entry(1), _entry(2)


def _set(where: Callable[[Payload], Any], key: str, value: Any) -> Callable[[Payload], None]:
    def change(bundle: Payload) -> None:
        where(bundle)[key] = value

    return change


def _drop(where: Callable[[Payload], Any], key: str) -> Callable[[Payload], None]:
    return lambda bundle: where(bundle).pop(key)


MALFORMED: dict[str, Callable[[Payload], None]] = {
    "bundle without a type": _drop(lambda b: b, "type"),
    "entry not a list": _set(lambda b: b, "entry", {"resource": PATIENT}),
    "total not a number": _set(lambda b: b, "total", "many"),
    "next link url not a string": _set(lambda b: b, "link", [{"relation": "next", "url": 5}]),
    "resource without a type": _drop(PATIENT_OF, "resourceType"),
    "patient id with spaces": _set(PATIENT_OF, "id", "p 1"),
    "birth date not a FHIR date": _set(PATIENT_OF, "birthDate", "14/03/2016"),
    "birth date on a day the month lacks": _set(PATIENT_OF, "birthDate", "2016-02-30"),
    "name not a list": _set(PATIENT_OF, "name", {"family": "Thompson"}),
    "given name not a string": _set(PATIENT_OF, "name", [{"family": "Thompson", "given": [1]}]),
    "NHS number a JSON number": _set(
        PATIENT_OF, "identifier", [{"system": NHS_NUMBER_SYSTEM, "value": 9434765919}]
    ),
    "address line not a list": _set(PATIENT_OF, "address", [{"line": "14 Larch Close"}]),
    "security labels not a list": _set(PATIENT_OF, "meta", {"security": {"code": "R"}}),
    "encounter without a class": _drop(ENCOUNTER_OF, "class"),
    "encounter without a status": _drop(ENCOUNTER_OF, "status"),
    "encounter start not a dateTime": _set(ENCOUNTER_OF, "period", {"start": "yesterday"}),
    "encounter subject reference a number": _set(ENCOUNTER_OF, "subject", {"reference": 1}),
    "encounter reasons not a list": _set(ENCOUNTER_OF, "reasonCode", {"text": "Head injury"}),
    "care plan without an intent": _drop(PLAN_OF, "intent"),
    "care plan category coding not a list": _set(
        PLAN_OF, "category", [{"coding": {"code": "CPP"}}]
    ),
}
# Which calls read the element: search and fetch read patients (the default below), items
# reads only the envelope, a patient's security labels and its encounters and plans, probe
# the total.
CALLS: dict[str, Callable[[HealthAdapter], Any]] = {
    "search": lambda a: a.search(PersonQuery(nhs_number="9434765919")),
    "fetch": lambda a: a.fetch(["p1"]),
    "items": lambda a: a.items(["p1"]),
    "probe": lambda a: a.probe(),
}
READ_BY = {
    "total not a number": "probe",
    "security labels not a list": "items",
    **{case: "items" for case in MALFORMED if case.startswith(("encounter", "care plan"))},
}
ENVELOPE = ("bundle without a type", "entry not a list", "next link", "resource without")


def _malformed(case: str) -> Payload:
    bundle = copy.deepcopy(BUNDLE)
    MALFORMED[case](bundle)
    return bundle


@pytest.mark.parametrize("case", list(MALFORMED))
def test_each_malformed_case_is_malformed_fhir(case: str) -> None:
    Bundle.model_validate(copy.deepcopy(BUNDLE))
    with pytest.raises(ValidationError):
        Bundle.model_validate(_malformed(case))


@pytest.mark.parametrize("case", list(MALFORMED))
async def test_malformed_fhir_is_an_invalid_response(case: str) -> None:
    calls = [READ_BY[case]] if case in READ_BY else ["search", "fetch"]
    calls += ["items"] if case.startswith(ENVELOPE) else []
    for call in calls:
        adapter = _adapter(_malformed(case))
        try:
            with pytest.raises(SourceResponseInvalid) as info:
                await CALLS[call](adapter)
            assert "Thompson" not in str(info.value) and "9434765919" not in str(info.value)
        finally:
            await adapter.aclose()


async def test_well_formed_bundle_reads_as_before() -> None:
    adapter = _adapter(copy.deepcopy(BUNDLE))
    try:
        [ava] = await adapter.search(PersonQuery(nhs_number="9434765919"))
        assert (ava.local_id, ava.given_name, ava.family_name) == ("p1", "Ava", "Thompson")
        assert (ava.date_of_birth, ava.nhs_number, ava.postcode) == (
            date(2016, 3, 14),
            "9434765919",
            "HT4 2QX",
        )
        encounter, plan = await adapter.items(["p1"])
        assert encounter.data == {
            "date": date(2026, 6, 2),
            "encounter_class": "A&E",
            "reason": "Head injury",
        }
        assert plan.data == {"category": "CPP", "status": "active", "start": date(2026, 11, 2)}
        assert (await adapter.probe()).record_count == 1
    finally:
        await adapter.aclose()


async def test_partial_birth_date_is_valid_fhir_and_names_no_day() -> None:
    bundle = copy.deepcopy(BUNDLE)
    PATIENT_OF(bundle)["birthDate"] = "2016"
    Bundle.model_validate(bundle)
    adapter = _adapter(bundle)
    try:
        [ava] = await adapter.search(PersonQuery(nhs_number="9434765919"))
        assert ava.date_of_birth is None
    finally:
        await adapter.aclose()


@pytest.mark.parametrize(
    ("where", "call"),
    [(PATIENT_OF, "search"), (ENCOUNTER_OF, "items")],
    ids=["patient", "encounter"],
)
async def test_resource_without_an_id_is_an_invalid_response(
    where: Callable[[Payload], Any], call: str
) -> None:
    # FHIR lets a resource travel without an id, but not as a search result the adapter uses.
    bundle = copy.deepcopy(BUNDLE)
    where(bundle).pop("id")
    adapter = _adapter(bundle)
    try:
        with pytest.raises(SourceResponseInvalid):
            await CALLS[call](adapter)
    finally:
        await adapter.aclose()
