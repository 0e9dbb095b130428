# Where the contact stands and what the family agreed to (DOMAIN.md §3 rules 3, 5, 6, 7, 8).
# The contact's facts come from hub/contacts/workflow.py (`ContactFacts`), loaded once per operation.

# Another agency's content: everything but the identity-level kinds.
identity_kind("child");
identity_kind("person");
identity_kind("contact.referrer");
identity_kind("access.entry");
identity_kind(kind) if record_part(kind);

other_agency_detail(req, res) if
    not identity_kind(res.kind) and
    res.agency != req.agency;

# --- Rule 3: stage gating. Without a contact, or while it is in screening (or the purpose
# is screening), another agency's records answer only "known to X: yes/no". ---
before_research(req) if not req.has_contact;
before_research(req) if req.stage = "SCREENING";
before_research(req) if req.purpose = "MASH_SCREENING";

withhold(req, res, "STAGE_RESTRICTED",
         "rule 3: before research another agency's records answer only known yes/no") if
    other_agency_detail(req, res) and
    before_research(req) and
    not glass(req);

# A purpose is a claim, checked against the contact's facts: THRESHOLD_DECISION is the
# decision stage's purpose, so on a contact not at DECISION it opens no more than screening.
decision_claim_unmet(req) if
    req.purpose = "THRESHOLD_DECISION" and
    req.stage != "DECISION";

withhold(req, res, "STAGE_RESTRICTED",
         "rule 3: THRESHOLD_DECISION before the contact reaches the decision stage: another agency's records answer only known yes/no") if
    other_agency_detail(req, res) and
    decision_claim_unmet(req);

early_stage(req) if before_research(req);
early_stage(req) if decision_claim_unmet(req);

# --- Rules 3, 5 and 6: from research on, detail needs recorded consent covering the
# agency, or a manager's override, or s47 (no consent needed), or break-glass (emergency). Consent counts only as a recorded GIVEN (rule 5): NOT_SOUGHT,
# REFUSED, WITHDRAWN or nothing recorded are not consent. ---
consent_covers(req, res) if
    req.consent = "GIVEN" and
    res.agency in req.consent_scope;
consent_covers(req, _res) if
    req.consent = "GIVEN" and
    not _agency in req.consent_scope;

# s47 is a fact a manager records on the contact — an s47 (or immediate protection)
# decision, or a strategy discussion — never the purpose a reader names: S47_STRATEGY on a
# contact without that fact opens nothing that consent does not.
s47(req) if req.decision = "S47";
s47(req) if req.decision = "IMMEDIATE_PROTECTION";
s47(req) if req.strategy_discussion;

without_consent(req) if s47(req);
without_consent(req) if req.override;
without_consent(req) if glass(req);

withhold(req, res, "CONSENT_REQUIRED",
         "rules 3, 5 and 6: another agency's detail needs consent given for it, a manager's override, or s47") if
    other_agency_detail(req, res) and
    not early_stage(req) and
    not consent_covers(req, res) and
    not without_consent(req);

# Rule 6: who authorises sharing without consent is contacts.polar's `override_consent`.

# --- Rule 7: early-help records are seen only with the family's consent (recorded in the
# early help system, or on the contact and covering early help), unless s47. This holds for
# every reader: the hub shares early help work only where the family agreed. ---
family_consent(_req, res) if res.consent = "GIVEN";
family_consent(req, res) if
    res.consent != "REFUSED" and
    res.consent != "WITHDRAWN" and
    consent_covers(req, res);

withhold(req, res, "CONSENT_REQUIRED",
         "rule 7: early help records need the family's consent unless the contact is at s47") if
    res.agency = "early_help" and
    not identity_kind(res.kind) and
    not family_consent(req, res) and
    not s47(req);

# --- Rule 8: an agency may decide not to share an item (recorded with a reason); others
# see it as withheld by that agency. The originating agency's practitioners make that decision
# (contacts.polar `withhold_item`). ---
withhold(req, res, "WITHHELD_BY_ORIGINATOR",
         "rule 8: the originating agency recorded a decision not to share this item") if
    "not_shared" in res.flags and
    res.agency != req.agency;

# Who records a decision not to share is contacts.polar's `withhold_item`.
