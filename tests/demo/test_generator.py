"""The synthetic population: deterministic, realistic noise, and always the showcase family."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import asdict

import pytest

from hub.demo import generator as g

N = 2000


@pytest.fixture(scope="module")
def pop() -> g.Population:
    return g.generate(households=N, seed=7)


def test_same_seed_same_population_and_other_seed_differs() -> None:
    a, b = g.generate(households=120, seed=11), g.generate(households=120, seed=11)
    assert asdict(a) == asdict(b)
    assert asdict(a) != asdict(g.generate(households=120, seed=12))


def test_a_chunk_depends_only_on_households_seed_and_index() -> None:
    households = 2 * g.CHUNK + 10
    assert asdict(g.generate_chunk(households, 3, 1)) == asdict(list(g.chunks(households, 3))[1])


def test_every_source_holds_about_two_and_a_half_persons_per_household(
    pop: g.Population,
) -> None:
    area = [p for p in pop.persons if p.in_area]
    assert 2.3 * N < len(area) < 2.8 * N
    for records in (
        pop.health.patients,
        pop.police.persons,
        pop.adult_social_care.persons,
        pop.early_help.persons,
    ):
        assert 2.45 * N <= len(records) <= 2.6 * N
    ids = [p.id for p in pop.persons]
    assert len(ids) == len(set(ids))


def test_postcodes_hold_15_to_40_households_and_uprns_are_unique_but_a_hostels(
    pop: g.Population,
) -> None:
    area = [h for h in pop.households if h.in_area and h.id.startswith("HH")]
    per_postcode = Counter(h.postcode for h in area)
    per_postcode.pop(g.SHOWCASE_POSTCODE)
    assert 15 <= statistics.mean(per_postcode.values()) <= 40
    rooms = [h for h in pop.households if h.shared == "hostel"]
    assert {h.uprn for h in rooms} == {g.HOSTEL_UPRN}
    others = [h for h in pop.households if h.shared != "hostel"]
    assert len({h.uprn for h in others} | {g.HOSTEL_UPRN}) == len(others) + 1
    moved = sum(1 for h in area if h.previous_postcode) / len(area)
    assert 0.12 < moved < 0.25


def test_nhs_numbers_valid_and_unique(pop: g.Population) -> None:
    numbers = [p.nhs_number for p in pop.persons if p.nhs_number]
    assert len(numbers) == len(set(numbers))
    assert len(numbers) > 0.95 * len(pop.persons)
    assert all(g.is_valid_nhs_number(n) for n in numbers)
    assert g.is_valid_nhs_number("943 476 5919")
    assert not g.is_valid_nhs_number("9434765918")


@pytest.mark.parametrize(
    ("slice_name", "low", "high"),
    [
        ("health", 0.94, 0.99),
        ("police", 0.06, 0.14),
        ("adult_social_care", 0.15, 0.25),
        ("early_help", 0.10, 0.20),
    ],
)
def test_nhs_number_coverage_per_source(
    pop: g.Population, slice_name: str, low: float, high: float
) -> None:
    s = getattr(pop, slice_name)
    records = s.patients if slice_name == "health" else s.persons
    share = sum(1 for r in records if r.nhs_number) / len(records)
    assert low <= share <= high


def test_identity_noise_in_police_records(pop: g.Population) -> None:
    truth = {p.id: p for p in pop.persons}
    records = pop.police.persons
    nick = sum(
        1
        for r in records
        if r.given_name != truth[r.person_id].given_name
        and r.given_name in g._pools(7).nicknames.get(truth[r.person_id].given_name, ())
    )
    swapped = sum(
        1
        for r in records
        if r.date_of_birth
        and r.date_of_birth != truth[r.person_id].date_of_birth
        and (r.date_of_birth.day, r.date_of_birth.month)
        == (truth[r.person_id].date_of_birth.month, truth[r.person_id].date_of_birth.day)
    )
    double = sum(
        1 for r in records if "-" in r.family_name and "-" not in truth[r.person_id].family_name
    )
    missing_dob = sum(1 for r in records if r.date_of_birth is None)
    n = len(records)
    assert 0.04 * n < nick < 0.14 * n
    assert 0.003 * n < swapped < 0.03 * n
    assert 0.005 * n < double < 0.04 * n
    assert 0.01 * n < missing_dob < 0.05 * n
    homes = {h.id: h for h in pop.households}
    stale = sum(
        1
        for r in records
        if r.postcode and r.postcode == homes[truth[r.person_id].household_id].previous_postcode
    )
    assert stale > 0


def test_twins_half_siblings_and_babies(pop: g.Population) -> None:
    truth = {p.id: p for p in pop.persons}
    relations = Counter(r.relation for r in pop.relations)
    assert {"parent", "child", "partner", "sibling", "half_sibling", "twin"} <= set(relations)
    twins = [
        (truth[r.person_id], truth[r.related_id]) for r in pop.relations if r.relation == "twin"
    ]
    assert all(
        a.date_of_birth == b.date_of_birth and a.household_id == b.household_id for a, b in twins
    )
    assert any(a.sex == b.sex for a, b in twins)
    halves = [
        (truth[r.person_id], truth[r.related_id])
        for r in pop.relations
        if r.relation == "half_sibling"
    ]
    assert any(a.family_name != b.family_name for a, b in halves)
    assert any(p.given_name == "Baby" for p in pop.health.patients)


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
    assert (jade.role, liam.role) == ("parent", "partner")
    others = [p for p in pop.persons if p.household_id != "HH000000"]
    assert not [p for p in others if p.date_of_birth in (g.AVA_DOB, g.NOAH_DOB)]
    assert g.SHOWCASE_POSTCODE not in {h.postcode for h in pop.households if h.id != "HH000000"}


def test_health_slice(pop: g.Population) -> None:
    patients = {p.nhs_number: p for p in pop.health.patients if p.nhs_number}
    ava, noah = patients[g.AVA_NHS], patients[g.NOAH_NHS]
    assert ava.id == "pat-000001"
    assert (ava.given_name, ava.family_name, ava.date_of_birth) == ("Ava", "Thompson", g.AVA_DOB)
    assert noah.date_of_birth == g.NOAH_DOB
    ae = [e for e in pop.health.encounters if e.patient_id == ava.id]
    assert [e.class_code for e in ae] == ["EMER", "EMER"]
    assert [(c.category, c.status) for c in pop.health.care_plans if c.patient_id == ava.id] == [
        ("CPP", "active")
    ]
    assert {c.category for c in pop.health.care_plans} >= {"CPP", "LAC"}
    assert {e.class_code for e in pop.health.encounters} == {"EMER", "AMB", "HH"}
    restricted = sum(1 for p in pop.health.patients if p.restricted) / len(pop.health.patients)
    assert 0.004 < restricted < 0.02


def test_police_slice(pop: g.Population) -> None:
    police = pop.police
    [eva] = [p for p in police.persons if (p.given_name, p.family_name) == ("Eva", "Thomson")]
    assert eva.id == "PP000001"
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
        p.given_name: roles[(p.id, eva_inc.id)]
        for p in police.persons
        if (p.id, eva_inc.id) in roles
    }
    assert (on_incident["Jade"], on_incident["Liam"], on_incident["Eva"]) == (
        "VICTIM",
        "SUSPECT",
        "PRESENT",
    )
    liam = next(p for p in police.persons if (p.given_name, p.family_name) == ("Liam", "Carter"))
    assert any(i.person_id == liam.id and i.handling_code == "C" for i in police.intelligence)
    assert any(i.person_id == eva.id and i.handling_code == "C" for i in police.intelligence)
    dash = Counter(i.dash_risk for i in police.incidents if i.category == "DOMESTIC_ABUSE")
    assert set(dash) == {"STANDARD", "MEDIUM", "HIGH"}
    assert dash["STANDARD"] > dash["MEDIUM"] > dash["HIGH"]
    assert {i.handling_code for i in police.intelligence} == {"P", "C"}
    assert any(i.investigation_sensitive for i in police.intelligence)
    for i in police.intelligence:
        assert i.source_grade in "ABC" and 1 <= i.intelligence_grade <= 5
    assert police.missing_episodes and police.warning_markers
    keys = [(i.person_id, i.incident_id, i.role) for i in police.involvements]
    assert len(keys) == len(set(keys))


def test_adult_social_care_slice(pop: g.Population) -> None:
    asc = pop.adult_social_care
    [jade] = [p for p in asc.persons if p.id == "ASC000001"]
    assert (jade.given_name, jade.family_name) == ("Jade", "Thompson")
    assert jade.postcode == g.SHOWCASE_POSTCODE and jade.date_of_birth == g.JADE_DOB
    assert [
        (i.involvement_type, i.status) for i in asc.involvements if i.asc_person_id == jade.id
    ] == [("MENTAL_HEALTH", "OPEN")]
    truth = {p.id: p for p in pop.persons}
    assert all(truth[p.person_id].role != "child" for p in asc.persons)
    assert {i.involvement_type for i in asc.involvements} == {
        "MENTAL_HEALTH",
        "SUBSTANCE_MISUSE",
        "CARE_ACT_S42",
        "CARE_NEEDS",
    }


def test_early_help_slice(pop: g.Population) -> None:
    eh = pop.early_help
    ava = next(p for p in eh.persons if p.id == "EH000001")
    assert (ava.given_name, ava.family_name) == ("Ava", "Thompson-Reid")
    assert ava.date_of_birth == g.AVA_DOB and ava.postcode == g.SHOWCASE_PREVIOUS_POSTCODE
    noah = next(p for p in eh.persons if p.person_id == "PER000001")
    assert noah.date_of_birth == g.NOAH_DOB_SWAPPED
    [consent] = [c for c in eh.consents if c.eh_person_id == ava.id]
    assert (consent.status, consent.given_by, consent.scope) == (
        "GIVEN",
        "Jade Thompson",
        "share with MASH partners",
    )
    assert [e for e in eh.episodes if e.eh_person_id == ava.id]
    statuses = Counter(c.status for c in eh.consents)
    assert set(statuses) == {"GIVEN", "REFUSED", "NOT_SOUGHT", "WITHDRAWN"}
    assert statuses["GIVEN"] > sum(statuses.values()) / 2


def test_hostel_holds_many_unrelated_adults_and_a_child_with_her_mother(pop: g.Population) -> None:
    [hostel] = [a for a in pop.shared_addresses() if a.kind == "hostel"]
    assert (hostel.postcode, hostel.address) == (g.HOSTEL_POSTCODE, g.HOSTEL_ADDRESS)
    people = [pop.person(i) for i in hostel.person_ids]
    child = pop.hostel_child()
    assert child in people and child.role == "child"
    assert [p.role for p in pop.housemates(child.id)] == ["parent"]
    adults = [p for p in people if p.role == "adult"]
    assert len(adults) == g.HOSTEL_SINGLE_ROOMS
    assert len({p.family_name for p in adults}) > 2, "unrelated: many family names"
    related = {(r.person_id, r.related_id) for r in pop.relations}
    assert not any((child.id, a.id) in related for a in adults)
    # their agency records are what a child there must not be shown unconfirmed
    theirs = pop.items_of(a.id for a in adults)
    assert {"ADULT_SOCIAL_CARE", "POLICE", "HEALTH"} <= {source for source, _ in theirs}
    records = {r for source, r in pop.records_of(a.id for a in adults)}
    asc = pop.adult_social_care.involvements
    kinds = {i.involvement_type for i in asc if i.asc_person_id in records}
    assert {"MENTAL_HEALTH", "CARE_ACT_S42"} <= kinds
    # the health records carry the building's UPRN: the hub must still tell rooms apart
    assert all(
        p.address == g.HOSTEL_ADDRESS
        for p in pop.health.patients
        if p.person_id in hostel.person_ids
    )


def test_block_is_recorded_without_flat_numbers_and_each_flat_is_a_home(pop: g.Population) -> None:
    [block] = [a for a in pop.shared_addresses() if a.kind == "block"]
    assert block.address == g.BLOCK_ADDRESS and len(block.household_ids) == g.BLOCK_FLATS
    flats = [pop.household(h) for h in block.household_ids]
    assert len({f.uprn for f in flats}) == g.BLOCK_FLATS
    child = pop.block_child()
    family = pop.housemates(child.id)
    assert family and all(p.household_id == child.household_id for p in family)
    neighbours = pop.neighbours(child.id)
    assert len(neighbours) > 6 and not {p.id for p in neighbours} & {p.id for p in family}
    assert pop.items_of(p.id for p in neighbours)


def test_long_street_child_lives_among_many_neighbours_known_to_the_agencies(
    pop: g.Population,
) -> None:
    child = pop.long_street_child()
    home = pop.household(child.household_id)
    assert home.postcode == pop.long_street() and home.address[0].isdigit()
    neighbours = pop.neighbours(child.id)
    assert len({p.household_id for p in neighbours}) >= 20
    sources = {source for source, _ in pop.items_of(p.id for p in neighbours)}
    assert {"ADULT_SOCIAL_CARE", "POLICE", "HEALTH"} <= sources
    assert pop.housemates(child.id) and child not in pop.housemates(child.id)


def test_records_of_and_items_of_name_each_persons_own_records(pop: g.Population) -> None:
    ava = pop.person("PER000000")
    assert pop.records_of([ava.id]) == {
        ("HEALTH", "pat-000001"),
        ("POLICE", "PP000001"),
        ("EARLY_HELP", "EH000001"),
    }
    items = pop.items_of([ava.id])
    assert {source for source, _ in items} == {"HEALTH", "POLICE", "EARLY_HELP"}
    jade = next(p for p in pop.persons if p.nhs_number == g.JADE_NHS)
    assert ("ADULT_SOCIAL_CARE", "INV000001") in pop.items_of([jade.id])
    assert ("ADULT_SOCIAL_CARE", "INV000001") not in items


def test_recorded_at_home_holds_housemates_and_stale_addresses_when_families_moved(
    pop: g.Population,
) -> None:
    ava = pop.person("PER000000")
    assert {p.given_name for p in pop.recorded_at_home(ava.id)} == {"Jade", "Noah", "Liam"}
    children = [p for p in pop.persons if p.role == "child" and p.in_area][:200]
    stale = [
        c
        for c in children
        if {p.id for p in pop.recorded_at_home(c.id)} - {p.id for p in pop.housemates(c.id)}
    ]
    # sources keep old addresses: someone recorded at a child's address who lives elsewhere
    assert stale
    for c in stale[:5]:
        home = pop.household(c.household_id)
        assert any(
            pop.household(p.household_id).previous_address == home.address
            or home.previous_address == pop.household(p.household_id).address
            for p in pop.recorded_at_home(c.id)
            if p.household_id != c.household_id
        )
