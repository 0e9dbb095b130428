"""Addresses: when two records are at the same home (DOMAIN.md §3 rule 2).

Same home = the same UPRN where both records carry one; else the same postcode and the same
normalised first line, *including* the house number (or, where there is none, the house or
building name) and the flat. "Flat 2, 14 Larch Close" is not "Flat 3, 14 Larch Close" nor
"16 Larch Close"; "14 Larch Close" is "14 larch cl.". The street and postcode alone never
make a home: the people on a street are neighbours.

The first line is read from the address's comma-separated parts: flat designators ("Flat 2",
"Apartment 2", "Ground Floor Flat"), then either a numbered street ("14 Larch Close", which
ends the line: a building name before it is dropped, since the number says which building) or
a house or building name ("Rose Cottage", "Kestrel Court"). The town and anything after are
not part of it. Street-type abbreviations ("Cl", "Rd", "St" at the end) are spelled out,
punctuation and case are ignored.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

from adapters.base import SourcePerson

FLAT_WORDS = frozenset(
    {"flat", "flt", "apartment", "apt", "unit", "room", "rm", "studio", "suite", "maisonette"}
)
FLOORS = {
    "basement": "b",
    "lower": "lg",
    "ground": "g",
    "first": "1",
    "second": "2",
    "third": "3",
    "top": "top",
    "upper": "up",
}
# street types: abbreviation -> the word; each word is its own abbreviation too
STREET_TYPES = {
    "rd": "road",
    "st": "street",
    "str": "street",
    "ln": "lane",
    "cl": "close",
    "ave": "avenue",
    "av": "avenue",
    "dr": "drive",
    "wy": "way",
    "cres": "crescent",
    "cresc": "crescent",
    "cr": "crescent",
    "gr": "grove",
    "gro": "grove",
    "gdns": "gardens",
    "gdn": "gardens",
    "ct": "court",
    "crt": "court",
    "pl": "place",
    "ter": "terrace",
    "terr": "terrace",
    "tce": "terrace",
    "wlk": "walk",
    "pk": "park",
    "sq": "square",
    "pde": "parade",
    "grn": "green",
    "hl": "hill",
    "cotts": "cottages",
    "hse": "house",
    "bldgs": "buildings",
}
STREET_TYPES |= {
    word: word for word in set(STREET_TYPES.values()) | {"rise", "view", "mews", "row"}
}
_NUMBER = re.compile(r"^\d+[a-z]?(-\d+[a-z]?)?$")
_FLAT_ID = re.compile(r"^([a-z]?\d+[a-z]?|[a-z])$")


def _parts(address: str) -> list[list[str]]:
    """Lower-case ASCII tokens of each comma-separated part; apostrophes dropped, other
    punctuation a space; "14 - 16" is "14-16", "14 A" is "14a", "No. 14" is "14"."""
    text = unicodedata.normalize("NFKD", address).encode("ascii", "ignore").decode().lower()
    text = re.sub(r"['`]", "", text)
    text = re.sub(r"(\d)\s*-\s*(\d)", r"\1-\2", text)
    text = re.sub(r"[^a-z0-9,\-]+|(?<![0-9])-|-(?![0-9])", " ", text)
    text = re.sub(r"\b(\d+) ([a-z])\b(?= \w)", r"\1\2", text)
    text = re.sub(r"\b(no|number)\b (?=\d)", "", text)
    return [tokens for part in text.split(",") if (tokens := part.split())]


def _street(tokens: list[str]) -> list[str]:
    """A street (or building) name up to its last street-type word, abbreviation spelled
    out: "larch cl hilltown" -> "larch close"."""
    words = list(tokens)
    last = max((i for i, w in enumerate(words) if w in STREET_TYPES and i > 0), default=None)
    if last is not None:
        words = [*words[:last], STREET_TYPES[words[last]]]
    return words


def _without_flat(parts: list[list[str]]) -> tuple[str | None, list[list[str]]]:
    """The flat designator, wherever it is ("Flat 2", "Apartment 2b", "Ground Floor Flat"),
    and the parts without it."""
    flat: str | None = None
    kept: list[list[str]] = []
    for tokens in parts:
        rest: list[str] = []
        i = 0
        while i < len(tokens):
            word = tokens[i]
            following = tokens[i + 1 : i + 3]
            if flat is None and word in FLAT_WORDS and following and _FLAT_ID.match(following[0]):
                flat, i = following[0], i + 2
            elif (
                flat is None
                and word in FLOORS
                and len(following) == 2
                and following[0] == "floor"
                and following[1] in FLAT_WORDS
            ):
                flat, i = f"{FLOORS[word]}f", i + 3
            else:
                rest.append(word)
                i += 1
        if rest:
            kept.append(rest)
    return flat, kept


def first_line(address: str | None) -> str | None:
    """The normalised first line (flat, then house number and street, or house name), or
    None when the address holds neither a number nor a name."""
    if not address:
        return None
    flat, parts = _without_flat(_parts(address))
    line: list[str] | None = None
    for i, tokens in enumerate(parts):
        if _NUMBER.match(tokens[0]):
            street = tokens[1:] or (parts[i + 1] if i + 1 < len(parts) else [])
            line = [tokens[0], *_street(street)]
            break
        if i + 1 < len(parts) and _NUMBER.match(parts[i + 1][0]):
            continue  # a building name before a numbered street: the number says which
        line = _street(tokens)  # a house or building name
        break
    if not line:
        return None
    return " ".join(["flat", flat, *line] if flat else line)


def normalise_postcode(postcode: str | None) -> str:
    return re.sub(r"\s+", "", postcode or "").upper()


# A read keys every record of the child's household and address several times over, and
# the same few addresses come back read after read: remembered, bounded.
@functools.lru_cache(maxsize=65536)
def address_key(postcode: str | None, address: str | None) -> str | None:
    """Postcode plus normalised first line: equal keys are the same home (where the UPRN
    does not say otherwise). None when either part is missing."""
    code, line = normalise_postcode(postcode), first_line(address)
    return f"{code}|{line}" if code and line else None


@dataclass(frozen=True)
class Home:
    """What identifies a record's home: its UPRN where recorded, and its address key."""

    uprn: str | None
    key: str | None

    @classmethod
    def of(cls, record: SourcePerson) -> Home:
        return cls(record.uprn or None, address_key(record.postcode, record.address))

    def matches(self, other: Home) -> str | None:
        """How `other` is the same home: "uprn" (both carry the same UPRN), "address" (the
        same key, at least one without a UPRN), or None (another home). Two different
        UPRNs are two homes, whatever the address lines say."""
        if self.uprn and other.uprn:
            return "uprn" if self.uprn == other.uprn else None
        if self.key is not None and self.key == other.key:
            return "address"
        return None
