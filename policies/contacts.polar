# Who may work the MASH contact workflow (DOMAIN.md §1 and §3 rules 5, 6, 8, 12, 15, 16).
#
# Questions the hub asks (hub/policy/engine.py `allows(rule, req, *args)`); `req` is a ReadRequest
# (roles, agency, purpose):
#   read_contact(req)                   may this actor read MASH contacts for this purpose?
#   see_contact(req, relation, view)    this much of a contact ("DETAIL": all of it, or
#                                       "QUEUE": id, stage, RAG, due, assigned teams), given
#                                       the actor's relationship to it ("WORKS_ON" or "NONE",
#                                       hub/contacts/workflow.py `works_on`)? Every read of a contact
#                                       and every change to one asks it; a change needs DETAIL.
#   create_contact(req)                 record a new contact (screening)?
#   advance_contact(req)                move a contact one stage on?
#   reopen_contact(req)                 move a contact back a stage (with a reason)?
#   assign_contact(req)                 assign staff and teams?
#   record_consent(req)                 record the family's consent?
#   override_consent(req)               authorise sharing without consent (rule 6)?
#   record_decision(req)                record the threshold decision?
#   record_strategy_discussion(req)     record an s47 strategy discussion (rule 3)?
#   update_research(req, agency)        update that agency's research task?
#   withhold_item(req, agency)          record that agency's decision not to share (rule 8)?
#   see_referrer(req, anonymity)        see who referred ("ANONYMOUS" or "NAMED") (rule 12)?
#   break_glass(req)                    take an emergency, read-only grant (rule 15)?
#   read_notifications(req, whose)      read a team's notifications ("OWN_TEAM"/"OTHER_TEAM")?
#   view_kpis(req)                      read the MASH's performance figures?
#   review_alerts(req)                  work the IG review queue?

# MASH staff work contacts; the agencies' practitioners research them.
mash_staff("mash_social_worker");
mash_staff("mash_manager");

researcher("police_researcher", "police");
researcher("health_practitioner", "health");
researcher("asc_practitioner", "adult_social_care");
researcher("early_help_worker", "early_help");

# Purposes for which contact work is done. BREAK_GLASS is read-only and IG_AUDIT and
# SAR_RESPONSE are not contact work, so no change to a contact is ever made under them.
work_purpose("MASH_SCREENING");
work_purpose("MASH_RESEARCH");
work_purpose("THRESHOLD_DECISION");
work_purpose("S47_STRATEGY");
work_purpose("S17_ASSESSMENT");
work_purpose("EARLY_HELP");

is_mash_staff(req) if role in req.roles and mash_staff(role);
is_researcher(req, agency) if
    role in req.roles and researcher(role, agency) and req.agency = agency;

read_contact(req) if work_purpose(req.purpose) and is_mash_staff(req);
read_contact(req) if work_purpose(req.purpose) and is_researcher(req, _);

# Rule 2: a contact is personal data. Those who work it — assigned by name or team, of an
# agency with a research task on it, or a MASH manager (managers allocate every contact) —
# see all of it (the concern, the children, the referrer, consent, decisions, research, staff)
# and may change it. The MASH council team sees the queue of those it does not work (id,
# stage, RAG, due, assigned teams), to allocate them; anyone else sees none of it.
works_contact(_req, "WORKS_ON");
works_contact(req, _relation) if "mash_manager" in req.roles;

mash_council_team(req) if is_mash_staff(req) and req.agency = "council";

see_contact(req, relation, "DETAIL") if read_contact(req) and works_contact(req, relation);
see_contact(req, relation, "QUEUE") if see_contact(req, relation, "DETAIL");
see_contact(req, _relation, "QUEUE") if read_contact(req) and mash_council_team(req);

create_contact(req) if req.purpose = "MASH_SCREENING" and is_mash_staff(req);
advance_contact(req) if work_purpose(req.purpose) and is_mash_staff(req);
record_consent(req) if work_purpose(req.purpose) and is_mash_staff(req);

# Managers allocate work, reopen a stage, authorise sharing without consent (rule 6: the
# authoriser is a MASH or team manager) and make the threshold decision.
reopen_contact(req) if
    work_purpose(req.purpose) and "mash_manager" in req.roles;
assign_contact(req) if
    work_purpose(req.purpose) and "mash_manager" in req.roles;
override_consent(req) if
    work_purpose(req.purpose) and "mash_manager" in req.roles;
decision_purpose("THRESHOLD_DECISION");
decision_purpose("S47_STRATEGY");
record_decision(req) if
    decision_purpose(req.purpose) and "mash_manager" in req.roles;
# Rule 3: s47 is a fact a manager records (an s47 decision, or a strategy discussion), not a
# purpose a reader names; the strategy discussion is recorded for the strategy or the
# threshold decision.
record_strategy_discussion(req) if
    decision_purpose(req.purpose) and "mash_manager" in req.roles;

# A research task is the agency's own: its practitioners update it, MASH staff track it.
update_research(req, agency) if
    work_purpose(req.purpose) and is_researcher(req, agency);
update_research(req, _agency) if
    work_purpose(req.purpose) and is_mash_staff(req);

# Rule 8: only the originating agency's practitioners decide not to share its items (who
# still sees them is consent.polar's rule 8).
withhold_item(req, agency) if
    work_purpose(req.purpose) and is_researcher(req, agency);

# Rule 12: an anonymous member of the public is identified to no one outside the MASH's own
# council staff who took the contact.
see_referrer(req, "NAMED") if read_contact(req);
see_referrer(req, "ANONYMOUS") if
    read_contact(req) and req.agency = "council" and is_mash_staff(req);

# Rule 15: break-glass is for the people who read child records in an emergency; never for
# partner systems or IG.
glass_breaker("mash_social_worker");
glass_breaker("mash_manager");
glass_breaker("police_researcher");
glass_breaker("health_practitioner");
glass_breaker("asc_practitioner");
glass_breaker("early_help_worker");
break_glass(req) if
    req.purpose = "BREAK_GLASS" and role in req.roles and glass_breaker(role);

# Rule 16: a team reads its own notifications; MASH managers read any team's.
read_notifications(req, "OWN_TEAM") if
    role in req.roles and glass_breaker(role);
read_notifications(req, _whose) if "mash_manager" in req.roles;

view_kpis(req) if "mash_manager" in req.roles;

review_alerts(req) if "ig_officer" in req.roles;
