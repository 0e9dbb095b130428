"""One policy door (issue 11): the rules the code asks and the rules `policies/` defines are
the same set. A rule no code asks (directly, or through a rule the code asks) is dead policy
that reads as if it were enforced; a rule the code asks that no file defines is a question
always answered "no". Both fail here.

The code's questions are read from its source: every call through the door's helpers with a
rule name as a string literal. Asking with a computed name outside the door itself fails too,
so no question can hide from this test.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from hub.settings import PROJECT_ROOT

POLICIES = PROJECT_ROOT / "policies"
CODE = [PROJECT_ROOT / "hub", PROJECT_ROOT / "schema"]
# The door (hub/context.py `Access`), the engine wrapper (hub/policy/engine.py) and the contact
# operations' helpers that forward to the door (schema/contacts/build.py).
ASKING = {
    "allows",
    "applies",
    "allowed",
    "require",
    "open_contact",
    "query_rule",
    "query_rule_once",
    "_reasons",
    "_explains",
}
# Modules whose own helpers forward a rule name they were given (a parameter, not a literal).
FORWARDERS = {"hub/policy/engine.py", "hub/context.py", "schema/contacts/build.py"}
# The engine's record-class questions, asked for every `decide`, and its explanation table.
ENGINE = {"withhold", "release", "hide_field", "explains"}

_HEAD = re.compile(r"^([a-z_][a-z0-9_]*)\(", re.M)
_CALL = re.compile(r"\b([a-z_][a-z0-9_]*)\(")


def _strip_comments(text: str) -> str:
    """Polar without its comments (a `#` outside a string starts one)."""
    out, quoted, comment = [], False, False
    for ch in text:
        if ch == "\n":
            comment = False
        elif comment:
            continue
        elif ch == '"':
            quoted = not quoted
        elif ch == "#" and not quoted:
            comment = True
            continue
        out.append(ch)
    return "".join(out)


def polar_rules() -> dict[str, set[str]]:
    """Each rule name defined in policies/*.polar -> the rule names its bodies call."""
    rules: dict[str, set[str]] = {}
    for path in sorted(POLICIES.glob("*.polar")):
        text = _strip_comments(path.read_text())
        for statement in text.split(";"):
            statement = statement.strip()
            head = _HEAD.match(statement)
            if head is None:
                continue
            parts = re.split(r"\)\s+if\b", re.sub(r'"[^"]*"', '""', statement), maxsplit=1)
            body = parts[1] if len(parts) == 2 else ""
            calls = rules.setdefault(head.group(1), set())
            calls.update(c for c in _CALL.findall(body) if c not in {"not"})
    return rules


def _calls(path: Path) -> Iterator[ast.Call]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            yield node


def _name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    if isinstance(call.func, ast.Name):
        return call.func.id
    return None


def asked_rules(defined: set[str]) -> tuple[set[str], list[str]]:
    """(rule names the code asks, places that ask with a computed name outside the door)."""
    asked: set[str] = set()
    hidden: list[str] = []
    for root in CODE:
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(PROJECT_ROOT).as_posix()
            for call in _calls(path):
                if _name(call) not in ASKING:
                    continue
                literals = [
                    a.value
                    for a in call.args
                    if isinstance(a, ast.Constant) and isinstance(a.value, str)
                ]
                named = [v for v in literals if v in defined]
                asked.update(named)
                if not named and rel not in FORWARDERS and _asks_policy(call):
                    hidden.append(f"{rel}:{call.lineno}")
    return asked, hidden


def _asks_policy(call: ast.Call) -> bool:
    """A call through the door's names that passes a rule it computed (not a breaker's or a
    retry budget's `allows`, which take no string)."""
    return any(
        isinstance(a, ast.Name | ast.Attribute | ast.JoinedStr | ast.Subscript) for a in call.args
    ) and _name(call) in {"allows", "applies", "require", "allowed", "open_contact"}


def reachable(rules: dict[str, set[str]], roots: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = [r for r in roots if r in rules]
    while todo:
        rule = todo.pop()
        if rule in seen:
            continue
        seen.add(rule)
        todo.extend(c for c in rules[rule] if c in rules and c not in seen)
    return seen


def test_every_rule_the_code_asks_is_defined_and_every_defined_rule_is_asked() -> None:
    rules = polar_rules()
    asked, hidden = asked_rules(set(rules))
    asked_anywhere = asked | ENGINE

    assert not hidden, f"rules asked under a computed name outside the door: {hidden}"
    assert asked_anywhere - set(rules) == set(), "asked, never defined"
    unasked = set(rules) - reachable(rules, asked_anywhere)
    assert unasked == set(), f"defined in policies/, asked by no code: {sorted(unasked)}"


def test_the_rule_reader_sees_heads_bodies_and_ignores_comments_and_strings() -> None:
    rules = polar_rules()

    assert {"read_child", "withhold", "hide_field", "s62_logged", "notify_owner"} <= set(rules)
    assert "child_purpose" in rules["read_child"] and "glass" in rules["read_child"]
    assert "rule" not in rules  # "rule 2: ..." inside a string is not a call
    assert reachable(rules, {"may_write"}) >= {"may_write", "read_child", "child_reader"}


def test_only_the_door_asks_the_engine() -> None:
    """Every decision goes through hub/context.py `Access` (noted on the audit event); the
    engine's own methods are called nowhere else but the CLI's `policy test`/`explain`."""
    direct = []
    for root in CODE:
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(PROJECT_ROOT).as_posix()
            if rel in {"hub/context.py", "hub/policy/engine.py", "hub/cli.py"}:
                continue
            for call in _calls(path):
                func = call.func
                if (
                    isinstance(func, ast.Attribute)
                    and func.attr in {"allows", "applies", "decide", "explain"}
                    and isinstance(func.value, ast.Attribute)
                    and func.value.attr == "policy"
                ):
                    direct.append(f"{rel}:{call.lineno}")
    assert direct == [], f"the policy engine asked outside the door: {direct}"
