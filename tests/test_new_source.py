"""A new source is wired in by its declaration alone.

A throwaway SQL source (HOUSING, a council housing system) is written as an adapter module in
a temporary folder that joins the `adapters` package's path, in a fresh interpreter: nothing
else in the project is edited. The schema, the contact workflow, the development issuer, the
settings, the demo (seeding its store, configuring it) and the compose file must all pick it
up from the declaration; and a child read with it configured gives it a typed section (here
withheld as a whole: no contact about the child, rule 2).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from adapters import sources
from hub.settings import PROJECT_ROOT

HOUSING = '''
"""A council housing system (SQL): tenancies. A test's throwaway new source."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import sqlalchemy as sa

from .base import DemoDeclaration, Item, KindDeclaration, Labels, Source, SourceDeclaration
from .sql import Connection, PersonDatabase, as_date, by_person, fetch_by_person, person_tables

metadata = sa.MetaData()
persons, person_name_keys = person_tables(metadata, "housing")
tenancies = sa.Table(
    "tenancies", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("person_id", sa.String(32), nullable=False),
    sa.Column("start", sa.Date, nullable=False),
    sa.Column("in_arrears", sa.Boolean, nullable=False),
)
_TENANCIES = by_person(sa.select(tenancies), tenancies.c.person_id)
AGENCY = "housing"
SOURCE = Source("HOUSING")
DECLARATION = SourceDeclaration(
    source=SOURCE, agency=AGENCY, section="housing_record", type_prefix="Housing",
    position=50,
    kinds=(KindDeclaration("housing.tenancy", "HousingTenancy", "tenancies",
                           (("start", date), ("in_arrears", bool)), "A council tenancy."),),
    roles=("housing_officer",),
    demo=DemoDeclaration(store="housing"),
)


class HousingAdapter(PersonDatabase):
    source = SOURCE
    declaration = DECLARATION
    what = "housing"
    persons = persons
    name_keys = person_name_keys

    def read_items(self, conn: Connection, ids: Sequence[str]) -> list[Item]:
        return [
            Item("housing.tenancy", r["id"], r["person_id"], Labels(AGENCY),
                 {"start": as_date(r["start"]), "in_arrears": r["in_arrears"]})
            for r in fetch_by_person(conn, _TENANCIES, ids)
        ]


ADAPTER = HousingAdapter
'''

PROBE = '''
import asyncio, json, sys
from pathlib import Path

import adapters
adapters.__path__.append(sys.argv[1])
data_dir = Path(sys.argv[2])

from schema import sdl
from hub.auth import devissuer
from hub.contacts import workflow
from hub.demo import compose, sources, stack
from hub.settings import Settings

out = {"sources": list(adapters.sources()), "sdl": sdl()}
out["agencies"] = list(workflow.AGENCIES)
out["source_agency"] = workflow.SOURCE_AGENCY
out["roles"] = devissuer.ROLE_AGENCY
out["compose"] = compose.compose()
counts = sources.seed(data_dir, households=10, seed=3)
out["seeded"] = counts.get("housing")
config = stack.sql_source_config(data_dir)
out["config"] = config

async def read():
    from hub.app import build_adapters
    settings = Settings(data_dir=data_dir, sources={"HOUSING": config["HOUSING"]})
    built = build_adapters(settings)
    adapter = built[adapters.sources()[-1]]
    try:
        found = await adapter.search(adapters.base.PersonQuery(family_name="Thompson"))
        return len(found)
    finally:
        await adapter.aclose()

out["found"] = asyncio.run(read())


async def child_read():
    """A MASH social worker reads Ava with no contact about her: the record is withheld
    (rule 2), every section typed, the new one too."""
    import httpx
    from hub.app import create_app
    from tests.hub.inprocess import AVA, _subject
    from hub.store.engine import Store
    devissuer.ensure_keys(data_dir)
    url = f"sqlite:///{data_dir / 'hub.sqlite3'}"
    settings = Settings(
        data_dir=data_dir, database_url=url, sources=config, dev_issuer=True
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        store = Store(url)
        ava = _subject(AVA)
        async with store.writing() as session, session.begin():
            session.add(ava)
        await store.aclose()
        query = """query($id: ID!) { child(id: $id, purpose: MASH_SCREENING) {
            withheld { reason }
            housingRecord { __typename ... on Redaction { reason agency } } } }"""
        token = devissuer.mint(data_dir, "mash_social_worker")
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
        ) as client:
            answer = await client.post(
                "/graphql",
                json={"query": query, "variables": {"id": ava.id}},
                headers={"Authorization": f"Bearer {token}"},
            )
            return answer.json()

out["read"] = asyncio.run(child_read())
print(json.dumps(out))
'''


def test_a_new_source_is_wired_in_by_its_declaration_alone(tmp_path: Path) -> None:
    folder = tmp_path / "more_adapters"
    folder.mkdir()
    (folder / "housing.py").write_text(textwrap.dedent(HOUSING))
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(folder), str(tmp_path / "data")],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.splitlines()[-1])

    assert out["sources"] == [*sources(), "HOUSING"]
    sdl = out["sdl"]
    assert "  housingRecord: HousingSectionResult\n" in sdl
    assert "union HousingSectionResult = HousingSection | Redaction" in sdl
    assert "type HousingTenancy implements Entry" in sdl and "inArrears: Boolean" in sdl
    assert "tenancies: [HousingTenancyResult!]!" in sdl
    assert f"  {sources()[-1]}\n  HOUSING\n}}" in sdl  # SourceName, after the others
    assert out["agencies"][-1] == "housing" and out["source_agency"]["HOUSING"] == "housing"
    assert out["roles"]["housing_officer"] == "housing"
    assert "--store-url=housing=" in out["compose"] and '"HOUSING": {"url"' in out["compose"]
    # the demo seeds its store (created from its tables; the generator has no housing
    # content, so it is empty) and configures it; its adapter answers from it
    assert out["seeded"] == {}
    assert out["config"]["HOUSING"]["url"].endswith("housing.sqlite3")
    assert out["found"] == 0
    child = out["read"]["data"]["child"]
    assert child["withheld"]["reason"] == "NO_RELATIONSHIP"
    assert child["housingRecord"] == {
        "__typename": "Redaction",
        "reason": "NO_RELATIONSHIP",
        "agency": "housing",
    }
