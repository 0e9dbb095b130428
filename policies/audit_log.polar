# Who may read the audit log and its reports (DOMAIN.md §4): information governance, for
# the IG audit purpose. Reading the log is itself audited (hub/ig/reports.py).
#
# Questions the hub asks (hub/policy/engine.py):
#   read_audit_log(req)   may this actor read audit events and IG reports for this purpose?
#   find_subjects(req)    may this actor look up a person's hub id (NHS number, or name and
#                         date of birth) to answer a subject access request? Only ids come
#                         back (hub/ig/lookup.py).
# `req` is a ReadRequest (roles, agency, purpose).

audit_reader("ig_officer");

read_audit_log(req) if
    req.purpose = "IG_AUDIT" and
    role in req.roles and
    audit_reader(role);

# A subject access request names the person, not their hub id: IG finds the id to run the
# subject access report, for that purpose only.
find_subjects(req) if
    req.purpose = "SAR_RESPONSE" and
    role in req.roles and
    audit_reader(role);
