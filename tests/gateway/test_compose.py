"""Composition in the suite (issue 14 item 2): the hub's checked-in SDL composes with the
example partner subgraph's through gateway/compose.mjs (@apollo/composition, run by node)
with no error and no hint. Missing Node packages fail these tests; they never skip."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.demo.gateway import GATEWAY_DIR, CompositionFailed, compose
from schema import SDL_PATH


def test_hub_sdl_composes_with_the_partner_subgraph_with_no_error_or_hint() -> None:
    supergraph = compose(f"--hub-sdl={SDL_PATH}", "--hub-url=http://127.0.0.1:8000/graphql")
    assert 'HUB @join__graph(name: "hub", url: "http://127.0.0.1:8000/graphql")' in supergraph
    assert 'NURSE @join__graph(name: "nurse"' in supergraph
    # both entities joined by key across the two subgraphs; the partner's root field in place
    assert 'type ChildRecord\n  @join__type(graph: HUB, key: "id")\n' in supergraph
    assert '@join__type(graph: NURSE, key: "id")' in supergraph
    assert "nurseCaseload(nurse: String!): [ChildRecord!]! @join__field(graph: NURSE)" in (
        supergraph
    )
    assert "schoolNurse: SchoolNurseInvolvement @join__field(graph: NURSE)" in supergraph


def test_composition_fails_on_a_hint_not_only_on_an_error(tmp_path: Path) -> None:
    partner = (GATEWAY_DIR / "nurse" / "schema.graphql").read_text()
    # a description that disagrees with the hub's is only a hint to @apollo/composition
    hinted = tmp_path / "hinted.graphql"
    hinted.write_text(partner.replace("type Person @key", '"""Someone."""\ntype Person @key'))
    with pytest.raises(CompositionFailed) as caught:
        compose(f"--hub-sdl={SDL_PATH}", f"--nurse-sdl={hinted}")
    assert 'hint: INCONSISTENT_DESCRIPTION Element "Person"' in str(caught.value)


def test_composition_fails_on_an_error(tmp_path: Path) -> None:
    partner = (GATEWAY_DIR / "nurse" / "schema.graphql").read_text()
    clash = tmp_path / "clash.graphql"  # the hub's own field, typed otherwise
    clash.write_text(partner.replace("  id: ID!\n", "  id: ID!\n  sources: String\n", 1))
    with pytest.raises(CompositionFailed) as caught:
        compose(f"--hub-sdl={SDL_PATH}", f"--nurse-sdl={clash}")
    assert "error:" in str(caught.value) and "ChildRecord.sources" in str(caught.value)
