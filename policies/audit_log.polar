# Who may read the audit log and its reports (DOMAIN.md §4): information governance, for
# the IG audit purpose. Reading the log is itself audited (hub/reports.py).
#
# Question the hub asks (hub/policy.py):
#   read_audit_log(req)   may this actor read audit events and IG reports for this purpose?
# `req` is a ReadRequest (roles, agency, purpose).

audit_reader("ig_officer");

read_audit_log(req) if
    req.purpose = "IG_AUDIT" and
    role in req.roles and
    audit_reader(role);
