"""The policy-engine wrapper: the only module that talks to oso.

Information-sharing rules live in `policies/*.polar`; this module loads them at start-up
(failing start-up on an error), asks them questions and caches the answers. The questions:

- `read_child(request)`: may this actor read child records at all, for this purpose?
- `withhold(request, resource, reason, why)`: is this class of record withheld, why, and by
  which rule? (`resource` kind "child" is the relationship check of rule 2)
- `release(request, resource)`: is it released? (neither: NOT_PERMITTED)
- `hide_field(request, resource, field, reason, why)`: which fields of a released record
  are withheld, and why?
- any other yes/no rule over the request (`allows`: "decide_link", "may_write",
  "override_consent", "withhold_item", ...) or over request and record class
  (`applies`: "notify_owner", "s62_logged").

The code asks these only through hub/context.py `Access` (the one door, which notes every
decision on the operation's audit event); tests/policies/test_rule_names.py checks that the
rules the code asks and the rules policies/ defines are the same set.

Decisions depend only on (request, resource), both small frozen values: the request holds
the actor, the purpose and the contact's facts (not its id), so one decision is made per
distinct pair and applied to every record and field that shares it, across contacts too.
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
    """Who is asking, why, and where the contact they serve stands.

    `roles` sorted so equal requests hash equal. The contact fields are `ContactFacts`
    (hub/contacts/workflow.py) less the contact's identity: two contacts with the same facts share
    their decisions, so the cache keeps working across contacts.
    """

    roles: tuple[str, ...]
    agency: str | None
    purpose: str
    team: str | None = None
    has_contact: bool = False
    stage: str | None = None
    assigned: bool = False
    consent: str | None = None
    consent_scope: tuple[str, ...] = ()
    override: bool = False
    decision: str | None = None
    strategy_discussion: bool = False
    break_glass: bool = False
    # The token kind (hub/auth/tokens.py): a partner system's own token, no person behind it.
    machine: bool = False

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
    flags: tuple[str, ...] = ()
    owner_team: str | None = None

    def has_category(self, category: str) -> bool:
        return category in self.special_categories

    def has_flag(self, flag: str) -> bool:
        return flag in self.flags

    @classmethod
    def of(
        cls, kind: str, labels: Labels, consent: str | None = None, flags: tuple[str, ...] = ()
    ) -> Resource:
        return cls(
            kind=kind,
            agency=labels.agency,
            handling_code=labels.handling_code,
            special_categories=tuple(sorted(labels.special_categories)),
            investigation_sensitive=labels.investigation_sensitive,
            location_protected=labels.location_protected,
            consent=consent,
            flags=flags,
        )


@dataclass(frozen=True, slots=True)
class Decision:
    """Released or not; if released, which fields are withheld (field -> reason).

    `because` names the rule that withheld the record (for `policy explain` and the audit)."""

    allowed: bool
    reason: str | None = None
    hidden_fields: MappingProxyType[str, str] = field(default_factory=lambda: MappingProxyType({}))
    because: str | None = None


@dataclass(frozen=True, slots=True)
class Explanation:
    """What the policies said about one question, and which rules said it."""

    outcome: str
    rules: tuple[str, ...]


class PolicyEngine:
    """Loads the policies once; answers decisions from a bounded cache."""

    def __init__(self, policy_dir: Path) -> None:
        files = sorted(policy_dir.glob("*.polar"))
        if not files:
            raise PolicyError(f"no .polar files in {policy_dir}")
        self._oso = Polar()
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
        # Process-wide caches: a decision depends only on its (small, frozen) arguments.
        self.decide = lru_cache(maxsize=65536)(self._decide)
        self.allows = lru_cache(maxsize=16384)(self._allows)
        self.applies = lru_cache(maxsize=16384)(self._applies)

    def clear_caches(self) -> None:
        """Forget every cached decision (benchmarks measure the engine cold)."""
        self.decide.cache_clear()
        self.allows.cache_clear()
        self.applies.cache_clear()

    def _allows(self, rule: str, request: Request, *args: str) -> bool:
        """A yes/no rule over the request (and any further string arguments, e.g. the agency
        whose research task is updated), e.g. "read_child", "decide_link"."""
        return self._oso.query_rule_once(  # type: ignore[no-any-return]
            rule, _polar(request), *args
        )

    def _applies(self, rule: str, request: Request, resource: Resource) -> bool:
        """A yes/no rule over a request and a record class, e.g. "notify_owner"."""
        return self._oso.query_rule_once(  # type: ignore[no-any-return]
            rule, _polar(request), _polar(resource)
        )

    def may_read_child(self, request: Request) -> bool:
        return self.allows("read_child", request)

    def may_decide_link(self, request: Request) -> bool:
        return self.allows("decide_link", request)

    def _decide(self, request: Request, resource: Resource) -> Decision:
        req, res = _polar(request), _polar(resource)
        for result in self._oso.query_rule("withhold", req, res, Variable("r"), Variable("why")):
            b = result["bindings"]
            return Decision(allowed=False, reason=str(b["r"]), because=str(b["why"]))
        if not self._oso.query_rule_once("release", req, res):
            return Decision(allowed=False, reason=NOT_PERMITTED, because="no rule releases it")
        hidden: dict[str, str] = {}
        for result in self._oso.query_rule(
            "hide_field", req, res, Variable("f"), Variable("r"), Variable("why")
        ):
            hidden.setdefault(result["bindings"]["f"], result["bindings"]["r"])
        return Decision(allowed=True, hidden_fields=MappingProxyType(hidden))

    def explain(
        self,
        request: Request,
        resource: Resource | None = None,
        field: str | None = None,
        rule: str | None = None,
    ) -> Explanation:
        """The decision on a question, with the rules that made it: for a record class
        (and field), every rule that withholds or hides it; for a yes/no rule (`read_child`
        when nothing else is asked), what that rule depends on (`explains/2` in the
        policies)."""
        if rule is not None or resource is None:
            rule = rule or "read_child"
            allowed = (
                self.applies(rule, request, resource)
                if resource is not None
                else self.allows(rule, request)
            )
            return Explanation("ALLOW" if allowed else "DENY", self._explains(rule))
        withheld = self._reasons("withhold", request, resource)
        if withheld:
            return Explanation(withheld[0][0], tuple(dict.fromkeys(w for _, w in withheld)))
        if not self._oso.query_rule_once("release", _polar(request), _polar(resource)):
            return Explanation(NOT_PERMITTED, self._explains("release"))
        if field is None:
            return Explanation("ALLOW", self._explains("release"))
        hidden = self._reasons("hide_field", request, resource, field)
        if hidden:
            return Explanation(hidden[0][0], tuple(dict.fromkeys(w for _, w in hidden)))
        return Explanation("SHOWN", ("no rule hides this field of a released record",))

    def _reasons(
        self, rule: str, request: Request, resource: Resource, *args: Any
    ) -> list[tuple[str, str]]:
        return [
            (str(r["bindings"]["r"]), str(r["bindings"]["why"]))
            for r in self._oso.query_rule(
                rule, _polar(request), _polar(resource), *args, Variable("r"), Variable("why")
            )
        ]

    def _explains(self, rule: str) -> tuple[str, ...]:
        return tuple(
            str(r["bindings"]["why"])
            for r in self._oso.query_rule("explains", rule, Variable("why"))
        )


def _polar(value: Request | Resource) -> dict[str, Any]:
    """A request or record class as a Polar dictionary: rules read its fields inside the
    engine instead of calling back into Python for each one (an order of magnitude faster)."""
    return {
        name: list(v) if isinstance(v, tuple) else v
        for name in value.__slots__
        for v in (getattr(value, name),)
    }


CONTACT_FIELDS = frozenset(
    {
        "has_contact",
        "stage",
        "assigned",
        "consent",
        "consent_scope",
        "override",
        "decision",
        "strategy_discussion",
        "break_glass",
    }
)


def case_request(case: Mapping[str, Any]) -> Request:
    """The request of a decision-table row: `roles`, `agency`, `purpose`, `team`, `machine`
    (a partner system's own token) and a
    `contact` table (any of stage, assigned, consent, consent_scope, override, decision,
    strategy_discussion, break_glass; `has_contact` is implied by its presence)."""
    contact = dict(case.get("contact", {}))
    unknown = set(contact) - CONTACT_FIELDS
    if unknown:
        raise ValueError(f"unknown contact fields: {sorted(unknown)}")
    if contact:
        contact.setdefault("has_contact", True)
    contact["consent_scope"] = tuple(contact.get("consent_scope", ()))
    return Request(
        tuple(sorted(case["roles"])),
        case.get("agency"),
        case["purpose"],
        team=case.get("team"),
        machine=bool(case.get("machine", False)),
        **contact,
    )


def case_resource(spec: Mapping[str, Any]) -> Resource:
    values = dict(spec)
    values["special_categories"] = tuple(sorted(values.get("special_categories", ())))
    values["flags"] = tuple(sorted(values.get("flags", ())))
    return Resource(**values)


def check_case(engine: PolicyEngine, case: Mapping[str, Any]) -> str | None:
    """Run one decision-table row; None if it holds, else what the engine said instead.

    A row: the request (see `case_request`), and either a `rule` (a yes/no rule over the
    request, e.g. "read_child", with its further string `args` if any, or with a `resource`
    over both, e.g. "notify_owner") with `expect` ALLOW / DENY, or a `resource` (RecordClass
    fields) with `expect` ALLOW or the withholding reason, or with `field` too, `expect` SHOWN
    or the field's reason.
    """
    request = case_request(case)
    if "rule" in case and "resource" in case:
        allowed = engine.applies(case["rule"], request, case_resource(case["resource"]))
        got = "ALLOW" if allowed else "DENY"
    elif "rule" in case:
        got = "ALLOW" if engine.allows(case["rule"], request, *case.get("args", ())) else "DENY"
    else:
        decision = engine.decide(request, case_resource(case["resource"]))
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
