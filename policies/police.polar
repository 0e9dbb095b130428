# Police information (DOMAIN.md §3 rules 13 and 14).

# --- Rule 13: handling code P is shareable for safeguarding; C only under its conditions:
# within the MASH (police and MASH council staff) and as its permitted summary only.
# Investigation-sensitive items are not shown to non-police roles. ---
mash_council(req) if "mash_social_worker" in req.roles;
mash_council(req) if "mash_manager" in req.roles;

# Rule 4 (minimum necessary by role) first, so that a role that may never see intelligence
# is told so rather than a handling condition.
withhold(req, res, "NOT_PERMITTED",
         "rule 4: police intelligence goes to police and MASH council staff only") if
    res.kind = "police.intelligence" and
    req.agency != "police" and
    not mash_council(req);

mash_purpose("MASH_SCREENING");
mash_purpose("MASH_RESEARCH");
mash_purpose("THRESHOLD_DECISION");
mash_purpose("S47_STRATEGY");
mash_purpose("BREAK_GLASS");

withhold(req, res, "NOT_PERMITTED",
         "rule 13: handling code C intelligence is not shared outside the MASH's work") if
    res.kind = "police.intelligence" and
    res.handling_code = "C" and
    req.agency != "police" and
    not mash_purpose(req.purpose);

withhold(req, res, "ORIGINATOR_RESTRICTED",
         "rule 13: investigation-sensitive items are shown to police only") if
    res.investigation_sensitive and
    req.agency != "police";

hide_field(req, res, "text", "ORIGINATOR_RESTRICTED",
           "rule 13: handling code C shows its permitted summary only outside police") if
    res.handling_code = "C" and
    req.agency != "police";

# --- Rule 14: every consultation of police data is logged (DPA 2018 s62) with its
# justification: police data goes outside police only for a purpose that justifies it, and
# the audit marks every such read. ---
police_justification("MASH_RESEARCH");
police_justification("THRESHOLD_DECISION");
police_justification("S47_STRATEGY");
police_justification("S17_ASSESSMENT");
police_justification("BREAK_GLASS");

withhold(req, res, "NOT_PERMITTED",
         "rule 14: police data is consulted outside police only with a safeguarding justification") if
    res.agency = "police" and
    not identity_kind(res.kind) and
    req.agency != "police" and
    not police_justification(req.purpose);

s62_logged(_req, res) if
    res.agency = "police" and
    res.kind != "access.entry";
explains("s62_logged", "rule 14: every read of police-originated data goes in the s62 log");
