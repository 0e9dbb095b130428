"""The explorer's saved operations: the README's walk-through as ready tabs, with variables.

Each tab is a GraphiQL `defaultTabs` entry (`query`, `variables`). The walk-through's ids
(Ava's hub id, the contact's id) come from the answers of the tabs before; the variables say
where to paste them. The example search is for the demo's synthetic showcase child.
"""

from __future__ import annotations

import json
from typing import Any

CHILD_ID = "<Ava's id from 1 Find a child>"
CONTACT_ID = "<contact id from 2 Open a contact>"

# (title comment, operation, variables) in the walk-through's order
OPERATIONS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    (
        "1 Find a child: search returns match identities only (no contact needed)",
        """query FindChild($criteria: PersonSearch!) {
  searchChildren(criteria: $criteria, purpose: MASH_SCREENING) {
    id
    givenName
    familyName
    dateOfBirth
  }
}""",
        {"criteria": {"givenName": "Ava", "familyName": "Thompson", "dateOfBirth": "2016-03-14"}},
    ),
    (
        "2 Open a contact about the child (MASH social worker or manager)",
        """mutation OpenContact($input: CreateContactInput!) {
  createContact(input: $input) {
    id
    stage
    rag
    dueAt
    overdue
  }
}""",
        {
            "input": {
                "childIds": [CHILD_ID],
                "rag": "RED",
                "concern": "disclosed domestic abuse at home",
                "referrer": {"type": "SCHOOL", "name": "Head teacher"},
            }
        },
    ),
    (
        "3 Screening read: each other agency answers only known yes/no",
        """query ScreeningRead($id: ID!, $contactId: ID!) {
  child(id: $id, purpose: MASH_SCREENING, contactId: $contactId) {
    sources { source status }
    health { __typename ... on Redaction { reason knownToAgency } }
    police { __typename ... on Redaction { reason knownToAgency } }
  }
}""",
        {"id": CHILD_ID, "contactId": CONTACT_ID},
    ),
    (
        "4 Move the contact to RESEARCH: each agency gets a research task",
        """mutation StartResearch($contactId: ID!) {
  advanceContact(id: $contactId, stage: "RESEARCH", purpose: MASH_SCREENING) { stage }
}""",
        {"contactId": CONTACT_ID},
    ),
    (
        "5 Record consent: the family's consent, given by the mother, for all agencies",
        """mutation RecordConsent($contactId: ID!) {
  recordConsent(id: $contactId, state: "GIVEN", givenBy: "mother", purpose: MASH_RESEARCH) {
    consent { state }
  }
}""",
        {"contactId": CONTACT_ID},
    ),
    (
        "6 Research read: the detail appears; what the rules withhold is a typed Redaction",
        """query ResearchRead($id: ID!, $contactId: ID!) {
  child(id: $id, purpose: MASH_RESEARCH, contactId: $contactId) {
    links { source rule band score }
    household { relation basis { kind source } person { givenName familyName } }
    health {
      __typename
      ... on HealthSection {
        encounters {
          __typename
          ... on HealthEncounter { date encounterClass why: reason redactedFields { field reason } }
          ... on Redaction { reason agency }
        }
      }
      ... on Redaction { reason agency }
    }
    police {
      __typename
      ... on PoliceSection {
        incidents {
          __typename
          ... on PoliceIncident {
            occurredOn category dashRisk role summary redactedFields { field reason }
          }
          ... on Redaction { reason agency }
        }
      }
      ... on Redaction { reason agency }
    }
    sources { source status }
    previouslyAccessedBy { at agency purpose }
  }
}""",
        {"id": CHILD_ID, "contactId": CONTACT_ID},
    ),
    (
        "7 Move the contact to DECISION (MASH manager)",
        """mutation StartDecision($contactId: ID!) {
  advanceContact(id: $contactId, stage: "DECISION", purpose: MASH_RESEARCH) { stage }
}""",
        {"contactId": CONTACT_ID},
    ),
    (
        "8 Record a decision (MASH manager): the outcome, reasons and the referrer's feedback",
        """mutation RecordDecision($contactId: ID!, $decision: String!, $reasons: String!) {
  recordDecision(
    id: $contactId
    decision: $decision
    reasons: $reasons
    purpose: THRESHOLD_DECISION
    referrerFeedback: "Thank you: the family will be offered support."
  ) {
    stage
    decision { outcome decidedAt }
  }
}""",
        {
            "contactId": CONTACT_ID,
            "decision": "S17",
            "reasons": "needs an assessment of the family's support needs",
        },
    ),
    (
        "9 Break-glass: a read-only grant for an emergency, without a contact; IG reviews it",
        """mutation BreakGlass($childId: ID!) {
  breakGlass(
    childId: $childId
    reasonCode: "MISSING_CHILD"
    justification: "child reported missing at 2am"
  ) { id expiresAt alertId notifiedTeam }
}""",
        {"childId": CHILD_ID},
    ),
    (
        "10 Read under break-glass: read-only, for the grant's time",
        """query BreakGlassRead($childId: ID!) {
  child(id: $childId, purpose: BREAK_GLASS) {
    sources { source status }
    police { __typename ... on Redaction { reason } }
  }
}""",
        {"childId": CHILD_ID},
    ),
)


def tabs() -> list[dict[str, str]]:
    """GraphiQL's `defaultTabs`: each operation with its title as a comment."""
    return [
        {"query": f"# {title}\n{query}\n", "variables": json.dumps(variables, indent=2)}
        for title, query, variables in OPERATIONS
    ]
