# Who may read which parts of a child's record, for which purpose (DOMAIN.md §3).
#
# Questions the hub asks (hub/policy.py):
#   read_child(req)                       may this actor read child records for this purpose?
#   withhold(req, res, reason)            is this record class withheld, and why?
#   release(req, res)                     is it released? (neither: NOT_PERMITTED)
#   hide_field(req, res, field, reason)   which fields of a released record are withheld?
# `req` is a ReadRequest (roles, agency, purpose); `res` a RecordClass (kind, agency, labels).
# Kinds: "<agency>.section" for a whole section, item kinds as in adapters/base.py KINDS,
# and "person" for a person's demographics.

# --- Rule 1: no purpose, no data. Purposes for which child records may be read. ---
child_purpose("MASH_SCREENING");
child_purpose("MASH_RESEARCH");
child_purpose("THRESHOLD_DECISION");
child_purpose("S47_STRATEGY");
child_purpose("S17_ASSESSMENT");
child_purpose("EARLY_HELP");

# Roles that read child records. ig_officer reads the audit log, never child data.
child_reader("mash_social_worker");
child_reader("mash_manager");
child_reader("police_researcher");
child_reader("health_practitioner");
child_reader("asc_practitioner");
child_reader("early_help_worker");
child_reader("partner_system");

read_child(req: ReadRequest) if
    child_purpose(req.purpose) and
    role in req.roles and
    child_reader(role);

release(req: ReadRequest, _res: RecordClass) if read_child(req);

# --- Rule 3: stage gating. During screening another agency's data answers only
# "known: yes/no"; detail waits for research. ---
withhold(req: ReadRequest, res: RecordClass, "STAGE_RESTRICTED") if
    req.purpose = "MASH_SCREENING" and
    res.kind != "person" and
    res.agency != req.agency;

# --- Rules 4 and 13: police intelligence goes to police and MASH council staff only;
# investigation-sensitive items to police only. ---
intelligence_reader(req: ReadRequest) if req.agency = "police";
intelligence_reader(req: ReadRequest) if req.has_role("mash_social_worker");
intelligence_reader(req: ReadRequest) if req.has_role("mash_manager");

withhold(req: ReadRequest, res: RecordClass, "NOT_PERMITTED") if
    res.kind = "police.intelligence" and
    not intelligence_reader(req);

withhold(req: ReadRequest, res: RecordClass, "ORIGINATOR_RESTRICTED") if
    res.investigation_sensitive and
    req.agency != "police";

# Handling code C: outside police, its permitted summary only.
hide_field(req: ReadRequest, res: RecordClass, "text", "ORIGINATOR_RESTRICTED") if
    res.handling_code = "C" and
    req.agency != "police";

# Minimum necessary: a police researcher sees that a child attended A&E, not why.
hide_field(req: ReadRequest, res: RecordClass, "reason", "NOT_PERMITTED") if
    res.kind = "health.encounter" and
    req.has_role("police_researcher");

# --- Rule 7: early help is consent-based, unless the enquiry is under s47. ---
withhold(req: ReadRequest, res: RecordClass, "CONSENT_REQUIRED") if
    res.agency = "early_help" and
    req.agency != "early_help" and
    res.consent != "GIVEN" and
    req.purpose != "S47_STRATEGY";

# --- Rules 9 and 10: special categories only for purposes that need them; the
# extra-protected ones stay with their originator. ---
special_purpose("MASH_RESEARCH");
special_purpose("THRESHOLD_DECISION");
special_purpose("S47_STRATEGY");
special_purpose("S17_ASSESSMENT");

withhold(req: ReadRequest, res: RecordClass, "NOT_PERMITTED") if
    res.has_category("mental_health") and
    req.agency != res.agency and
    not special_purpose(req.purpose);

withhold(req: ReadRequest, res: RecordClass, "ORIGINATOR_RESTRICTED") if
    extra_protected(category) and
    res.has_category(category) and
    req.agency != res.agency;

extra_protected("sexual_health");
extra_protected("substance_misuse");
extra_protected("identity_change");

# --- Rule 11: a location-protected person's address is never shown. ---
hide_field(_req: ReadRequest, res: RecordClass, "address", "LOCATION_PROTECTED") if
    res.location_protected;
hide_field(_req: ReadRequest, res: RecordClass, "postcode", "LOCATION_PROTECTED") if
    res.location_protected;
