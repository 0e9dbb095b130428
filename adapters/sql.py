"""What the SQL adapters (police, early help) share: phonetic name keys for indexed
candidate search. (The adapters' engine and error plumbing moves here too.)"""

from __future__ import annotations

import re

import jellyfish


def family_keys(family_name: str | None) -> list[str]:
    """Metaphone keys of each part of a family name ("Thompson-Reid" -> two keys), so a
    hyphenated, double-barrelled or re-ordered surname is found by any of its parts."""
    plain = re.sub(r"['.’]", "", family_name or "")
    parts = [p for p in re.split(r"[\s\-]+", plain) if p.isalpha()]
    return list(dict.fromkeys(k for p in parts if (k := jellyfish.metaphone(p))))
