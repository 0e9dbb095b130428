# Who may read child records at all, about which child, and what a read may change
# (DOMAIN.md §3 rules 1, 2, 15, 16).
#
# Questions the hub asks (hub/policy/engine.py):
#   read_child(req)                             may this actor read child records for this purpose?
#   withhold(req, res, reason, why)             is this record class withheld, why, by which rule?
#   release(req, res)                           is it released? (neither: NOT_PERMITTED)
#   hide_field(req, res, field, reason, why)    which fields of a released record are withheld?
#   may_write(req)                              may this operation change anything?
#   notify_owner(req, res)                      does this read notify the child's owning team?
#   s62_logged(req, res)  (police.polar)        is this consultation in the police s62 log?
# `req` is a request (hub/policy/engine.py `Request`): the actor (roles, agency, team), the purpose,
# and the contact's facts (has_contact, stage, assigned, consent, consent_scope, override,
# decision, strategy_discussion, break_glass). `res` a record class (`Resource`): kind,
# agency, handling_code, special_categories, investigation_sensitive, location_protected,
# consent, flags, owner_team.
# Kinds: "child" (the record as a whole, for the relationship check), "person" (a person's
# demographics), "<agency>.section", the item kinds of adapters/base.py KINDS,
# "contact.referrer", "access.entry" (one line of "previously accessed by"), the record's parts
# (`record_part` below: flags, household, links, access log) and "match" (a search result).
# Every withhold/hide_field names its rule in `why`; `explains` says what a yes/no rule
# depends on (`mash-hub policy explain` prints them).
# `req` and `res` reach the engine as plain dictionaries (hub/policy/engine.py): no host round-trip
# for each field a rule reads, which keeps a cold decision well under a millisecond.

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

read_child(req) if
    child_purpose(req.purpose) and
    role in req.roles and
    child_reader(role);

# A partner system's own token (rule 17 below) claims no role: it reads for what it is.
read_child(req) if
    child_purpose(req.purpose) and
    req.machine;

# --- Rule 15: break-glass reads need an active, time-boxed grant, and never write. ---
glass(req) if
    req.purpose = "BREAK_GLASS" and
    req.break_glass;

read_child(req) if
    glass(req) and
    role in req.roles and
    child_reader(role);

may_write(req) if
    read_child(req) and
    req.purpose != "BREAK_GLASS" and
    not machine(req);

explains("read_child", "rule 1: child records are read only for a child purpose (not IG_AUDIT, SAR_RESPONSE) by a child-reading role (never ig_officer)");
explains("read_child", "rule 15: BREAK_GLASS reads need an active break-glass grant");
explains("may_write", "rule 15: a break-glass operation is read-only; writes need a read purpose");
explains("may_write", "rule 17: a partner system's own token only reads flags; it changes nothing");
explains("release", "rule 1: released to a child-reading role for a child purpose when no rule withholds it");

release(req, _res) if read_child(req);

# --- Rule 2: person-level reads need a legitimate relationship: the actor works the open
# contact about this child (contacts.polar `works_contact`: assigned staff or team, the MASH
# rota for their agency's research task, or a MASH manager), or holds a break-glass grant
# covering this child. A search returns match identities only and needs no relationship (it
# is how a contact finds its child). `assigned` is hub/contacts/workflow.py's relationship fact. ---
contact_relation(req, "WORKS_ON") if req.assigned;
contact_relation(req, "NONE") if not req.assigned;

related(req, res) if glass(req) and "glass_subject" in res.flags;
related(req, res) if
    contact_relation(req, relation) and
    works_contact(req, relation) and
    req.stage != "CLOSED" and
    "contact_subject" in res.flags;

withhold(req, res, "NO_RELATIONSHIP",
         "rule 2: person-level reads need the open contact about this child, worked by the actor, or break-glass") if
    res.kind = "child" and
    not machine(req) and
    not related(req, res);

# The parts of a child's record beside its sections, each decided like any record class:
# identity-level, so no stage gate applies to them as a whole (rule 3 gates what is in them).
record_part("child.flags");       # child-protection / looked-after flags, an open contact
record_part("child.household");   # who lives with the child
record_part("child.links");       # which source records are the child's, and why
record_part("child.access_log");  # "previously accessed by"
record_part("match");             # one search result

# --- Rule 17: a partner system's own token (a machine, no person behind it) gets what a
# flag service shares: whether each agency knows the child (the sections' known yes/no),
# the child-protection and looked-after flags, whether a MASH contact is open. Never detail,
# whatever team or agency the token claims; no relationship is needed for the flags.
# What makes a token a machine's is its kind (`req.machine`, decided in hub/auth/tokens.py from the
# token: client credentials, no person behind it), never a role it claims; a token that
# claims the partner_system role is held to the same flags, since a role can only narrow. ---
machine(req) if req.machine;
machine(req) if "partner_system" in req.roles;

flag_level("child");
flag_level("child.flags");
flag_level("match");

withhold(req, res, "NOT_PERMITTED",
         "rule 17: a partner system's own token gets flags only, never detail") if
    machine(req) and
    not flag_level(res.kind);

hide_field(req, res, field, "NOT_PERMITTED",
           "rule 17: a partner system's own token is told which child matched, not who it is") if
    machine(req) and
    res.kind = "match" and
    match_identity(field);
match_identity("given_name");
match_identity("family_name");
match_identity("date_of_birth");
match_identity("nhs_number");

# --- Rule 16: reading a child with a child-protection or looked-after flag, by someone
# outside the owning team, notifies that team; "previously accessed by" shows staff names
# only to the accessor's own agency and to MASH managers (others see agency, team, purpose). ---
flagged(res) if "child_protection" in res.flags;
flagged(res) if "looked_after" in res.flags;

notify_owner(req, res) if
    res.kind = "child" and
    flagged(res) and
    req.team != res.owner_team;
explains("notify_owner", "rule 16: reading a CP/LAC-flagged child from outside its owning team notifies that team");

hide_field(req, res, "staff_name", "NOT_PERMITTED",
           "rule 16: accessors' names only to their own agency and MASH managers") if
    res.kind = "access.entry" and
    req.agency != res.agency and
    not "mash_manager" in req.roles;
