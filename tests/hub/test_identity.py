"""The skeleton's identity rules: link the showcase family, never a sibling or twin."""

from __future__ import annotations

from datetime import date

from adapters.base import Labels, Source, SourcePerson
from hub import identity
from hub.identity import Demographics

AVA = Demographics("9434765919", "Ava", "Thompson", date(2016, 3, 14), ("HT42QX",), "female")


def person(
    local_id: str,
    given: str,
    family: str,
    born: date,
    sex: str | None = "female",
    nhs: str | None = None,
    source: Source = Source.POLICE,
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
    link = identity.match(AVA, person("1", "Eva", "Thomson", date(2016, 3, 14)))
    assert link is not None and link.rule == "name_and_date_of_birth"


def test_match_links_a_double_barrelled_surname() -> None:
    assert identity.match(AVA, person("1", "Ava", "Thompson-Reid", date(2016, 3, 14)))


def test_match_refuses_a_different_nhs_number_whatever_else_agrees() -> None:
    other = person("1", "Ava", "Thompson", date(2016, 3, 14), nhs="9434765927")
    assert identity.match(AVA, other) is None


def test_match_refuses_a_sibling_born_on_another_day() -> None:
    assert identity.match(AVA, person("1", "Noah", "Thompson", date(2019, 5, 7), "male")) is None


def test_match_refuses_a_twin_of_the_other_sex_with_a_similar_name() -> None:
    olivia = Demographics(None, "Olivia", "Smith", date(2015, 6, 1), (), "female")
    oliver = person("1", "Oliver", "Smith", date(2015, 6, 1), "male")
    assert identity.match(olivia, oliver) is None


def test_match_accepts_a_day_month_swap_only_when_both_names_agree_exactly() -> None:
    noah = Demographics(None, "Noah", "Thompson", date(2019, 5, 7), (), "male")
    assert identity.match(noah, person("1", "Noah", "Thompson", date(2019, 7, 5), "male"))
    assert identity.match(noah, person("2", "Noa", "Thompson", date(2019, 7, 5), "male")) is None


def test_sibling_guard_drops_a_link_a_same_day_twin_explains_better() -> None:
    # Health knows both twins with NHS numbers; police has only "Ada", no NHS number.
    ada_police = person("P1", "Ada", "Thompson", date(2016, 3, 14))
    ada_health = person(
        "H2", "Ada", "Thompson", date(2016, 3, 14), nhs="9434765927", source=Source.HEALTH
    )
    link = identity.match(AVA, ada_police)
    assert link is not None, "the names alone are close enough to link"
    assert identity.sibling_safe(AVA, [(ada_police, link)], [ada_health]) == []


def test_sibling_guard_keeps_the_child_when_the_household_has_no_same_day_sibling() -> None:
    eva = person("P1", "Eva", "Thomson", date(2016, 3, 14))
    noah = person("H2", "Noah", "Thompson", date(2019, 5, 7), "male", nhs="9434765927")
    link = identity.match(AVA, eva)
    assert link is not None
    assert identity.sibling_safe(AVA, [(eva, link)], [noah]) == [(eva, link)]


def test_sibling_guard_links_none_when_two_candidates_fit_and_no_name_singles_one_out() -> None:
    a = person("P1", "Eva", "Thompson", date(2016, 3, 14))
    b = person("P2", "Iva", "Thompson", date(2016, 3, 14))
    links = [(c, identity.match(AVA, c)) for c in (a, b)]
    assert all(link for _, link in links)
    assert identity.sibling_safe(AVA, links, []) == []  # type: ignore[arg-type]


def test_demographic_key_finds_a_subject_with_or_without_its_nhs_number() -> None:
    without = Demographics(None, "Ava", "Thompson", date(2016, 3, 14))
    assert identity.demographic_key(AVA) == identity.demographic_key(without)
    assert identity.identity_key(AVA) != identity.identity_key(without)
