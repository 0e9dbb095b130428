# The education system's practitioners and its content (DOMAIN.md §3). Everything else that
# decides on education values is the shared rules deciding on labels: stage gating, consent
# and override (consent.polar, rules 3, 5-8), special categories (sensitive.polar, rule 9:
# a SEN primary need that is a health condition is labelled health), location protection
# (sensitive.polar, rule 11: the school is location data), partner flags (access.polar,
# rule 17). Polar merges these facts with the same rules' clauses in the other files.

# Rules 1 and 2: an education practitioner reads child records for MASH work, through the
# open contact it has a research task on.
child_reader("education_practitioner");
researcher("education_practitioner", "education");

# Rule 15: an education practitioner may break the glass in an emergency, like the other
# agencies' practitioners.
glass_breaker("education_practitioner");

# Rule 11: the school's reference number places the child as surely as its name.
location_field("school_urn");
