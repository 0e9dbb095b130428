"""Trusted documents: the operations a partner system may run, persisted by hash.

Each partner system's operations live in the repository as an Apollo persisted query
manifest, `gateway/trusted-documents/<client id>.json`:

    {"format": "apollo-persisted-query-manifest", "version": 1,
     "operations": [{"id": "<sha256 of body>", "name": "...", "type": "query", "body": "..."}]}

the file Apollo Router reads for its persisted-query safelist and Hive Gateway can be served,
so a gateway in front of the hub and the hub itself enforce the same list. The manifest is
generated (`mash-hub trusted-documents`) from the `.graphql` files in
`gateway/trusted-documents/<client id>/`: one entry per operation, its body the operation
and the fragments it uses, printed canonically; the id is the SHA-256 of exactly that body.

A request names its document by id (`documentId: "sha256:<hex>"`, or Apollo's
`extensions.persistedQuery.sha256Hash`) or sends the full text whose hash is registered.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    parse,
    print_ast,
    validate,
)

FORMAT = "apollo-persisted-query-manifest"
SUFFIX = ".json"


class UntrustedDocument(Exception):
    """A partner sent a document not registered for it. The message names no query text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ManifestError(ValueError):
    """A manifest or a document source is malformed: the hub must not start with it."""


def document_id(body: str) -> str:
    """The id of a document: the SHA-256 (hex) of its exact text, as gateways compute it."""
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class Operation:
    id: str
    name: str
    type: str
    body: str

    def entry(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "type": self.type, "body": self.body}


def read_manifest(path: Path) -> dict[str, str]:
    """id -> body of one manifest; ManifestError if it is not one, or an id is not its
    body's hash (a hand edit that would let a different text run under a trusted id)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ManifestError(f"{path.name}: not readable JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != 1:
        raise ManifestError(f"{path.name}: not an {FORMAT} version 1")
    operations = data.get("operations")
    if not isinstance(operations, list):
        raise ManifestError(f"{path.name}: 'operations' must be a list")
    found: dict[str, str] = {}
    for op in operations:
        if not isinstance(op, dict) or not isinstance(op.get("body"), str):
            raise ManifestError(f"{path.name}: every operation needs a body")
        if op.get("id") != document_id(op["body"]):
            name = op.get("name")
            raise ManifestError(f"{path.name}: operation {name!r}: id is not sha256(body)")
        found[op["id"]] = op["body"]
    return found


class TrustedDocuments:
    """The registered documents of every partner system, loaded once at start-up."""

    def __init__(self, manifests: Mapping[str, Mapping[str, str]]) -> None:
        self._by_client = {client: dict(docs) for client, docs in manifests.items()}

    @classmethod
    def load(cls, directory: Path, clients: Iterable[str]) -> TrustedDocuments:
        """Each client's `<client>.json` in `directory`; a client without one may run
        nothing (fail closed), a malformed one stops start-up."""
        manifests: dict[str, dict[str, str]] = {}
        for client in clients:
            path = directory / f"{client}{SUFFIX}"
            manifests[client] = read_manifest(path) if path.is_file() else {}
        return cls(manifests)

    def count(self, client: str) -> int:
        return len(self._by_client.get(client, {}))

    def resolve(self, client: str, query: str | None, doc_id: str | None) -> str:
        """The text to run for `client`: the registered body of `doc_id`, or `query` itself
        when its hash is registered (and agrees with `doc_id` if both are given)."""
        docs = self._by_client.get(client, {})
        if doc_id is not None:
            body = docs.get(doc_id)
            if body is None:
                raise UntrustedDocument("this document id is not registered for your client system")
            if query is not None and query != body:
                raise UntrustedDocument("the query text does not match the document id")
            return body
        if query is None:
            raise UntrustedDocument("send a registered document id or its full text")
        if document_id(query) not in docs:
            raise UntrustedDocument(
                "only the operations registered for your client system may run: send a "
                "registered document id or its exact text"
            )
        return query


def requested_id(payload: Mapping[str, Any]) -> str | None:
    """The document id a request names: `documentId` ("sha256:<hex>" or "<hex>") or
    `extensions.persistedQuery.sha256Hash`; None if it names none. ValueError if malformed."""
    doc_id = payload.get("documentId")
    extensions = payload.get("extensions")
    if doc_id is None and isinstance(extensions, dict):
        persisted = extensions.get("persistedQuery")
        if isinstance(persisted, dict):
            doc_id = persisted.get("sha256Hash")
            if doc_id is None:
                raise ValueError("extensions.persistedQuery needs a sha256Hash")
    if doc_id is None:
        return None
    if not isinstance(doc_id, str):
        raise ValueError("a document id must be a string")
    hexdigest = doc_id.removeprefix("sha256:").lower()
    if len(hexdigest) != 64 or any(c not in "0123456789abcdef" for c in hexdigest):
        raise ValueError("a document id is sha256:<64 hex digits>")
    return hexdigest


# --- building manifests from .graphql files --------------------------------------------------


def operations_of(document: DocumentNode) -> list[Operation]:
    """Each named operation of a document with the fragments it uses, printed canonically."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    out = []
    for op in document.definitions:
        if not isinstance(op, OperationDefinitionNode):
            continue
        if op.name is None:
            raise ManifestError("every trusted operation needs a name")
        used = _fragments_used(op, fragments)
        body = print_ast(DocumentNode(definitions=(op, *(fragments[n] for n in sorted(used)))))
        out.append(Operation(document_id(body), op.name.value, op.operation.value, body))
    return out


def _fragments_used(
    op: OperationDefinitionNode, fragments: Mapping[str, FragmentDefinitionNode]
) -> set[str]:
    used: set[str] = set()
    pending: list[SelectionSetNode] = [op.selection_set]
    while pending:
        for sel in pending.pop().selections:
            if isinstance(sel, FragmentSpreadNode):
                if sel.name.value not in used and sel.name.value in fragments:
                    used.add(sel.name.value)
                    pending.append(fragments[sel.name.value].selection_set)
            elif isinstance(sel, (FieldNode, InlineFragmentNode)) and sel.selection_set:
                pending.append(sel.selection_set)
    return used


def build_manifest(
    sources: Iterable[Path], schema: GraphQLSchema, gateway: GraphQLSchema | None = None
) -> dict[str, Any]:
    """A manifest of every operation in `sources`, each file valid against the hub's
    schema or, when given, the gateway's API (hub/partners/supergraph.py): a partner behind the
    gateway registers supergraph operations."""
    operations: dict[str, Operation] = {}
    for path in sorted(sources):
        document = parse(path.read_text())
        errors = validate(schema, document)
        if errors and gateway is not None:
            errors = validate(gateway, document)
        if errors:
            raise ManifestError(f"{path.name}: {errors[0].message}")
        for op in operations_of(document):
            if op.name in operations:
                raise ManifestError(f"{path.name}: operation {op.name} is defined twice")
            operations[op.name] = op
    return {
        "format": FORMAT,
        "version": 1,
        "operations": [operations[n].entry() for n in sorted(operations)],
    }


def build_all(
    directory: Path, schema: GraphQLSchema, gateway: GraphQLSchema | None = None
) -> dict[Path, str]:
    """The manifest text for every `<client>/` folder of .graphql files in `directory`."""
    out = {}
    for folder in sorted(p for p in directory.iterdir() if p.is_dir()):
        manifest = build_manifest(folder.glob("*.graphql"), schema, gateway)
        out[directory / f"{folder.name}{SUFFIX}"] = json.dumps(manifest, indent=2) + "\n"
    return out
