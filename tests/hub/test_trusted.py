"""Trusted documents and query cost without a server: the checked-in manifests are what
`mash-hub trusted-documents` makes from their .graphql files, every id is the SHA-256 of its
body, and a request's document id is read as gateways send it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from graphql import parse

from hub.partners.supergraph import gateway_schema, subgraph_sdls
from hub.partners.trusted import (
    FORMAT,
    ManifestError,
    TrustedDocuments,
    UntrustedDocument,
    build_all,
    read_manifest,
    requested_id,
)
from hub.serving.cost import query_cost
from hub.serving.operation import select_operation
from hub.settings import PROJECT_ROOT
from schema import schema

FOLDER = PROJECT_ROOT / "gateway" / "trusted-documents"


def manifests() -> list[Path]:
    found = sorted(FOLDER.glob("*.json"))
    assert found, "the repository holds at least one partner's manifest"
    return found


@pytest.mark.parametrize("path", manifests(), ids=lambda p: p.name)
def test_manifest_ids_are_the_sha256_of_their_bodies(path: Path) -> None:
    manifest = json.loads(path.read_text())
    assert (manifest["format"], manifest["version"]) == (FORMAT, 1)
    assert manifest["operations"]
    for op in manifest["operations"]:
        assert op["id"] == hashlib.sha256(op["body"].encode()).hexdigest(), op["name"]
        assert op["type"] in ("query", "mutation") and op["name"] in op["body"]


def test_checked_in_manifests_are_what_the_command_makes_from_their_graphql_files() -> None:
    built = build_all(FOLDER, schema._schema, gateway_schema(schema._schema, subgraph_sdls()))
    assert sorted(built) == manifests()
    for path, text in built.items():
        assert path.read_text() == text, f"{path.name} is stale: run make trusted-documents"


def test_a_manifest_whose_id_is_not_its_bodys_hash_stops_start_up(tmp_path: Path) -> None:
    body = "query A { __typename }"
    entry = {"id": hashlib.sha256(b"query B { __typename }").hexdigest(), "name": "A", "body": body}
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"format": FORMAT, "version": 1, "operations": [entry]}))
    with pytest.raises(ManifestError, match="id is not sha256"):
        TrustedDocuments.load(tmp_path, ["p"])


def test_a_partner_without_a_manifest_may_run_nothing(tmp_path: Path) -> None:
    documents = TrustedDocuments.load(tmp_path, ["no-manifest"])
    with pytest.raises(UntrustedDocument):
        documents.resolve("no-manifest", "{ __typename }", None)


def test_a_document_id_is_read_from_document_id_or_apollos_persisted_query() -> None:
    digest = "ab" * 32
    assert requested_id({"documentId": f"sha256:{digest}"}) == digest
    assert requested_id({"documentId": digest.upper()}) == digest
    persisted = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}}}
    assert requested_id(persisted) == digest
    assert requested_id({"query": "{ __typename }"}) is None
    for bad in (
        {"documentId": "sha256:xyz"},
        {"documentId": 5},
        {"extensions": {"persistedQuery": {}}},
    ):
        with pytest.raises(ValueError):
            requested_id(bad)


def test_read_manifest_returns_bodies_by_id() -> None:
    path = FOLDER / "northshire-epr.json"
    bodies = read_manifest(path)
    assert all(hashlib.sha256(b.encode()).hexdigest() == i for i, b in bodies.items())


@pytest.mark.parametrize(
    ("query", "variables", "cost"),
    [
        # a leaf at the root: 1
        ("{ __typename }", {}, 1),
        # a list without a size: 1 + default 10 x 2 fields
        (
            '{ searchChildren(criteria: {nhsNumber: "1"}, purpose: MASH_SCREENING) '
            "{ id sources } }",
            {},
            21,
        ),
        # a connection hands its first to edges: 1 + (1 + 50 x (node 1 + id + seq))
        ("{ auditEvents(first: 50) { edges { node { id seq } } } }", {}, 152),
        # ... from a variable too, and totalCount is one more field
        (
            "query($n: Int) { auditEvents(first: $n) { totalCount edges { node { id } } } }",
            {"n": 5},
            13,
        ),
    ],
)
def test_query_cost_is_fields_times_list_sizes(
    query: str, variables: dict[str, int], cost: int
) -> None:
    document = parse(query)
    op = select_operation(document, None)
    assert query_cost(schema._schema, document, op, variables, 10) == cost
