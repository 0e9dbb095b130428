"""The policy-engine wrapper: the only module that talks to oso.

Information-sharing rules live in `policies/*.polar`; this module loads them at start-up
(failing start-up on an error), asks them questions and caches the answers. The questions:

- `read_child(request)`: may this actor read child records at all, for this purpose?
- `withhold(request, resource, reason)`: is this class of record withheld, and why?
- `release(request, resource)`: is it released? (neither: NOT_PERMITTED)
- `hide_field(request, resource, field, reason)`: which fields of a released record are
  withheld, and why?
- `decide_link(request)`: may this actor confirm or reject identity links (and work the
  review queue) for this purpose?

Decisions depend only on (request, resource), both small frozen values, so one decision is
made per distinct pair and applied to every record and field that shares it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from polar import Polar, Variable  # oso's engine

from adapters.base import Labels

NOT_PERMITTED = "NOT_PERMITTED"

log = logging.getLogger(__name__)
_NO_ALLOW_WARNING = re.compile(
    r"\[warning\] Your policy does not contain an allow rule.*?#allow", re.S
)


class PolicyError(Exception):
    """The policies could not be loaded: the hub must not start."""


@dataclass(frozen=True, slots=True)
class Request:
    """Who is asking and why. `roles` sorted so equal requests hash equal."""

    roles: tuple[str, ...]
    agency: str | None
    purpose: str

    def has_role(self, role: str) -> bool:
        return role in self.roles


@dataclass(frozen=True, slots=True)
class Resource:
    """A class of record: its kind (e.g. "police.intelligence", "health.section") and labels."""

    kind: str
    agency: str
    handling_code: str | None = None
    special_categories: tuple[str, ...] = ()
    investigation_sensitive: bool = False
    location_protected: bool = False
    consent: str | None = None

    def has_category(self, category: str) -> bool:
        return category in self.special_categories

    @classmethod
    def of(cls, kind: str, labels: Labels, consent: str | None = None) -> Resource:
        return cls(
            kind=kind,
            agency=labels.agency,
            handling_code=labels.handling_code,
            special_categories=tuple(sorted(labels.special_categories)),
            investigation_sensitive=labels.investigation_sensitive,
            location_protected=labels.location_protected,
            consent=consent,
        )


@dataclass(frozen=True, slots=True)
class Decision:
    """Released or not; if released, which fields are withheld (field -> reason)."""

    allowed: bool
    reason: str | None = None
    hidden_fields: MappingProxyType[str, str] = field(default_factory=lambda: MappingProxyType({}))


class PolicyEngine:
    """Loads the policies once; answers decisions from a bounded cache."""

    def __init__(self, policy_dir: Path) -> None:
        files = sorted(policy_dir.glob("*.polar"))
        if not files:
            raise PolicyError(f"no .polar files in {policy_dir}")
        self._oso = Polar()
        self._oso.register_class(Request, name="ReadRequest")
        self._oso.register_class(Resource, name="RecordClass")
        messages = io.StringIO()
        try:
            # The engine prints load messages; its "no allow rule" warning is expected (we
            # ask our own rules, not oso's allow), anything else goes to the log.
            with contextlib.redirect_stdout(messages):
                self._oso.load_files([str(f) for f in files])
        except Exception as exc:
            raise PolicyError(f"policy failed to load: {exc}") from exc
        rest = _NO_ALLOW_WARNING.sub("", messages.getvalue()).strip()
        if rest:
            log.warning("policy engine: %s", rest)
        digest = hashlib.sha256()
        for f in files:
            digest.update(f.name.encode() + b"\0" + f.read_bytes())
        self.version = digest.hexdigest()[:16]
        self.decide = lru_cache(maxsize=65536)(self._decide)
        self.allows = lru_cache(maxsize=16384)(self._allows)

    def _allows(self, rule: str, request: Request, *args: str) -> bool:
        """A yes/no rule over the request (and any further string arguments, e.g. the agency
        whose research task is updated), e.g. "read_child", "decide_link"."""
        return self._oso.query_rule_once(rule, request, *args)  # type: ignore[no-any-return]

    def may_read_child(self, request: Request) -> bool:
        return self.allows("read_child", request)

    def may_decide_link(self, request: Request) -> bool:
        return self.allows("decide_link", request)

    def _decide(self, request: Request, resource: Resource) -> Decision:
        denied = self._first(self._oso.query_rule("withhold", request, resource, Variable("r")))
        if denied is not None:
            return Decision(allowed=False, reason=denied)
        if not self._oso.query_rule_once("release", request, resource):
            return Decision(allowed=False, reason=NOT_PERMITTED)
        hidden: dict[str, str] = {}
        for result in self._oso.query_rule(
            "hide_field", request, resource, Variable("f"), Variable("r")
        ):
            hidden.setdefault(result["bindings"]["f"], result["bindings"]["r"])
        return Decision(allowed=True, hidden_fields=MappingProxyType(hidden))

    @staticmethod
    def _first(results: Any) -> str | None:
        for result in results:
            return str(result["bindings"]["r"])
        return None


def check_case(engine: PolicyEngine, case: Mapping[str, Any]) -> str | None:
    """Run one decision-table row; None if it holds, else what the engine said instead.

    A row: `roles`, `agency`, `purpose`, and either a `rule` (any yes/no rule over the request,
    e.g. "read_child", "decide_link", with its further string `args` if any) with `expect`
    ALLOW / DENY, or a `resource`
    (RecordClass fields) with `expect` ALLOW or the withholding reason, or with `field` too,
    `expect` SHOWN or the field's reason.
    """
    request = Request(tuple(sorted(case["roles"])), case.get("agency"), case["purpose"])
    if "rule" in case:
        got = "ALLOW" if engine.allows(case["rule"], request, *case.get("args", ())) else "DENY"
    else:
        spec = dict(case["resource"])
        spec["special_categories"] = tuple(sorted(spec.get("special_categories", ())))
        decision = engine.decide(request, Resource(**spec))
        if "field" in case:
            got = (
                decision.hidden_fields.get(case["field"], "SHOWN")
                if decision.allowed
                else f"record withheld: {decision.reason}"
            )
        else:
            got = "ALLOW" if decision.allowed else str(decision.reason)
    return None if got == case["expect"] else got


def load_tables(policy_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    """Every row of every `*.cases.toml`, named `<table>[<n>] <why>`."""
    rows = []
    for table in sorted(policy_dir.glob("*.cases.toml")):
        for i, case in enumerate(tomllib.loads(table.read_text())["case"]):
            rows.append((f"{table.name}[{i}] {case['why']}", case))
    return rows


def run_tables(engine: PolicyEngine, policy_dir: Path) -> tuple[list[str], int]:
    """(failures, rows run) over every decision table."""
    rows = load_tables(policy_dir)
    failures = []
    for name, case in rows:
        got = check_case(engine, case)
        if got is not None:
            failures.append(f"{name}: expected {case['expect']}, got {got}")
    return failures, len(rows)
