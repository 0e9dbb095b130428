"""The synthetic population: deterministic, valid, and always holding the showcase family."""

from __future__ import annotations

import time
from dataclasses import asdict

import pytest

from hub.demo import generator as g


@pytest.fixture(scope="module")
def pop() -> g.Population:
    return g.generate()


def test_same_seed_same_output() -> None:
    a, b = g.generate(households=120, seed=11), g.generate(households=120, seed=11)
    assert asdict(a) == asdict(b)
    assert asdict(a) != asdict(g.generate(households=120, seed=12))


def test_fast_enough() -> None:
    start = time.perf_counter()
    g.generate(households=300, seed=3)
    assert time.perf_counter() - start < 5


def test_sizes(pop: g.Population) -> None:
    assert len(pop.households) == 300
    assert 600 < len(pop.persons) < 1500
    assert len({p.id for p in pop.persons}) == len(pop.persons)
    assert 100 <= len(pop.adult_social_care.persons) <= 600


def test_nhs_numbers_valid_and_unique(pop: g.Population) -> None:
    numbers = [p.nhs_number for p in pop.persons if p.nhs_number]
    assert len(numbers) == len(set(numbers))
    assert len(numbers) > 0.9 * len(pop.persons)
    assert all(g.is_valid_nhs_number(n) for n in numbers)
    assert g.is_valid_nhs_number("943 476 5919")
    assert not g.is_valid_nhs_number("9434765918")


def test_showcase_household(pop: g.Population) -> None:
    home = pop.household("HH000000")
    assert (home.address, home.postcode) == (g.SHOWCASE_ADDRESS, g.SHOWCASE_POSTCODE)
    assert home.previous_postcode == g.SHOWCASE_PREVIOUS_POSTCODE
    family = {p.given_name: p for p in pop.members("HH000000")}
    assert set(family) == {"Ava", "Noah", "Jade", "Liam"}
    ava, noah, jade, liam = (family[n] for n in ("Ava", "Noah", "Jade", "Liam"))
    assert (ava.family_name, ava.date_of_birth, ava.nhs_number, ava.role) == (
        "Thompson",
        g.AVA_DOB,
        "9434765919",
        "child",
    )
    assert (noah.family_name, noah.date_of_birth, noah.role) == ("Thompson", g.NOAH_DOB, "child")
    assert g.is_valid_nhs_number(noah.nhs_number)
    assert (jade.role, liam.role) == ("parent", "partner")
    # nobody else shares the showcase children's dates of birth with their names
    others = [p for p in pop.persons if p.household_id != "HH000000"]
    assert not [p for p in others if p.date_of_birth in (g.AVA_DOB, g.NOAH_DOB)]


def test_health_slice(pop: g.Population) -> None:
    patients = {p.nhs_number: p for p in pop.health.patients}
    ava, noah = patients[g.AVA_NHS], patients[g.NOAH_NHS]
    assert (ava.given_name, ava.family_name, ava.date_of_birth) == ("Ava", "Thompson", g.AVA_DOB)
    assert noah.date_of_birth == g.NOAH_DOB
    ae = [e for e in pop.health.encounters if e.patient_id == ava.id]
    assert [e.class_code for e in ae] == ["EMER", "EMER"]
    assert [(c.category, c.status) for c in pop.health.care_plans if c.patient_id == ava.id] == [
        ("CPP", "active")
    ]
    others = [e for e in pop.health.encounters if e.patient_id != ava.id]
    assert len(others) > 10
    assert {c.category for c in pop.health.care_plans} >= {"CPP", "LAC"}


def test_police_slice(pop: g.Population) -> None:
    police = pop.police
    [eva] = [p for p in police.persons if (p.given_name, p.family_name) == ("Eva", "Thomson")]
    assert eva.date_of_birth == g.AVA_DOB and eva.nhs_number is None
    assert eva.postcode == g.SHOWCASE_POSTCODE
    roles = {(i.person_id, i.incident_id): i.role for i in police.involvements}
    incidents = {i.id: i for i in police.incidents}
    [eva_inc] = [incidents[i] for (p, i) in roles if p == eva.id]
    assert (eva_inc.category, eva_inc.dash_risk, eva_inc.postcode) == (
        "DOMESTIC_ABUSE",
        "HIGH",
        g.SHOWCASE_POSTCODE,
    )
    on_incident = {
        police_person.given_name: roles[(police_person.id, eva_inc.id)]
        for police_person in police.persons
        if (police_person.id, eva_inc.id) in roles
    }
    assert on_incident["Jade"] == "VICTIM"
    assert on_incident["Liam"] == "SUSPECT"
    assert on_incident["Eva"] == "PRESENT"
    liam = next(p for p in police.persons if p.given_name == "Liam" and p.family_name == "Carter")
    assert any(i.person_id == liam.id and i.handling_code == "C" for i in police.intelligence)
    assert any(i.person_id == eva.id and i.handling_code == "C" for i in police.intelligence)
    assert sum(1 for p in police.persons if p.nhs_number) < len(police.persons) / 3
    assert {i.dash_risk for i in police.incidents if i.category == "DOMESTIC_ABUSE"} == {
        "STANDARD",
        "MEDIUM",
        "HIGH",
    }
    for i in police.intelligence:
        assert i.source_grade in "ABC" and 1 <= i.intelligence_grade <= 5
        assert i.handling_code in ("P", "C")


def test_adult_social_care_slice(pop: g.Population) -> None:
    asc = pop.adult_social_care
    [jade] = [p for p in asc.persons if (p.given_name, p.family_name) == ("Jade", "Thompson")]
    assert jade.postcode == g.SHOWCASE_POSTCODE and jade.date_of_birth == g.JADE_DOB
    assert [
        (i.involvement_type, i.status) for i in asc.involvements if i.asc_person_id == jade.id
    ] == [("MENTAL_HEALTH", "OPEN")]
    adults = {p.id for p in pop.persons if p.role != "child"}
    assert all(p.person_id in adults for p in asc.persons)
    assert {i.involvement_type for i in asc.involvements} == {
        "MENTAL_HEALTH",
        "SUBSTANCE_MISUSE",
        "CARE_ACT_S42",
        "CARE_NEEDS",
    }


def test_early_help_slice(pop: g.Population) -> None:
    eh = pop.early_help
    people = {(p.given_name, p.family_name): p for p in eh.persons}
    ava = people[("Ava", "Thompson-Reid")]
    assert ava.date_of_birth == g.AVA_DOB and ava.postcode == g.SHOWCASE_PREVIOUS_POSTCODE
    noah = people[("Noah", "Thompson")]
    assert noah.date_of_birth == g.NOAH_DOB_SWAPPED
    [consent] = [c for c in eh.consents if c.eh_person_id == ava.id]
    assert (consent.status, consent.given_by, consent.scope) == (
        "GIVEN",
        "Jade Thompson",
        "share with MASH partners",
    )
    assert [e for e in eh.episodes if e.eh_person_id == ava.id]
    assert {c.status for c in eh.consents} >= {"GIVEN", "REFUSED", "NOT_SOUGHT"}
