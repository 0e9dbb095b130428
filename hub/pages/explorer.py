"""The GraphQL explorer (`GET /graphql`): GraphiQL with its explorer plugin, served from the
hub's own origin.

The browser files (React, ReactDOM, GraphiQL, the plugin and their CSS) come from `web/`,
installed by `npm ci` at the versions `web/package-lock.json` pins, and are served under
`/explorer/static/` from a fixed list (nothing else under `web/` is reachable); their
licences, and those of every package bundled into them, under `/explorer/licences`. The page
has a strict Content-Security-Policy: scripts, styles and requests from its own origin only,
no inline script.

The page is for a signed-in person (:mod:`hub.auth.session`); its requests carry the session
cookie and the session's CSRF token. GraphiQL is given a storage that lives in memory, so
no query, variables, result or header is written to the browser's storage, and nothing
writes the query into the URL: a `GET /graphql` with a query string is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ..auth import login
from ..auth.session import Sessions
from ..settings import Settings
from ..state import AppState
from . import savedops

PATH = "/explorer"
TEMPLATES = login.TEMPLATES
# name served → (package folder under node_modules, file in it, media type)
ASSETS: dict[str, tuple[str, str, str]] = {
    "react.js": ("react", "umd/react.production.min.js", "text/javascript"),
    "react-dom.js": ("react-dom", "umd/react-dom.production.min.js", "text/javascript"),
    "graphiql.js": ("graphiql", "graphiql.min.js", "text/javascript"),
    "graphiql.css": ("graphiql", "graphiql.min.css", "text/css"),
    "plugin-explorer.js": ("@graphiql/plugin-explorer", "dist/index.umd.js", "text/javascript"),
    "plugin-explorer.css": ("@graphiql/plugin-explorer", "dist/style.css", "text/css"),
}
# the hub's own page files, beside the templates
OWN = {"explorer.js": "text/javascript", "explorer.css": "text/css"}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
HEADERS = {
    **login.SECURITY_HEADERS,
    "Content-Security-Policy": CSP,
    "Cross-Origin-Opener-Policy": "same-origin",
}
STATIC_HEADERS = {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}
LICENCE_NAMES = ("LICENSE", "LICENSE.md", "LICENSE.txt", "LICENCE", "license", "LICENSE-MIT")


@dataclass(frozen=True)
class Package:
    """An installed browser package (not a dev one) and where its licence text is."""

    name: str
    version: str
    licence: str
    licence_file: Path | None


class Explorer:
    def __init__(self, state: AppState, settings: Settings) -> None:
        self.state, self.settings = state, settings
        self.modules = settings.web_dir / "node_modules"

    @property
    def sessions(self) -> Sessions:
        sessions = self.state.sessions
        assert sessions is not None  # the app builds them whenever the explorer is served
        return sessions

    @cached_property
    def packages(self) -> list[Package]:
        """The lockfile's non-dev packages: what the served files are built from."""
        lock = json.loads((self.settings.web_dir / "package-lock.json").read_text())
        found = []
        for where, entry in sorted(lock.get("packages", {}).items()):
            if not where or entry.get("dev"):
                continue
            folder = self.settings.web_dir / where
            name = where.rsplit("node_modules/", 1)[-1]
            licence = next(
                (folder / n for n in LICENCE_NAMES if (folder / n).is_file()),
                # the plugin ships without one: it is the GraphiQL project's, same licence
                self.modules / "graphiql" / "LICENSE" if name.startswith("@graphiql/") else None,
            )
            found.append(
                Package(name, entry.get("version", ""), entry.get("license", "?"), licence)
            )
        return found

    def installed(self) -> bool:
        return all((self.modules / p / f).is_file() for p, f, _ in ASSETS.values())

    async def page(self, request: Request) -> Response:
        if "query" in request.query_params:
            return PlainTextResponse(
                "Send GraphQL operations by POST: a query in a URL is kept in browser "
                "history and logs. Open /graphql without one for the explorer.",
                400,
                headers=login.SECURITY_HEADERS,
            )
        current = await self.sessions.from_request(request)
        if current is None:
            return RedirectResponse(f"{login.PATH}/login?next=/graphql", 303)
        if not self.installed():
            return PlainTextResponse(
                "The explorer's files are not installed: run `make install`.", 503
            )
        return login.render(
            "explorer.html",
            headers=HEADERS,
            actor=current.actor,
            csrf=current.csrf,
            saved=savedops.tabs(),
        )

    async def asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name in OWN:
            return FileResponse(TEMPLATES / name, media_type=OWN[name], headers=STATIC_HEADERS)
        if name not in ASSETS or not self.installed():
            return PlainTextResponse("not found", 404)
        package, file, media = ASSETS[name]
        return FileResponse(self.modules / package / file, media_type=media, headers=STATIC_HEADERS)

    async def licences(self, request: Request) -> Response:
        return login.render("licences.html", packages=list(enumerate(self.packages)))

    async def licence(self, request: Request) -> Response:
        number = request.path_params["number"]
        if not 0 <= number < len(self.packages) or self.packages[number].licence_file is None:
            return PlainTextResponse("not found", 404)
        licence = Path(str(self.packages[number].licence_file))
        return FileResponse(licence, media_type="text/plain", headers=STATIC_HEADERS)


def routes(state: AppState, settings: Settings) -> tuple[Route, list[BaseRoute]]:
    """`GET /graphql` (the page), and the routes to mount at `/explorer`."""
    explorer = Explorer(state, settings)
    return Route("/graphql", explorer.page, methods=["GET"]), [
        Route("/static/{name}", explorer.asset, methods=["GET"]),
        Route("/licences", explorer.licences, methods=["GET"]),
        Route("/licences/{number:int}", explorer.licence, methods=["GET"]),
    ]
