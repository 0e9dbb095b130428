"""The checked-in SDL is the public contract: it must match the code."""

from __future__ import annotations

import re

from schema import SDL_PATH, sdl


def test_checked_in_sdl_matches_the_schema() -> None:
    assert SDL_PATH.read_text() == sdl(), "schema/hub.graphql drifted: run `make schema`"


def test_contract_names_are_in_the_sdl() -> None:
    text = SDL_PATH.read_text()
    for needle in (
        "searchChildren(criteria: PersonSearch!, purpose: Purpose!, contactId: ID): [ChildMatch!]!",
        "child(id: ID!, purpose: Purpose!, contactId: ID): ChildRecord",
        'type ChildRecord @key(fields: "id")',
        'type Person @key(fields: "id")',
        "auditEvents(",
    ):
        assert needle in text, needle
    record = re.search(r"type ChildRecord[^{]*\{(.*?)\n\}", text, re.S)
    assert record is not None
    for section in (
        "police:",
        "health:",
        "adultSocialCare:",
        "earlyHelp:",
        "education:",
        "sources:",
    ):
        assert section in record.group(1)
    for name in (
        "POLICE",
        "HEALTH",
        "ADULT_SOCIAL_CARE",
        "EARLY_HELP",
        "EDUCATION",
        "OK",
        "NOT_KNOWN",
        "UNAVAILABLE",
        "TIMED_OUT",
        "REDACTED",
    ):
        assert re.search(rf"\b{name}\b", text), name


def test_every_item_kind_has_a_graphql_type() -> None:
    from adapters import kinds
    from schema.child.types import ITEM_TYPES

    assert set(ITEM_TYPES) == set(kinds())
    assert {t.__name__ for t in ITEM_TYPES.values()} == {k.type_name for k in kinds().values()}
