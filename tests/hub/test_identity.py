"""Identity: tiered, explained matching that links the showcase family, never a sibling or
twin."""

from __future__ import annotations

from datetime import date

from adapters.base import Labels, Source, SourcePerson
from hub.identity import matching
from hub.identity.matching import Demographics

AVA = Demographics("9434765919", "Ava", "Thompson", date(2016, 3, 14), ("HT42QX",), "female")

POLICE = Source("POLICE")


def person(
    local_id: str,
    given: str,
    family: str,
    born: date,
    sex: str | None = "female",
    nhs: str | None = None,
    source: Source = POLICE,
) -> SourcePerson:
    return SourcePerson(
        source=source,
        local_id=local_id,
        given_name=given,
        family_name=family,
        date_of_birth=born,
        sex=sex,
        nhs_number=nhs,
        postcode="HT4 2QX",
        address="14 Larch Close, Hilltown",
        labels=Labels(agency="police"),
    )


def test_match_links_a_misspelt_record_with_the_right_date_of_birth() -> None:
    link = matching.match(AVA, person("1", "Eva", "Thomson", date(2016, 3, 14)))
    assert link is not None and link.rule == "name_and_date_of_birth"


def test_match_links_a_double_barrelled_surname() -> None:
    assert matching.match(AVA, person("1", "Ava", "Thompson-Reid", date(2016, 3, 14)))


def test_match_refuses_a_different_nhs_number_whatever_else_agrees() -> None:
    other = person("1", "Ava", "Thompson", date(2016, 3, 14), nhs="9434765927")
    assert matching.match(AVA, other) is None


def test_match_refuses_a_sibling_born_on_another_day() -> None:
    assert matching.match(AVA, person("1", "Noah", "Thompson", date(2019, 5, 7), "male")) is None


def test_match_refuses_a_twin_of_the_other_sex_with_a_similar_name() -> None:
    olivia = Demographics(None, "Olivia", "Smith", date(2015, 6, 1), (), "female")
    oliver = person("1", "Oliver", "Smith", date(2015, 6, 1), "male")
    assert matching.match(olivia, oliver) is None


def test_match_accepts_a_day_month_swap_only_when_both_names_agree_exactly() -> None:
    noah = Demographics(None, "Noah", "Thompson", date(2019, 5, 7), (), "male")
    assert matching.match(noah, person("1", "Noah", "Thompson", date(2019, 7, 5), "male"))
    assert matching.match(noah, person("2", "Noa", "Thompson", date(2019, 7, 5), "male")) is None


def test_sibling_guard_drops_a_link_a_same_day_twin_explains_better() -> None:
    # Health knows both twins with NHS numbers; police has only "Ada Thomson", no NHS number.
    ada_police = person("P1", "Ada", "Thomson", date(2016, 3, 14))
    ada_health = person(
        "H2", "Ada", "Thompson", date(2016, 3, 14), nhs="9434765927", source=Source("HEALTH")
    )
    link = matching.match(AVA, ada_police)
    assert link is not None, "the names alone are close enough to link"
    assert matching.sibling_safe(AVA, [(ada_police, link)], [ada_health]) == []
    kept = matching.sibling_safe(AVA, [(ada_police, link)], [ada_health], include_review=True)
    assert [(c.local_id, k.band) for c, k in kept] == [("P1", "review")]


def test_same_surname_dob_and_address_with_another_given_name_is_never_auto() -> None:
    # (this used to link by the name rule alone: Ada and Ava are close names)
    ada = person("P1", "Ada", "Thompson", date(2016, 3, 14))
    assert matching.match(AVA, ada) is None
    review = matching.match(AVA, ada, include_review=True)
    assert review is not None and review.band == "review"
    assert ("given_name", "similar") in [(f, lv) for f, lv, _ in review.weights]


def test_sibling_guard_keeps_the_child_when_the_household_has_no_same_day_sibling() -> None:
    eva = person("P1", "Eva", "Thomson", date(2016, 3, 14))
    noah = person("H2", "Noah", "Thompson", date(2019, 5, 7), "male", nhs="9434765927")
    link = matching.match(AVA, eva)
    assert link is not None
    assert matching.sibling_safe(AVA, [(eva, link)], [noah]) == [(eva, link)]


def test_sibling_guard_links_none_when_two_candidates_fit_and_no_name_singles_one_out() -> None:
    a = person("P1", "Eva", "Thomson", date(2016, 3, 14))
    b = person("P2", "Iva", "Thomson", date(2016, 3, 14))
    links = [(c, matching.match(AVA, c)) for c in (a, b)]
    assert all(link for _, link in links)
    assert matching.sibling_safe(AVA, links, []) == []  # type: ignore[arg-type]


def test_demographic_key_finds_a_subject_with_or_without_its_nhs_number() -> None:
    without = Demographics(None, "Ava", "Thompson", date(2016, 3, 14))
    assert matching.demographic_key(AVA) == matching.demographic_key(without)
    assert matching.identity_key(AVA) != matching.identity_key(without)


def test_every_link_carries_its_band_and_explanation() -> None:
    link = matching.match(AVA, person("1", "Eva", "Thomson", date(2016, 3, 14)))
    assert link is not None and link.band == "auto"
    fields = [f for f, _, _ in link.weights]
    assert fields == ["given_name", "family_name", "date_of_birth", "sex", "postcode"]
    assert link.match_weight == round(sum(w for _, _, w in link.weights), 3)


def test_nhs_number_with_the_date_of_birth_is_auto_and_with_another_date_is_review() -> None:
    same = person("H1", "Ava", "Thompson", date(2016, 3, 14), nhs="9434765919")
    link = matching.match(AVA, same)
    assert link is not None and (link.rule, link.band) == ("nhs_number", "auto")
    assert link.weights[0] == ("nhs_number", "exact", 20.0)
    other_day = person("H1", "Ava", "Thompson", date(2012, 1, 1), nhs="9434765919")
    assert matching.match(AVA, other_day) is None
    review = matching.match(AVA, other_day, include_review=True)
    assert review is not None and review.band == "review"


def test_probabilistic_tier_links_a_nickname_with_a_changed_surname() -> None:
    liz = Demographics(None, "Elizabeth", "Walker", date(2012, 6, 3), ("HT42QX",), "female")
    record = person("P1", "Liz", "Walker-Jones", date(2012, 3, 6))  # dob day/month swapped
    link = matching.match(liz, record)
    assert link is not None and link.rule == "probabilistic" and link.band == "auto"
    levels = {f: lv for f, lv, _ in link.weights}
    assert levels["given_name"] == "nickname"
    assert levels["date_of_birth"] == "swap"
    assert 0.99 < link.score <= 1


def test_a_parent_with_the_childs_name_is_never_auto_linked() -> None:
    junior = Demographics(None, "Edward", "Bell", date(2022, 2, 28), ("HT42QX",), "male")
    father = person("P1", "Edward", "Bell", date(1998, 7, 21), "male")
    assert matching.match(junior, father) is None


def test_household_clustering_never_joins_an_adult_on_a_fuzzy_score_alone() -> None:
    today = date(2026, 11, 26)
    health = person("H1", "Jade", "Thompson", date(1990, 1, 2), source=Source("HEALTH"))
    police = person("P1", "Jade", "Thompson", date(1991, 1, 2))  # year slip: scored, not ruled
    link = matching.match(matching.demographics_of(health), police)
    assert link is not None and link.rule == "probabilistic" and link.band == "auto"

    assert len(matching.cluster([health, police])) == 1
    assert len(matching.cluster([health, police], adults_on=today)) == 2

    # the deterministic rules and the NHS number still join an adult's records
    same_day = person("P2", "Jade", "Thomson", date(1990, 1, 2))
    assert len(matching.cluster([health, same_day], adults_on=today)) == 1
    nhs = "9434765927"
    by_number = [
        person("H3", "Jade", "Thompson", date(1990, 1, 2), nhs=nhs, source=Source("HEALTH")),
        person("A3", "J", "Carter", date(1990, 1, 2), nhs=nhs, source=Source("ADULT_SOCIAL_CARE")),
    ]
    assert len(matching.cluster(by_number, adults_on=today)) == 1


def test_household_clustering_still_scores_children() -> None:
    today = date(2026, 11, 26)
    health = person("H1", "Noah", "Thompson", date(2019, 5, 7), "male", source=Source("HEALTH"))
    police = person("P1", "Noah", "Thompson", date(2018, 5, 7), "male")
    assert len(matching.cluster([health, police], adults_on=today)) == 1
