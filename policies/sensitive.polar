# Minimum necessary and sensitive data (DOMAIN.md §3 rules 4, 9, 10, 11, 12).

# --- Rule 4: minimum necessary by role. Police intelligence goes to police and MASH
# council staff; a police researcher sees that a child attended A&E, not why; a health
# practitioner sees domestic-abuse incidents and their DASH level, not the narrative. ---
# (The intelligence rule is in police.polar.)
hide_field(req, res, "reason", "NOT_PERMITTED",
           "rule 4: a police researcher sees the attendance, not the consultation detail") if
    res.kind = "health.encounter" and
    "police_researcher" in req.roles;

hide_field(req, res, "summary", "NOT_PERMITTED",
           "rule 4: a health practitioner sees incidents and DASH level, not their narrative") if
    res.kind = "police.incident" and
    "health_practitioner" in req.roles;

# --- Rule 9: special-category and criminal-offence data only for the purposes that need
# it (the originating agency always sees its own). ---
special_category("health");
special_category("mental_health");
special_category("sexual_health");
special_category("ethnicity");
special_category("religion");
special_category("criminal_offence");

special_purpose("MASH_RESEARCH");
special_purpose("THRESHOLD_DECISION");
special_purpose("S47_STRATEGY");
special_purpose("S17_ASSESSMENT");
special_purpose("BREAK_GLASS");

withhold(req, res, "NOT_PERMITTED",
         "rule 9: special-category data is released only for purposes that need it") if
    res.agency != req.agency and
    category in res.special_categories and
    special_category(category) and
    not special_purpose(req.purpose);

# --- Rule 10: extra-protected categories stay with their originator unless it releases
# them (flag "originator_released"). ---
extra_protected("sexual_health");
extra_protected("substance_misuse");
extra_protected("identity_change");

withhold(req, res, "ORIGINATOR_RESTRICTED",
         "rule 10: sexual health, substance misuse and identity changes stay with their originator") if
    res.agency != req.agency and
    category in res.special_categories and
    extra_protected(category) and
    not "originator_released" in res.flags;

# --- Rule 11: a sensitive-flagged patient or a refuge address never shows address, phone
# or school, to any role. ---
location_field("address");
location_field("postcode");
location_field("phone");
location_field("school");

hide_field(_req, res, field, "LOCATION_PROTECTED",
           "rule 11: a location-protected person's address, phone and school are never shown") if
    res.location_protected and
    location_field(field);

# Rule 11 fails closed: while a source that may hold a location restriction for this home
# did not answer the read, no one in the home shows a location (the restriction cannot be
# ruled out); the next read with every source answering shows it where allowed.
hide_field(_req, res, field, "LOCATION_UNVERIFIED",
           "rule 11: a source that may restrict this home's location did not answer") if
    "location_unverified" in res.flags and
    not res.location_protected and
    location_field(field);

# --- Rule 12: a member of the public who made the referral is not identified to other
# agencies (the agency that took the referral still sees who it was). ---
referrer_identity("name");
referrer_identity("phone");
referrer_identity("email");
referrer_identity("address");

hide_field(req, res, field, "NOT_PERMITTED",
           "rule 12: an anonymous referrer is not identified to other agencies") if
    res.kind = "contact.referrer" and
    "anonymous" in res.flags and
    res.agency != req.agency and
    referrer_identity(field);
