"""Canonical bytes: the fast path gives exactly the `rfc8785` library's bytes."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import rfc8785
from sqlalchemy import JSON, BigInteger, Column, DateTime, Float, MetaData, String, Table

from hub.audit import chain

ALPHABET = ["a", "Z", "é", "\u2028", "\x00", "\x1f", '"', "\\", "/", "\U0001f600", "\ue000", "ß"]


def random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.choice(
        ["str", "int", "float", "bool", "none", "list", "dict"][: 7 if depth < 3 else 5]
    )
    if kind == "str":
        return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 6)))
    if kind == "int":
        return rng.choice([0, -1, 7, 2**53 - 1, -(2**53 - 1), rng.randint(-(10**6), 10**6)])
    if kind == "float":
        return rng.choice([0.5, 1.0, -2.25, 1e21, 1e-7, 123456789.125])
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "none":
        return None
    if kind == "list":
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {
        "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 3))): random_value(
            rng, depth + 1
        )
        for _ in range(rng.randint(0, 4))
    }


def test_canonical_bytes_equal_the_rfc8785_library_for_random_documents() -> None:
    rng = random.Random(8785)
    for _ in range(3000):
        doc = random_value(rng)
        assert chain.canonical(doc) == rfc8785.dumps(doc), doc


def test_the_typed_fast_path_hashes_rows_exactly_as_the_general_path() -> None:
    meta = MetaData()
    events = Table(
        "audit_events",
        meta,
        Column("seq", BigInteger),
        Column("event_id", String),
        Column("occurred_at", DateTime(timezone=True)),
        Column("outcome", String),
        Column("sources", JSON),
        Column("score", Float),
    )
    subjects = Table(
        "audit_subjects", meta, Column("event_seq", BigInteger), Column("subject_id", String)
    )
    tables = chain.AuditTables(events, subjects)
    assert tables.shapes is not None
    rng = random.Random(1)
    for i in range(500):
        row = {
            "seq": i + 1,
            "event_id": f"e-{i}",
            "occurred_at": datetime(2026, 1, 1, 12, 0, i % 60, tzinfo=UTC),
            "outcome": "".join(rng.choice(ALPHABET) for _ in range(i % 5)),
            "sources": random_value(rng),
            "score": None if i % 2 else 0.5,
        }
        subs = [{"event_seq": i + 1, "subject_id": f"s{j}"} for j in range(i % 3)]
        assert tables.entry(row, subs) == chain.entry_for(row, subs)


def test_a_row_outside_what_rfc8785_can_express_still_hashes_to_a_value_of_its_own() -> None:
    """A tampered row with an integer past 2**53, NaN or a lone surrogate must neither stop
    the sequencer nor `audit verify`, and must not hash like any other content."""
    base = {"seq": 1, "event_id": "e", "occurred_at": "2026-01-01T00:00:00+00:00"}
    odd = [2**60, 2**60 + 1, float("nan"), float("inf"), "\ud800", "\ud801"]
    hashes = {chain.content_hash({**base, "x": value}, []) for value in odd}
    hashes.add(chain.content_hash({**base, "x": str(2**60)}, []))
    assert len(hashes) == len(odd) + 1
