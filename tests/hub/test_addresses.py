"""The address key: same home means the same UPRN where both records carry one, else the same
postcode and first line -- house number or name, and flat, included (DOMAIN.md §3 rule 2)."""

from __future__ import annotations

import pytest

from adapters.base import Source, SourcePerson
from hub.identity.addresses import Home, address_key, first_line


def key(address: str, postcode: str = "HT4 2QX") -> str | None:
    return address_key(postcode, address)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("14 Larch Close", "14 larch close"),
        ("14 Larch Close, Hilltown", "14 Larch Cl"),
        ("14 Larch Close", "14 Larch Cl., Hilltown"),
        ("14 Larch Close Hilltown", "14, Larch Close"),
        ("Flat 2, 14 Larch Close", "Flat 2 14 Larch Cl"),
        ("Flat 2, 14 Larch Close", "Apartment 2, 14 Larch Close, Hilltown"),
        ("Flat 2, 14 Larch Close", "14 Larch Close, Flat 2"),
        ("14A Larch Close", "14 a Larch Close"),
        ("No. 14 Larch Close", "14 Larch Close"),
        ("14 St John's Rd", "14 St Johns Road"),
        ("Harbour House, 2 Quay Street", "2 Quay St, Hilltown"),
        ("Rose Cottage, Mill Lane, Hilltown", "Rose Cottage, Hilltown"),
        ("Kestrel Court, Hilltown", "KESTREL CT"),
        ("Ground Floor Flat, 14 Larch Close", "ground floor flat 14 larch close"),
    ],
)
def test_address_key_is_equal_when_one_home_is_written_two_ways(one: str, other: str) -> None:
    assert key(one) is not None
    assert key(one) == key(other)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("14 Larch Close", "16 Larch Close"),
        ("Flat 2, 14 Larch Close", "Flat 3, 14 Larch Close"),
        ("Flat 2, 14 Larch Close", "14 Larch Close"),
        ("14 Larch Close", "14A Larch Close"),
        ("14 Larch Close", "14 Larch Road"),
        ("14 Park Road", "14 Park Close"),
        ("Rose Cottage, Mill Lane", "Ivy Cottage, Mill Lane"),
        ("Flat 2, Kestrel Court", "Flat 12, Kestrel Court"),
        ("1 Moore Close", "11 Moore Close"),
    ],
)
def test_address_key_differs_when_the_number_name_or_flat_differs(one: str, other: str) -> None:
    assert key(one) != key(other)


def test_address_key_differs_when_the_postcode_differs_and_is_none_when_a_part_is_missing() -> None:
    assert key("14 Larch Close", "HT4 2QX") == key("14 Larch Close", "ht42qx")
    assert key("14 Larch Close", "HT4 2QX") != key("14 Larch Close", "HT4 2QY")
    assert address_key(None, "14 Larch Close") is None
    assert address_key("HT4 2QX", None) is None
    assert address_key("HT4 2QX", " , ") is None


def test_first_line_keeps_the_house_number_and_flat_when_it_normalises_the_street() -> None:
    assert first_line("Flat 2, 14 Larch Cl, Hilltown") == "flat 2 14 larch close"
    assert first_line("14 Larch Close") == "14 larch close"
    assert first_line("Harbour House, 2 Quay Street, Hilltown") == "2 quay street"
    assert first_line("Kestrel Court, Hilltown") == "kestrel court"


def home(uprn: str | None, address: str, postcode: str = "HT4 2QX") -> Home:
    record = SourcePerson(Source("HEALTH"), "x", "A", "B", None, address=address, postcode=postcode)
    return Home(uprn, Home.of(record).key)


def test_home_matches_on_the_uprn_when_both_records_carry_one() -> None:
    # the same UPRN is the same home, however the line is written
    assert home("1001", "Flat 2, 14 Larch Close").matches(home("1001", "14 Larch Close")) == "uprn"
    # two UPRNs are two homes, even where the lines agree (a block without flat numbers)
    assert home("1001", "Kestrel Court").matches(home("1002", "Kestrel Court")) is None


def test_home_matches_on_the_address_when_a_record_has_no_uprn() -> None:
    assert home("1001", "14 Larch Close").matches(home(None, "14 Larch Cl")) == "address"
    assert home(None, "14 Larch Close").matches(home(None, "16 Larch Close")) is None
    assert home(None, "14 Larch Close").matches(home(None, "Flat 2, 14 Larch Close")) is None
