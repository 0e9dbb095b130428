"""Property-based fuzzing of the GraphQL API with schemathesis, against the real hub and demo
sources (store on SQLite and PostgreSQL).

The schema is introspected from the running hub; for every root field schemathesis generates
queries (schema-valid ones, and invalid ones in its negative mode) and sends them with a bearer
token. Whatever the query, the hub must answer as a GraphQL API that never leaks its internals:
no 5xx, a JSON body, every error carrying an `extensions.code`, never INTERNAL_ERROR, and no
Python traceback or exception class name in any error.

Cases come from `APIOperation.as_strategy()` under a plain Hypothesis `@given`:
`schemathesis.pytest.from_fixture(...).parametrize()` (the lazy loader needed for a schema that
only exists once the `hub` fixture runs) sets `Node._nodeid`, which pytest 9 no longer has."""

from __future__ import annotations

import json
import re

import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from schemathesis import Case, GenerationMode
from schemathesis.specs.graphql.schemas import GraphQLSchema

from .conftest import Hub

# ig_officer reads the audit log, its reports and the IG review queue (and nothing else);
# managers' own operations as a MASH manager; every other field as a social worker.
ROLE_FOR = {
    "Query.auditEvents": "ig_officer",
    "Query.igAlerts": "ig_officer",
    "Query.subjectAccessReport": "ig_officer",
    "Query.findSubjects": "ig_officer",
    "Query.accessorActivityReport": "ig_officer",
    "Query.policeS62Extract": "ig_officer",
    "Query.auditAnomalies": "ig_officer",
    "Query.breakGlassReviewReport": "ig_officer",
    "Query.consentOverrideRegister": "ig_officer",
    "Query.notSharedRegister": "ig_officer",
    "Query.contactTimelinessReport": "ig_officer",
    "Mutation.reviewIgAlert": "ig_officer",
    "Query.contactKpis": "mash_manager",
    "Mutation.assignContact": "mash_manager",
    "Mutation.overrideConsent": "mash_manager",
    "Mutation.recordDecision": "mash_manager",
    "Mutation.recordStrategyDiscussion": "mash_manager",
}
IG_REPORTS = (
    "Query.subjectAccessReport",
    "Query.findSubjects",
    "Query.accessorActivityReport",
    "Query.policeS62Extract",
    "Query.auditAnomalies",
    "Query.breakGlassReviewReport",
    "Query.consentOverrideRegister",
    "Query.notSharedRegister",
    "Query.contactTimelinessReport",
)
DEFAULT_ROLE = "mash_social_worker"

# A fixed seed and no example database: the same queries on every run, so CI is deterministic.
# Schema-valid queries reach resolvers, sources and the store, so they get most of the budget;
# invalid ones stop at validation.
SEED = 20160314
EXAMPLES = {GenerationMode.POSITIVE: 200, GenerationMode.NEGATIVE: 50}
# The contact workflow's fields check their input with one set of helpers
# (hub.contacts.workflow) and rarely reach a source: a smaller budget each keeps the suite's
# time in bounds.
CONTACT_EXAMPLES = {GenerationMode.POSITIVE: 15, GenerationMode.NEGATIVE: 5}
# The IG reports are plain reads of the audit log with a few scalar filters: fewer suffice.
REPORT_EXAMPLES = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 10}

LEAKS = re.compile(r"Traceback|File \"|\b[A-Z]\w*(?:Error|Exception|Warning)\b|\bStopIteration\b")


# Every root field the fuzzer covers; `test_fuzz_covers_every_root_field` fails when one is added
# (federation's `_entities` / `_service` are left out by schemathesis).
OPERATIONS = [
    "Query.searchChildren",
    "Query.child",
    "Query.auditEvents",
    "Query.subjectAccessReport",
    "Query.findSubjects",
    "Query.accessorActivityReport",
    "Query.policeS62Extract",
    "Query.auditAnomalies",
    "Query.breakGlassReviewReport",
    "Query.consentOverrideRegister",
    "Query.notSharedRegister",
    "Query.contactTimelinessReport",
    "Query.reviewQueue",
    "Mutation.confirmLink",
    "Mutation.rejectLink",
    "Mutation.confirmHouseholdResident",
    "Mutation.rejectHouseholdResident",
]
# An analyst's household decisions check their input as link decisions do (one set of
# helpers, schema/identity/build.py) and reach no source: the contacts' budget suffices.
HOUSEHOLD_DECISIONS = ("Mutation.confirmHouseholdResident", "Mutation.rejectHouseholdResident")
CONTACT_OPERATIONS = [
    "Query.contact",
    "Query.contacts",
    "Query.contactKpis",
    "Query.notifications",
    "Query.igAlerts",
    "Mutation.createContact",
    "Mutation.advanceContact",
    "Mutation.assignContact",
    "Mutation.recordConsent",
    "Mutation.overrideConsent",
    "Mutation.updateResearchTask",
    "Mutation.recordDecision",
    "Mutation.recordStrategyDiscussion",
    "Mutation.breakGlass",
    "Mutation.withholdItem",
    "Mutation.reviewIgAlert",
]


def _schema(hub: Hub) -> GraphQLSchema:
    return schemathesis.graphql.from_url(
        f"{hub.url}/graphql",
        headers={"Authorization": f"Bearer {hub.token(DEFAULT_ROLE)}"},
        timeout=30,
    )


def _check(hub: Hub, case: Case) -> None:
    role = ROLE_FOR.get(case.operation.label, DEFAULT_ROLE)
    response = case.call(headers={"Authorization": f"Bearer {hub.token(role)}"}, timeout=30)
    sent = json.dumps(case.body)
    assert response.status_code < 500, f"{response.status_code} for {sent}: {response.text}"
    try:
        body = response.json()
    except ValueError:
        pytest.fail(f"non-JSON response ({response.status_code}) for {sent}: {response.text}")
    assert isinstance(body, dict), f"for {sent}: {body}"
    errors = body.get("errors") or []
    assert isinstance(errors, list), f"for {sent}: {body}"
    for error in errors:
        assert isinstance(error, dict), f"for {sent}: {body}"
        code = (error.get("extensions") or {}).get("code")
        assert code, f"error without extensions.code for {sent}: {body}"
        assert code != "INTERNAL_ERROR", f"INTERNAL_ERROR for {sent}: {body}"
        assert not LEAKS.search(json.dumps(error)), f"internals leaked for {sent}: {body}"


def test_fuzz_covers_every_root_field(hub: Hub) -> None:
    labels = sorted(result.ok().label for result in _schema(hub).get_all_operations())
    assert labels == sorted(OPERATIONS + CONTACT_OPERATIONS)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("label", OPERATIONS + CONTACT_OPERATIONS)
def test_fuzzed_queries_never_leak_internals(hub: Hub, label: str, mode: GenerationMode) -> None:
    operation = _schema(hub).find_operation_by_label(label)
    assert operation is not None, label

    @settings(
        max_examples=(
            CONTACT_EXAMPLES
            if label in CONTACT_OPERATIONS or label in HOUSEHOLD_DECISIONS
            else REPORT_EXAMPLES
            if label in IG_REPORTS
            else EXAMPLES
        )[mode],
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @seed(SEED)
    @given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case: Case) -> None:
        _check(hub, case)

    fuzz()
