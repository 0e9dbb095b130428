# Who may decide whether a source record is a child (DOMAIN.md §5: an analyst confirms or
# rejects the links the scorer could not decide; never auto-merge on a fuzzy score alone).
#
# Questions the hub asks (hub/policy/engine.py):
#   decide_link(req)       may this actor confirm or reject links, and work the review queue,
#                          for this purpose?
#   decide_household(req)  may this actor confirm or reject a resident of a child's large
#                          shared address as the child's household, for this purpose?
# `req` is a request (hub/policy/engine.py `Request`: roles, agency, purpose, contact facts).

# Identity is MASH work: the analysts who screen and research contacts decide links.
link_decider("mash_social_worker");
link_decider("mash_manager");

# Deciding a link reads the child's record and changes what every later read links, so it
# needs a purpose for which the actor may read child records and write (access.polar: not
# under break-glass).
decide_link(req) if
    may_write(req) and
    role in req.roles and
    link_decider(role);
explains("decide_link", "identity: MASH social workers and managers decide links, for a purpose that may read child records and write");

# Household means the same home (DOMAIN.md §3 rule 2): the residents of a large shared
# address (a hostel, a block recorded without flat numbers) count as a child's household,
# and have their agency records read into the child's, only once an analyst confirms them.
# The same MASH analysts decide, for a purpose for which they may read and write.
household_decider("mash_social_worker");
household_decider("mash_manager");

decide_household(req) if
    may_write(req) and
    role in req.roles and
    household_decider(role);
explains("decide_household", "rule 2: MASH social workers and managers confirm or reject a large shared address's residents as household, for a purpose that may read child records and write");
